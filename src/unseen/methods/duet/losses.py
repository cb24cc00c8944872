"""DUET's training objective (spec §3.3, §3.5, §3.6): loss functions and the module that runs
one training batch through the model and returns the weighted sum.

Classification: the reference applies cross-entropy to *probabilities* (a double softmax,
bounded below by log(1 + (C-1)/e)); the calibrated-stacking gammas of the paper (0.4-0.8) are on
that probability scale. We keep it as the default in both modes (`classification_loss=
"probabilities"`), as spec §7.3 recommends, and offer `"logits"` (CE on pre_attri . att^T) as an
ablation. The scores DUET reports are always probabilities, so gamma keeps its meaning.

Mask reconstruction: the reference averages token CE over all L positions of the padded label
sequence, [PAD] included (`reference=True`); clean mode averages over the masked span only,
which scales the term by roughly L / span length (re-tune `mask_weight` if you compare). Clean
mode therefore runs the MLM head (a d x vocabulary decoder, 30522 wide for BERT) on the span
tokens only: on CPU that is most of the mask branch's head cost saved, with the same loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn
from torch.nn import functional as F

if TYPE_CHECKING:
    from unseen.methods.duet.data import DuetBatch
    from unseen.methods.duet.model import DuetModel


def classification_loss(logits: Tensor, targets: Tensor, on_probabilities: bool = True) -> Tensor:
    """CE over seen classes; `on_probabilities` applies CE to softmax(logits) (reference)."""
    logits = logits.float()
    if on_probabilities:
        return F.cross_entropy(torch.softmax(logits, dim=-1), targets)
    return F.cross_entropy(logits, targets)


def double_softmax_lower_bound(num_classes: int) -> float:
    """The smallest value CE on probabilities can take: log(1 + (C - 1) / e)."""
    return math.log(1.0 + (num_classes - 1) / math.e)


def attribute_regression_loss(pre_attri: Tensor, target_semantics: Tensor) -> Tensor:
    """MSE between predicted attributes and the class attribute rows, mean over B x A."""
    return F.mse_loss(pre_attri.float(), target_semantics.float())


def self_calibration_loss(sc_logits: Tensor, is_unseen: Tensor) -> Tensor:
    """-log of the batch-mean probability mass on unseen classes (not the mean of the logs)."""
    unseen_mass = torch.softmax(sc_logits.float(), dim=-1)[:, is_unseen].sum(dim=-1)
    return -torch.log(unseen_mass.mean())


def mask_reconstruction_loss(token_logits: Tensor, label_ids: Tensor, attention_mask: Tensor,
                             mask_positions: Tensor, weights: Tensor, reference: bool) -> Tensor:
    """sum_i weights[i] * CE_i, CE_i the token cross-entropy of sample i.

    reference: mean over all L positions of the padded sequence ([PAD] included);
    clean: mean over the masked span (`mask_positions`) only.
    """
    per_token = F.cross_entropy(token_logits.float().transpose(1, 2), label_ids, reduction="none")
    if reference:
        per_sample = per_token.mean(dim=1)
    else:
        span = (mask_positions & attention_mask.bool()).float()
        per_sample = (per_token * span).sum(1) / span.sum(1).clamp_min(1.0)
    return (weights.float() * per_sample).sum()


def span_reconstruction_loss(span_logits: Tensor, span_labels: Tensor, span_rows: Tensor,
                             weights: Tensor) -> Tensor:
    """The clean mask loss from the logits of the span tokens only (no [B, L, V] tensor).

    span_logits [M, V] and span_labels [M] are the M span tokens of the batch, span_rows [M]
    their sample; equals `mask_reconstruction_loss(..., reference=False)` on the full logits.
    """
    per_token = F.cross_entropy(span_logits.float(), span_labels, reduction="none")
    batch = weights.shape[0]
    sums = torch.zeros(batch, device=per_token.device).index_add(0, span_rows, per_token)
    counts = torch.bincount(span_rows, minlength=batch).clamp_min(1)
    return (weights.float() * sums / counts).sum()


def attribute_contrast_loss(embeddings: Tensor, weights: Tensor) -> Tensor:
    """ACL InfoNCE (spec §3.5): embeddings [T, 6, d] (anchor, positive, 4 negatives); logits are
    raw dot products anchor . candidate (no normalisation, no temperature); target 0.
    Returns sum_t weights[t] * CE_t."""
    embeddings = embeddings.float()
    logits = torch.einsum("td,tkd->tk", embeddings[:, 0], embeddings[:, 1:])
    targets = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
    return (weights.float() * F.cross_entropy(logits, targets, reduction="none")).sum()


def image_contrast_loss(visual: Tensor, labels: Tensor, temperature: float = 0.05) -> Tensor:
    """The reference's hard-coded SimCLR-style term (spec §3.6) over 2B fused visual tokens:
    rows r and r +- B are positives; other same-class columns stay in the denominator with
    logit 0; the diagonal is dropped; mean CE over the 2B rows."""
    features = F.normalize(visual.float(), dim=-1)
    n = features.shape[0]
    half = n // 2
    similarity = features @ features.T
    both = torch.cat([labels, labels])
    same_class = both[:, None] == both[None, :]
    partner = (torch.arange(n, device=visual.device) + half) % n
    logits = torch.where(same_class, torch.zeros_like(similarity), similarity)
    rows = torch.arange(n, device=visual.device)
    logits[rows, partner] = similarity[rows, partner]
    logits = logits / temperature
    logits = logits.masked_fill(torch.eye(n, dtype=torch.bool, device=visual.device), float("-inf"))
    return F.cross_entropy(logits, partner)


@dataclass(frozen=True)
class LossWeights:
    """The loss weights of one run; built by `DUETConfig.loss_weights()`, which holds the
    per-dataset defaults."""

    classification: float
    regression: float
    self_calibration: float
    mask: float
    contrast: float
    image_contrast: float
    image_contrast_temperature: float
    classification_on_probabilities: bool
    reference_mask_loss: bool


class DuetObjective(nn.Module):
    """One training batch -> (total loss, named parts). Wrapping the whole step in one module
    keeps it a single forward for DistributedDataParallel.

    `semantics` [C, A] are the task's class rows in `task.classes` order (L2-normalised);
    `seen_columns` their seen positions in seen-local order, `is_seen` a bool [C] mask.
    `trunk_features`: batches carry the frozen vision trunk's outputs instead of pixels.
    """

    def __init__(self, model: DuetModel, semantics: Tensor, seen_columns: Tensor, is_seen: Tensor,
                 weights: LossWeights, template_ids: Tensor, share_template_states: bool,
                 trunk_features: bool = False) -> None:
        super().__init__()
        self.trunk_features = trunk_features
        self.model = model
        self.register_buffer("semantics", semantics.float())
        self.register_buffer("seen_columns", seen_columns.long())
        self.register_buffer("is_seen", is_seen.bool())
        self.register_buffer("template_ids", template_ids.long()[None])
        self.weights = weights
        # Clean mode runs the language model once on the template and broadcasts it to the
        # batch (same gradients; dropout shared); the reference runs it on B copies.
        self.share_template_states = share_template_states

    def forward(self, batch: DuetBatch) -> tuple[Tensor, dict[str, Tensor]]:
        w = self.weights
        model = self.model
        seen_semantics = self.semantics[self.seen_columns]
        parts: dict[str, Tensor] = {}
        if batch.masked:
            out = model(batch.pixels, batch.input_ids, batch.attention_mask,
                        trunk_features=self.trunk_features)
            parts["mask"] = w.mask * self._mask_loss(out.lang, batch)
            if batch.contrast_pixels is not None:
                acl = model(batch.contrast_pixels, batch.contrast_ids, batch.contrast_attention,
                            trunk_features=self.trunk_features)
                spans = model.span_embeddings(acl.lang, batch.contrast_positions)
                parts["contrast"] = w.contrast * attribute_contrast_loss(
                    spans.view(-1, 6, spans.shape[-1]), batch.contrast_weights)
        else:
            out = self._template_forward(batch.pixels)
            if batch.view_pixels is not None:
                if self.share_template_states:  # reuse the main forward for the first B tokens
                    views = self._template_forward(batch.view_pixels).visual
                    visual = torch.cat([out.visual, views])
                else:
                    visual = self._template_forward(
                        torch.cat([batch.pixels, batch.view_pixels])).visual
                parts["image_contrast"] = w.image_contrast * image_contrast_loss(
                    visual, batch.labels, w.image_contrast_temperature)
        logits = model.class_logits(out.pre_attri, seen_semantics)
        parts["classification"] = w.classification * classification_loss(
            logits, batch.labels, w.classification_on_probabilities)
        parts["regression"] = w.regression * attribute_regression_loss(
            out.pre_attri, seen_semantics[batch.labels])
        if w.self_calibration:
            sc_logits = model.self_calibration_logits(out.pre_attri, self.semantics, self.is_seen)
            parts["self_calibration"] = w.self_calibration * self_calibration_loss(
                sc_logits, ~self.is_seen)
        total = torch.stack([value.float() for value in parts.values()]).sum()
        return total, parts

    def _mask_loss(self, lang: Tensor, batch: DuetBatch) -> Tensor:
        if self.weights.reference_mask_loss:  # every position, [PAD] included
            return mask_reconstruction_loss(
                self.model.token_logits(lang), batch.label_ids, batch.attention_mask,
                batch.mask_positions, batch.mask_weights, reference=True)
        span = batch.mask_positions & batch.attention_mask.bool()
        return span_reconstruction_loss(self.model.token_logits(lang, span),
                                        batch.label_ids[span], span.nonzero()[:, 0],
                                        batch.mask_weights)

    def _template_forward(self, pixels: Tensor):
        ids = self.template_ids
        mask = torch.ones_like(ids)
        if self.share_template_states:  # the model broadcasts [1, L] states
            return self.model(pixels, ids, mask, trunk_features=self.trunk_features)
        batch = pixels.shape[0]
        return self.model(pixels, ids.expand(batch, -1), mask.expand(batch, -1),
                          trunk_features=self.trunk_features)
