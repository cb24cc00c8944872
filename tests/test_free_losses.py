"""FREE's SAMC loss and FR module against slow forms written as the reference writes them
(`center_loss.py`, `model.py:104-131`): values and gradients."""

from __future__ import annotations

import pytest
import torch
from test_cegzsl_method import _one_thread  # noqa: F401  (autouse: one torch thread)

from unseen.methods.free.losses import random_other_classes, samc_loss, squared_distances
from unseen.methods.free.networks import FeatureRefinement


def _reference_samc(mu, labels, centers, margin, incenter_weight, negative):
    """`TripCenterLoss_min_margin` / `TripCenterLoss_margin` as written: the expanded distance
    matrix, boolean-mask gathers and, for the nearest negative, the per-sample loop."""
    batch, num_classes = mu.shape[0], centers.shape[0]
    distmat = (mu.pow(2).sum(1, keepdim=True).expand(batch, num_classes)
               + centers.pow(2).sum(1, keepdim=True).expand(num_classes, batch).t())
    distmat = distmat.addmm(mu, centers.t(), beta=1, alpha=-2)
    classes = torch.arange(num_classes)
    mask = labels.unsqueeze(1).expand(batch, num_classes).eq(classes.expand(batch, num_classes))
    dist = distmat[mask]
    if negative == "nearest":
        other = torch.zeros(batch, num_classes - 1)
        for i in range(batch):
            other[i] = distmat[i, mask[i, :] == 0]
        dist_other, _ = other.min(dim=1)
    else:
        index = torch.randint(num_classes, (batch,))
        other_labels = labels + index
        other_labels[other_labels >= num_classes] -= num_classes
        mask_other = other_labels.unsqueeze(1).expand(batch, num_classes).eq(
            classes.expand(batch, num_classes))
        dist_other = distmat[mask_other]
    hinge = margin + incenter_weight * dist - (1 - incenter_weight) * dist_other
    return torch.max(hinge, torch.tensor(0.0)).sum() / batch


def _inputs(seed: int, batch: int = 40, classes: int = 7, dim: int = 5):
    generator = torch.Generator().manual_seed(seed)
    mu = torch.randn(batch, dim, generator=generator, requires_grad=True)
    centers = torch.randn(classes, dim, generator=generator, requires_grad=True)
    labels = torch.randint(classes, (batch,), generator=generator)
    return mu, labels, centers


@pytest.mark.parametrize("negative", ["nearest", "random"])
@pytest.mark.parametrize(("margin", "incenter_weight"), [(5.0, 0.5), (50.0, 0.1), (1.0, 0.8)])
def test_samc_matches_the_reference_form_in_value_and_gradients(negative, margin,
                                                               incenter_weight):
    losses, gradients = [], []
    for form in (samc_loss, _reference_samc):
        mu, labels, centers = _inputs(seed=3)
        torch.manual_seed(11)  # the same negatives for the random variant
        loss = form(mu, labels, centers, margin, incenter_weight, negative)
        loss.backward()
        losses.append(loss.detach())
        gradients.append((mu.grad, centers.grad))
    assert torch.allclose(losses[0], losses[1], rtol=1e-6, atol=1e-6)
    for ours, reference in zip(gradients[0], gradients[1], strict=True):
        assert torch.allclose(ours, reference, rtol=1e-5, atol=1e-6)
    # some hinges are active and some are not at margin 1, so the check covers both branches
    assert losses[0] > 0


def test_samc_hinge_is_inactive_beyond_the_margin():
    mu, labels, centers = _inputs(seed=4)
    with torch.no_grad():
        mu.copy_(centers[labels])  # every sample on its own centre: d(i, y_i) = 0
        centers.mul_(100.0)  # ... and far from the others
        mu.copy_(centers[labels])
    loss = samc_loss(mu, labels, centers, 1.0, 0.5, "nearest")
    assert float(loss.detach()) == 0.0


def test_squared_distances_are_squared_euclidean():
    mu, _, centers = _inputs(seed=5)
    expected = torch.cdist(mu.double(), centers.double()).pow(2)
    assert torch.allclose(squared_distances(mu, centers).double(), expected, atol=1e-4)


def test_random_negatives_wrap_and_can_equal_the_label():
    torch.manual_seed(0)
    labels = torch.arange(6).repeat(500)
    others = random_other_classes(labels, 6)
    assert int(others.min()) >= 0 and int(others.max()) <= 5
    same = (others == labels).float().mean()
    assert 0.1 < float(same) < 0.25  # probability 1/6: the offset can be 0 (free.md §3.1.5)
    torch.manual_seed(0)
    offsets = torch.randint(6, (labels.shape[0],))  # one randint on the CPU generator
    assert torch.equal(others, (labels + offsets) % 6)


def test_feature_refinement_forward_is_the_reference_forward():
    torch.manual_seed(0)
    fr = FeatureRefinement(feature_dim=12, hidden_dim=9, semantic_dim=4, num_seen=3)
    x = torch.rand(6, 12)
    torch.manual_seed(1)
    refined = fr(x)
    hidden = torch.nn.functional.leaky_relu(fr.fc1(x), 0.2)
    latent = fr.fc3(hidden)
    torch.manual_seed(1)
    eps = torch.randn(6, 4)
    mu, sigma = latent[:, :4], torch.sigmoid(latent[:, 4:])
    assert torch.equal(refined.hidden, hidden) and torch.equal(refined.mu, mu)
    assert torch.equal(refined.sigma, sigma)
    assert torch.allclose(refined.reconstruction, torch.sigmoid(eps * sigma + mu))
    # the classifier input: [x ; h ; Sigmoid(mu + sigma * eps)] (noisy) or [x ; h ; Sigmoid(mu)]
    torch.manual_seed(1)
    noisy = fr.classifier_features(x, stochastic=True)
    assert torch.allclose(noisy, torch.cat([x, hidden, refined.reconstruction], 1))
    before = torch.get_rng_state()
    plain = fr.classifier_features(x, stochastic=False)
    assert torch.equal(torch.get_rng_state(), before)  # no draw
    assert torch.allclose(plain, torch.cat([x, hidden, torch.sigmoid(mu)], 1))
    assert plain.shape == (6, 12 + 9 + 4)


def test_feature_refinement_initialisation_and_dead_heads():
    torch.manual_seed(2)
    fr = FeatureRefinement(feature_dim=30, hidden_dim=20, semantic_dim=6, num_seen=5)
    for layer in (fr.fc1, fr.fc3, fr.discriminator, fr.classifier):
        assert torch.equal(layer.bias, torch.zeros_like(layer.bias))
        assert float(layer.weight.detach().abs().max()) < 0.1  # N(0, 0.02^2), not the default init
    assert 0.015 < float(fr.fc1.weight.detach().std()) < 0.025
    # the dead heads exist with the reference's shapes (their init draws keep the stream)
    assert fr.discriminator.weight.shape == (1, 6) and fr.classifier.weight.shape == (5, 6)
    x = torch.rand(4, 30)
    fr(x).reconstruction.sum().backward()
    assert fr.discriminator.weight.grad is None and fr.classifier.weight.grad is None
