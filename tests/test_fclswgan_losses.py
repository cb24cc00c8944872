"""f-CLSWGAN's losses, seen classifier and synthesis against the reference's slow forms
(`clswgan.py`, `classifier.py`): values, gradients and random streams."""

from __future__ import annotations

import torch
from test_cegzsl_method import _one_thread  # noqa: F401  (autouse: one torch thread)
from torch import nn

from unseen.methods.fclswgan.losses import generator_loss
from unseen.methods.fclswgan.seen_classifier import SeenClassifier, pretrain_seen_classifier
from unseen.methods.generative.networks import ConditionalCritic as Critic
from unseen.methods.generative.networks import ConditionalGenerator as Generator
from unseen.methods.generative.networks import init_linear_
from unseen.methods.generative.synthesis import synthesize_per_class
from unseen.methods.generative.wgan import critic_loss, random_batch


def _critic_gradients_as_the_reference(critic: Critic, real, fake, semantics, alpha, weight):
    """clswgan.py:194-223: backward(-1) through mean D(real), backward(+1) through mean
    D(fake), then the autograd gradient penalty on the interpolates with create_graph."""
    critic.zero_grad()
    real_score = critic(real, semantics).mean()
    real_score.backward(-torch.ones((), dtype=real.dtype))
    fake_score = critic(fake, semantics).mean()
    fake_score.backward(torch.ones((), dtype=real.dtype))
    interpolates = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    scores = critic(interpolates, semantics)
    (gradients,) = torch.autograd.grad(scores, interpolates, torch.ones_like(scores),
                                       create_graph=True)
    penalty = ((gradients.norm(2, dim=1) - 1) ** 2).mean() * weight
    penalty.backward()
    loss = fake_score - real_score + penalty
    return loss.detach(), [p.grad.clone() for p in critic.parameters()]


def test_critic_loss_matches_the_reference_in_value_and_gradient():
    torch.manual_seed(0)
    critic = Critic(12, 5, 16).double()
    with torch.no_grad():  # larger weights: some input gradients far from norm 1
        critic.fc1.weight.mul_(40)
    real, fake = torch.rand(9, 12, dtype=torch.float64), torch.rand(9, 12, dtype=torch.float64)
    semantics, alpha = torch.rand(9, 5, dtype=torch.float64), torch.rand(9, 1, dtype=torch.float64)
    expected_loss, expected_grads = _critic_gradients_as_the_reference(
        critic, real, fake, semantics, alpha, 10.0)
    critic.zero_grad()
    loss, terms = critic_loss(critic, real, fake, semantics, alpha, 10.0)
    loss.backward()
    assert torch.allclose(loss, expected_loss, rtol=0, atol=1e-12)
    assert float(terms["gradient_penalty"].detach()) > 1.0  # the penalty term really takes part
    for got, expected in zip((p.grad for p in critic.parameters()), expected_grads, strict=True):
        assert torch.allclose(got, expected, rtol=0, atol=1e-10)


class _ReferenceLinearLogSoftmax(nn.Module):
    """classifier.LINEAR_LOGSOFTMAX, frozen as clswgan.py:180-181 does."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.fc = nn.Linear(weight.shape[1], weight.shape[0]).to(weight.dtype)
        with torch.no_grad():
            self.fc.weight.copy_(weight)
            self.fc.bias.copy_(bias)
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.fc(x), dim=1)


def test_generator_loss_matches_the_reference_through_the_frozen_classifier():
    torch.manual_seed(1)
    generator = Generator(4, 5, 16, 12).double()
    critic = Critic(12, 5, 16).double().requires_grad_(False)
    weight, bias = torch.randn(6, 12, dtype=torch.float64), torch.randn(6, dtype=torch.float64)
    noise, semantics = torch.randn(8, 4, dtype=torch.float64), torch.rand(8, 5, dtype=torch.float64)
    labels = torch.randint(0, 6, (8,))

    reference_classifier = _ReferenceLinearLogSoftmax(weight, bias)
    fake = generator(noise, semantics)
    expected = (-critic(fake, semantics).mean()
                + 0.1 * nn.NLLLoss()(reference_classifier(fake), labels))  # clswgan.py:236-241
    expected_grads = torch.autograd.grad(expected, list(generator.parameters()))

    fake = generator(noise, semantics)
    loss, terms = generator_loss(critic, SeenClassifier(weight, bias), fake, semantics, labels,
                                 0.1)
    grads = torch.autograd.grad(loss, list(generator.parameters()))
    assert torch.allclose(loss, expected, rtol=0, atol=1e-12)
    assert float(terms["fake_class"].detach()) > 0.5  # not a vanishing term
    for got, want in zip(grads, expected_grads, strict=True):
        assert torch.allclose(got, want, rtol=0, atol=1e-12)
    assert all(p.grad is None for p in critic.parameters())


def _reference_pretraining(features, labels, num_classes, epochs, batch_size, lr):
    """classifier.CLASSIFIER.fit with its next_batch (rows permuted in place, remainder carried
    over), plain Adam(lr, (0.5, 0.999))."""
    model = nn.Linear(features.shape[1], num_classes)
    model.apply(init_linear_)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.5, 0.999))
    x, y, start, passes = features, labels, 0, 0
    for _ in range(epochs):
        for _ in range(0, x.shape[0], batch_size):
            if passes == 0 and start == 0:
                perm = torch.randperm(x.shape[0])
                x, y = x[perm], y[perm]
            if start + batch_size > x.shape[0]:
                passes += 1
                rest_x, rest_y = x[start:], y[start:]
                perm = torch.randperm(x.shape[0])
                x, y = x[perm], y[perm]
                start = batch_size - rest_x.shape[0]
                batch_x, batch_y = torch.cat([rest_x, x[:start]]), torch.cat([rest_y, y[:start]])
            else:
                batch_x, batch_y = x[start:start + batch_size], y[start:start + batch_size]
                start += batch_size
            optimizer.zero_grad()
            nn.NLLLoss()(torch.log_softmax(model(batch_x), 1), batch_y).backward()
            optimizer.step()
    return model.weight.detach(), model.bias.detach()


def test_pretrained_seen_classifier_follows_the_reference_training():
    torch.manual_seed(2)
    features, labels = torch.rand(53, 10), torch.randint(0, 4, (53,))
    torch.manual_seed(7)
    weight, bias = _reference_pretraining(features, labels, 4, 3, 10, 1e-3)
    torch.manual_seed(7)
    seen = pretrain_seen_classifier(features, labels, 4, 3, 10, 1e-3)
    assert not torch.allclose(weight, torch.zeros_like(weight), atol=1e-3)  # it trained
    assert torch.allclose(seen.weight, weight, rtol=0, atol=1e-6)
    assert torch.allclose(seen.bias, bias, rtol=0, atol=1e-6)
    assert not seen.weight.requires_grad and not seen.bias.requires_grad


def test_random_batch_and_synthesis_draw_the_reference_streams():
    features, labels = torch.rand(20, 6), torch.arange(20) % 3
    semantics = torch.rand(3, 4)
    torch.manual_seed(3)
    rows = torch.randperm(20)[:7]  # util.next_batch
    torch.manual_seed(3)
    batch = random_batch(features, labels, semantics, 7)
    assert torch.equal(batch.features, features[rows])
    assert torch.equal(batch.labels, labels[rows])
    assert torch.equal(batch.semantics, semantics[labels[rows]])

    torch.manual_seed(4)
    generator = Generator(5, 4, 8, 6)
    unseen = torch.rand(3, 4)
    state = torch.get_rng_state()
    expected = []
    noise = torch.empty(11, 5)
    for row in unseen:  # clswgan.generate_syn_feature: one normal_ per class, in order
        noise.normal_(0, 1)
        expected.append(generator(noise, row.repeat(11, 1)).detach())
    torch.set_rng_state(state)
    got = synthesize_per_class(generator, unseen, 11, 5, "test")
    assert torch.equal(got, torch.cat(expected))
