"""DUET loss terms against their definitions (spec §3.3, §3.5, §3.6)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from unseen.methods.duet.losses import (
    attribute_contrast_loss,
    attribute_regression_loss,
    classification_loss,
    image_contrast_loss,
    mask_reconstruction_loss,
    self_calibration_loss,
    span_reconstruction_loss,
)


@pytest.mark.parametrize("num_classes", [40, 150])
def test_double_softmax_is_bounded_below(num_classes):
    targets = torch.arange(8) % num_classes
    confident = F.one_hot(targets, num_classes).float() * 1e4  # p(target) -> 1
    bound = math.log(1 + (num_classes - 1) / math.e)  # spec §3.3
    assert classification_loss(confident, targets, on_probabilities=True).item() == \
        pytest.approx(bound, rel=1e-5)
    generator = torch.Generator().manual_seed(0)
    random_logits = torch.randn(256, num_classes, generator=generator) * 5
    random_targets = torch.randint(0, num_classes, (256,), generator=generator)
    per_sample = F.cross_entropy(torch.softmax(random_logits, -1), random_targets,
                                 reduction="none")
    assert (per_sample >= bound - 1e-5).all()
    # CE on logits has no such floor: the ablation can reach ~0
    assert classification_loss(confident, targets, on_probabilities=False).item() < 1e-3


def test_regression_and_self_calibration_match_their_formulas():
    generator = torch.Generator().manual_seed(0)
    pre_attri = torch.randn(4, 6, generator=generator)
    target = torch.randn(4, 6, generator=generator)
    assert attribute_regression_loss(pre_attri, target).item() == pytest.approx(
        ((pre_attri - target) ** 2).mean().item(), rel=1e-6)
    sc_logits = torch.randn(4, 5, generator=generator)
    is_unseen = torch.tensor([False, True, False, True, False])
    mass = torch.softmax(sc_logits, -1)[:, is_unseen].sum(1)
    expected = -torch.log(mass.mean())  # log of the batch mean, not the mean of the logs
    assert self_calibration_loss(sc_logits, is_unseen).item() == pytest.approx(expected.item())
    assert expected.item() != pytest.approx(-torch.log(mass).mean().item())


def _mask_case():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 6, 11, generator=generator)
    labels = torch.tensor([[2, 5, 7, 3, 0, 0], [2, 8, 9, 4, 6, 3]])  # row 0 padded with id 0
    attention = (torch.arange(6)[None] < torch.tensor([[4], [6]])).long()
    span = torch.zeros(2, 6, dtype=torch.bool)
    span[0, 1], span[1, 2:4] = True, True
    weights = torch.tensor([0.6, 1.5])
    return logits, labels, attention, span, weights


def _span_inputs(logits, labels, span):
    rows, cols = span.nonzero(as_tuple=True)
    return logits[rows, cols], labels[rows, cols], rows, span.sum(1).float()


def test_span_scale_mask_loss_is_the_mean_over_the_span_only():
    logits, labels, attention, span, weights = _mask_case()
    span_logits, span_labels, rows, counts = _span_inputs(logits, labels, span)
    clean = span_reconstruction_loss(span_logits, span_labels, rows, weights, counts)
    per_token = F.cross_entropy(logits.transpose(1, 2), labels, reduction="none")
    expected = 0.6 * per_token[0, 1] + 1.5 * per_token[1, 2:4].mean()
    assert clean.item() == pytest.approx(expected.item(), rel=1e-6)
    empty = span_reconstruction_loss(logits[:0, 0], labels[:0, 0], labels[:0, 0], weights,
                                     torch.zeros(2))
    assert empty.item() == 0.0  # no sample has a span: no loss, no NaN


def test_clean_default_mask_scale_gives_the_masked_word_the_reference_gradient():
    """Issue #13 item 5: with `mask_loss_scale="reference"` (the default) the masked tokens'
    logits get exactly the gradient the reference's all-position mean gives them, so the
    presets' mask_weight keeps its strength; "span" is L / span_size times stronger."""
    logits, labels, attention, span, weights = _mask_case()
    full = logits.clone().requires_grad_(True)
    mask_reconstruction_loss(full, labels, weights).backward()
    reference_grad = full.grad[span]
    span_logits, span_labels, rows, counts = _span_inputs(logits, labels, span)
    length = logits.shape[1]
    grads = {}
    for scale, denominators in (("reference", float(length)), ("span", counts)):
        leaf = span_logits.clone().requires_grad_(True)
        span_reconstruction_loss(leaf, span_labels, rows, weights, denominators).backward()
        grads[scale] = leaf.grad
    torch.testing.assert_close(grads["reference"], reference_grad, atol=1e-7, rtol=1e-6)
    ratio = (grads["span"].norm(dim=1) / grads["reference"].norm(dim=1))
    torch.testing.assert_close(ratio, length / counts[rows])


def test_objective_uses_the_configured_mask_scale():
    from unseen.methods.duet.config import DUETConfig

    assert DUETConfig().loss_weights().mask_loss_scale == "reference"
    assert DUETConfig(mask_loss_scale="span").loss_weights().mask_loss_scale == "span"
    with pytest.raises(Exception, match="mask_loss_scale"):
        DUETConfig(mask_loss_scale="mean")


def test_mask_loss_reference_averages_over_padding_too():
    logits, labels, attention, span, weights = _mask_case()
    reference = mask_reconstruction_loss(logits, labels, weights)
    per_token = F.cross_entropy(logits.transpose(1, 2), labels, reduction="none")
    assert reference.item() == pytest.approx((weights * per_token.mean(1)).sum().item(), rel=1e-6)
    changed = logits.clone()
    changed[0, 4:, 0] += 50.0  # only [PAD] positions change
    assert mask_reconstruction_loss(changed, labels, weights).item() != pytest.approx(
        reference.item())


def test_attribute_contrast_is_raw_dot_infonce():
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(3, 6, 8, generator=generator)
    weights = torch.tensor([0.2, 0.0, 1.0])
    loss = attribute_contrast_loss(z, weights)
    expected = 0.0
    for t in range(3):
        logits = torch.stack([z[t, 0] @ z[t, j] for j in range(1, 6)])
        expected += weights[t] * -torch.log_softmax(logits, 0)[0]
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_image_contrast_zeroes_same_class_negatives():
    generator = torch.Generator().manual_seed(0)
    batch = 4
    visual = torch.randn(2 * batch, 8, generator=generator)
    labels = torch.tensor([0, 1, 0, 2])
    loss = image_contrast_loss(visual, labels, temperature=0.05)
    f = F.normalize(visual, dim=-1)
    both = torch.cat([labels, labels])
    rows = []
    for r in range(2 * batch):
        partner = (r + batch) % (2 * batch)
        negatives = [0.0 if both[c] == both[r] else float(f[r] @ f[c])
                     for c in range(2 * batch) if c not in (r, partner)]
        logits = torch.tensor([float(f[r] @ f[partner]), *negatives]) / 0.05
        rows.append(-torch.log_softmax(logits, 0)[0])
    assert loss.item() == pytest.approx(torch.stack(rows).mean().item(), rel=1e-5)
