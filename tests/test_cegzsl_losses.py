"""CE-GZSL losses against direct, slow formulations (the reference's loops), values and grads."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from unseen.methods.cegzsl.losses import class_cross_entropy, comparator_chunk_rows, supcon_loss
from unseen.methods.cegzsl.networks import Comparator
from unseen.methods.generative.networks import ConditionalCritic as Critic
from unseen.methods.generative.wgan import critic_terms


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads only add contention
    yield
    torch.set_num_threads(threads)


def _supcon_by_loops(z: torch.Tensor, labels: list[int], temperature: float) -> torch.Tensor:
    """SupCon "L_out", one view, written anchor by anchor without any stabilising shift."""
    total, anchors = z.new_zeros(()), 0
    for i in range(len(labels)):
        positives = [j for j in range(len(labels)) if j != i and labels[j] == labels[i]]
        if not positives:
            continue
        others = [k for k in range(len(labels)) if k != i]
        log_denominator = torch.log(sum(torch.exp(z[i] @ z[k] / temperature) for k in others))
        total = total - sum(z[i] @ z[p] / temperature - log_denominator
                            for p in positives) / len(positives)
        anchors += 1
    return total / anchors


def test_supcon_matches_loops_in_value_and_gradient():
    torch.manual_seed(0)
    raw = torch.randn(9, 5, dtype=torch.float64, requires_grad=True)
    labels = [0, 1, 0, 2, 1, 0, 3, 2, 4]  # classes 3 and 4 are single: anchors dropped
    fast, anchors = supcon_loss(F.normalize(raw, dim=1), torch.tensor(labels), 0.1)
    slow = _supcon_by_loops(F.normalize(raw, dim=1), labels, 0.1)
    assert int(anchors) == 7
    assert torch.allclose(fast, slow, rtol=0, atol=1e-12)
    (grad_fast,) = torch.autograd.grad(fast, raw)
    (grad_slow,) = torch.autograd.grad(slow, raw)
    assert torch.allclose(grad_fast, grad_slow, rtol=0, atol=1e-12)


def test_supcon_float32_close_to_float64_loops():
    torch.manual_seed(1)
    raw = torch.randn(16, 8)
    labels = torch.randint(0, 4, (16,))
    fast, _ = supcon_loss(F.normalize(raw, dim=1), labels, 0.1)
    slow = _supcon_by_loops(F.normalize(raw.double(), dim=1), labels.tolist(), 0.1)
    assert abs(float(fast) - float(slow)) < 1e-5


def test_supcon_without_any_positive_is_zero_not_nan():
    raw = torch.randn(6, 4, requires_grad=True)
    loss, anchors = supcon_loss(F.normalize(raw, dim=1), torch.arange(6), 0.1)
    assert int(anchors) == 0 and float(loss.detach()) == 0.0
    (grad,) = torch.autograd.grad(loss, raw)
    assert torch.isfinite(grad).all() and float(grad.abs().max()) == 0.0


def _gradient_penalty_per_sample(critic: Critic, real, fake, semantics, alpha, weight):
    """The reference's calc_gradient_penalty, one sample at a time via autograd."""
    terms = []
    for i in range(real.shape[0]):
        mixed = (alpha[i] * real[i] + (1 - alpha[i]) * fake[i]).unsqueeze(0).requires_grad_()
        score = critic(mixed, semantics[i:i + 1])
        (grad,) = torch.autograd.grad(score.sum(), mixed, create_graph=True)
        terms.append((grad.norm(2, dim=1) - 1) ** 2)
    return torch.cat(terms).mean() * weight


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_critic_terms_match_autograd_penalty(dtype, tolerance):
    torch.manual_seed(2)
    critic = Critic(feature_dim=7, semantic_dim=3, hidden_dim=11).to(dtype)
    with torch.no_grad():  # larger weights than the init, so the penalty is far from trivial
        for parameter in critic.parameters():
            parameter.normal_(0, 0.5)
    real, fake = torch.rand(6, 7, dtype=dtype), torch.rand(6, 7, dtype=dtype)
    semantics, alpha = torch.rand(6, 3, dtype=dtype), torch.rand(6, 1, dtype=dtype)

    real_mean, fake_mean, penalty = critic_terms(critic, real, fake, semantics, alpha, 10.0)
    fast = fake_mean - real_mean + penalty
    slow_penalty = _gradient_penalty_per_sample(critic, real, fake, semantics, alpha, 10.0)
    slow = critic(fake, semantics).mean() - critic(real, semantics).mean() + slow_penalty
    penalty_value, slow_penalty_value = float(penalty.detach()), float(slow_penalty.detach())
    assert slow_penalty_value > 0.1  # non-trivial
    assert abs(penalty_value - slow_penalty_value) <= tolerance * slow_penalty_value
    assert abs(float(fast.detach()) - float(slow.detach())) <= tolerance * max(
        1.0, abs(float(slow.detach())))
    fast_grads = torch.autograd.grad(fast, list(critic.parameters()))
    slow_grads = torch.autograd.grad(slow, list(critic.parameters()))
    for a, b in zip(fast_grads, slow_grads, strict=True):
        assert torch.allclose(a, b, rtol=tolerance, atol=tolerance)


def _class_loss_by_loop(comparator: Comparator, h, seen_semantics, labels, temperature):
    """The reference's class_scores_for_loop: one concatenated block per sample."""
    rows = []
    for i in range(h.shape[0]):
        expanded = h[i].repeat(seen_semantics.shape[0], 1)
        rows.append((comparator(expanded, seen_semantics) / temperature).squeeze(1))
    scores = torch.stack(rows)
    scores = scores - scores.max(dim=1, keepdim=True).values.detach()
    log_scores = scores - torch.log(torch.exp(scores).sum(1, keepdim=True))
    mask = F.one_hot(labels, seen_semantics.shape[0]).to(h.dtype)
    return -((mask * log_scores).sum(1) / mask.sum(1)).mean()


@pytest.mark.parametrize("chunk_rows", [1, 3, 64])
def test_factored_class_loss_matches_reference_loop(chunk_rows):
    torch.manual_seed(3)
    comparator = Comparator(embed_dim=12, semantic_dim=5, hidden_dim=9)
    with torch.no_grad():
        for parameter in comparator.parameters():
            parameter.normal_(0, 0.3)
    h = torch.rand(10, 12, requires_grad=True)
    seen_semantics, labels = torch.rand(4, 5), torch.randint(0, 4, (10,))
    fast = class_cross_entropy(comparator, h, seen_semantics, labels, 0.1, chunk_rows)
    slow = _class_loss_by_loop(comparator, h, seen_semantics, labels, 0.1)
    assert abs(float(fast.detach()) - float(slow.detach())) < 1e-6
    inputs = [h, *comparator.parameters()]
    for a, b in zip(torch.autograd.grad(fast, inputs), torch.autograd.grad(slow, inputs),
                    strict=True):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)


def test_factored_class_loss_with_frozen_comparator_gives_input_gradient_only():
    # The generator step: F frozen, the gradient flows to h (and on to G) only.
    torch.manual_seed(4)
    comparator = Comparator(embed_dim=6, semantic_dim=3, hidden_dim=8).double()
    with torch.no_grad():
        for parameter in comparator.parameters():
            parameter.normal_(0, 0.5)
    comparator.requires_grad_(False)
    h = torch.rand(7, 6, dtype=torch.float64, requires_grad=True)
    seen_semantics, labels = torch.rand(5, 3, dtype=torch.float64), torch.randint(0, 5, (7,))
    (fast,) = torch.autograd.grad(
        class_cross_entropy(comparator, h, seen_semantics, labels, 0.1, 2), h)
    (slow,) = torch.autograd.grad(_class_loss_by_loop(comparator, h, seen_semantics, labels, 0.1),
                                  h)
    assert torch.allclose(fast, slow, rtol=0, atol=1e-12)
    assert all(parameter.grad is None for parameter in comparator.parameters())


def test_chunk_rows_respect_the_memory_budget():
    cpu, meta = torch.device("cpu"), torch.device("meta")
    for classes, hidden, budget in [(645, 1024, 256 << 20), (40, 2048, 64 << 20), (3, 8, 1)]:
        rows = comparator_chunk_rows(classes, hidden, budget, meta)
        assert rows >= 1
        assert rows == 1 or 3 * 4 * rows * classes * hidden <= budget
        assert comparator_chunk_rows(classes, hidden, budget, cpu) <= rows
    # SUN-sized: 645 x 1024 floats per sample; 256 MB allows ~32 samples per block
    assert comparator_chunk_rows(645, 1024, 256 << 20, meta) == (256 << 20) // (12 * 645 * 1024)
