"""The shared WGAN-GP pieces against the references' slow forms: the gammaD-scaled critic loss
(TF-VAEGAN `train_images.py:155-190`) and the adaptive lambda rule (`:193-197`)."""

from __future__ import annotations

import pytest
import torch
from test_cegzsl_method import _one_thread  # noqa: F401  (autouse: one torch thread)

from unseen.methods.generative.networks import ConditionalCritic
from unseen.methods.generative.wgan import GradientPenalty, critic_loss, critic_terms


def _autograd_deviation(critic, real, fake, semantics, alpha):
    """calc_gradient_penalty without lambda: autograd through the interpolates."""
    interpolates = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    scores = critic(interpolates, semantics)
    (gradients,) = torch.autograd.grad(scores, interpolates, torch.ones_like(scores),
                                       create_graph=True)
    return ((gradients.norm(2, dim=1) - 1) ** 2).mean()


def _scaled_critic_as_the_reference(critic, real, fake, semantics, alpha, weight, gamma):
    """TF-VAEGAN's critic step: backward(-1) through gammaD * mean D(real), backward(+1) through
    gammaD * mean D(fake), then gammaD * lambda * GP."""
    critic.zero_grad()
    real_score = gamma * critic(real, semantics).mean()
    real_score.backward(-torch.ones((), dtype=real.dtype))
    fake_score = gamma * critic(fake, semantics).mean()
    fake_score.backward(torch.ones((), dtype=real.dtype))
    penalty = gamma * weight * _autograd_deviation(critic, real, fake, semantics, alpha)
    penalty.backward()
    return (fake_score - real_score + penalty).detach(), [p.grad.clone()
                                                          for p in critic.parameters()]


def _inputs(seed: int, rows: int = 9):
    torch.manual_seed(seed)
    critic = ConditionalCritic(12, 5, 16).double()
    with torch.no_grad():  # larger weights: input gradients far from norm 1
        critic.fc1.weight.mul_(40)
    tensors = [torch.rand(rows, size, dtype=torch.float64) for size in (12, 12, 5, 1)]
    return critic, *tensors


@pytest.mark.parametrize("gamma", [1.0, 10.0])
def test_scaled_critic_loss_matches_the_reference_in_value_and_gradient(gamma):
    critic, real, fake, semantics, alpha = _inputs(0)
    expected_loss, expected_grads = _scaled_critic_as_the_reference(
        critic, real, fake, semantics, alpha, 7.0, gamma)
    critic.zero_grad()
    loss, terms = critic_loss(critic, real, fake, semantics, alpha, GradientPenalty(7.0),
                              scale=gamma)
    loss.backward()
    assert torch.allclose(loss, expected_loss, rtol=1e-12, atol=0)
    assert float(terms["gradient_penalty"].detach()) > 1.0  # the penalty really takes part
    for got, expected in zip((p.grad for p in critic.parameters()), expected_grads, strict=True):
        assert torch.allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_critic_terms_weight_the_same_deviation_the_penalty_observes():
    critic, real, fake, semantics, alpha = _inputs(1)
    penalty = GradientPenalty(3.0, adaptive=True)
    _, terms = critic_loss(critic, real, fake, semantics, alpha, penalty)
    deviation = _autograd_deviation(critic, real, fake, semantics, alpha)
    assert torch.allclose(penalty._deviations[0], deviation.detach(), rtol=1e-12)
    assert torch.equal(critic_terms(critic, real, fake, semantics, alpha, 3.0)[2],
                       terms["gradient_penalty"])
    fixed = GradientPenalty(3.0)
    critic_loss(critic, real, fake, semantics, alpha, fixed)
    assert fixed._deviations == [] and fixed.update() is None and fixed.weight == 3.0


def _reference_lambda_rule(lambda1, penalties, gamma, critic_iter):
    """train_images.py:187-197: gp_sum of the gammaD * lambda-weighted penalties of one
    generator iteration, normalised, then the threshold rule (lambda mutated in place)."""
    gp_sum = sum(gamma * lambda1 * p for p in penalties)
    gp_sum /= gamma * lambda1 * critic_iter
    if gp_sum > 1.05:
        lambda1 *= 1.1
    elif gp_sum < 1.001:
        lambda1 /= 1.1
    return lambda1


def test_adaptive_penalty_follows_the_reference_rule_over_iterations():
    generator = torch.Generator().manual_seed(5)
    penalty = GradientPenalty(10.0, adaptive=True)
    expected = 10.0
    moves = set()
    for _ in range(40):  # deviations around 1: the rule grows, shrinks or keeps lambda
        deviations = (0.9 + 0.25 * torch.rand(5, generator=generator, dtype=torch.float64))
        for value in deviations:
            penalty.observe(value)
        before = penalty.weight
        mean = penalty.update()
        expected = _reference_lambda_rule(expected, deviations.tolist(), 10.0, 5)
        assert mean == pytest.approx(float(deviations.mean()), rel=1e-12)
        assert penalty.weight == pytest.approx(expected, rel=1e-12)
        moves.add((penalty.weight > before) - (penalty.weight < before))
    assert moves == {-1, 0, 1}
    restored = GradientPenalty(adaptive=True)
    restored.load_state_dict(penalty.state_dict())
    assert restored.weight == penalty.weight
