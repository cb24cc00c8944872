"""DUET's training objective (spec §3.3, §3.5, §3.6): loss functions and the module that runs
one training batch through the model and returns the weighted sum.

Classification: the reference applies cross-entropy to *probabilities* (a double softmax,
bounded below by log(1 + (C-1)/e)); the calibrated-stacking gammas of the paper (0.4-0.8) are on
that probability scale. We keep it as the default in both modes (`classification_loss=
"probabilities"`), as spec §7.3 recommends, and offer `"logits"` (CE on pre_attri . att^T) as an
ablation. The scores DUET reports are always probabilities, so gamma keeps its meaning.

Mask reconstruction: the reference averages token CE over all L positions of the padded label
sequence, [PAD] included (`mask_reconstruction_loss`). Clean mode reconstructs the masked span
only and runs the MLM head (a d x vocabulary decoder, 30522 wide for BERT) on the span tokens
only (`span_reconstruction_loss`). Its scale is the option `mask_loss_scale`:
- "reference" (default): the span's CE summed and divided by the padded length L, which is
  exactly the weight the reference's all-position mean gives each masked token, so the
  presets' `mask_weight` (5 / 1 / 1) keeps its meaning: the masked word gets the reference's
  gradient (tests/test_duet_losses.py checks the gradients are equal), the visible tokens
  and [PAD] get none;
- "span": the mean over the span, which multiplies the masked word's gradient by L / span
  (about 100x at the presets' lengths; re-tune `mask_weight` if you use it).

No host syncs: the span positions come precomputed from the data pipeline (no boolean
indexing, `nonzero` or `bincount` on the device), and the unseen mass of the self-calibration
loss is a product with a float mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from unseen.errors import TrainingDivergedError

if TYPE_CHECKING:
    from unseen.methods.duet.data import DuetBatch
    from unseen.methods.duet.model import DuetModel


def classification_loss(logits: Tensor, targets: Tensor, on_probabilities: bool = True) -> Tensor:
    """CE over seen classes; `on_probabilities` applies CE to softmax(logits) (reference)."""
    logits = logits.float()
    if on_probabilities:
        return F.cross_entropy(torch.softmax(logits, dim=-1), targets)
    return F.cross_entropy(logits, targets)


def attribute_regression_loss(pre_attri: Tensor, target_semantics: Tensor) -> Tensor:
    """MSE between predicted attributes and the class attribute rows, mean over B x A."""
    return F.mse_loss(pre_attri.float(), target_semantics.float())


def self_calibration_loss(sc_logits: Tensor, is_unseen: Tensor) -> Tensor:
    """-log of the batch-mean probability mass on unseen classes (not the mean of the logs)."""
    probabilities = torch.softmax(sc_logits.float(), dim=-1)
    unseen_mass = probabilities @ is_unseen.to(probabilities.dtype)  # no boolean indexing
    return -torch.log(unseen_mass.mean())


def mask_reconstruction_loss(token_logits: Tensor, label_ids: Tensor, weights: Tensor) -> Tensor:
    """The reference's mask loss: sum_i weights[i] * mean over all L positions of the padded
    label sequence ([PAD] included, no ignore index) of the token CE."""
    per_token = F.cross_entropy(token_logits.float().transpose(1, 2), label_ids, reduction="none")
    return (weights.float() * per_token.mean(dim=1)).sum()


def span_reconstruction_loss(span_logits: Tensor, span_labels: Tensor, span_rows: Tensor,
                             weights: Tensor, denominators: Tensor | float) -> Tensor:
    """The clean mask loss from the logits of the span tokens only (no [B, L, V] tensor):
    sum_i weights[i] * (sum of sample i's span CE) / denominators[i].

    span_logits [M, V] and span_labels [M] are the M span tokens of the batch, span_rows [M]
    their sample. `denominators`: the padded length L (scale "reference") or the span sizes
    [B] (scale "span", floored at 1).
    """
    per_token = F.cross_entropy(span_logits.float(), span_labels, reduction="none")
    sums = torch.zeros(weights.shape[0], device=per_token.device).index_add(0, span_rows,
                                                                           per_token)
    if isinstance(denominators, Tensor):
        denominators = denominators.to(sums.device).clamp_min(1.0)
    return (weights.float() * sums / denominators).sum()


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
    # clean mask loss: "reference" (span CE sum / padded length) or "span" (span mean)
    mask_loss_scale: str = "reference"

    @property
    def image_contrast_active(self) -> bool:
        """The reference runs the image contrast only when `construct_loss_weight` (our
        `contrast`) is non-zero: the paper's "without ACL" ablation switches both off."""
        return self.contrast != 0 and self.image_contrast != 0


class DuetObjective(nn.Module):
    """One training batch -> (total loss, named parts). Wrapping the whole step in one module
    keeps it a single forward for DistributedDataParallel.

    `semantics` [C, A] are the task's class rows in `task.classes` order (L2-normalised);
    `seen_columns` their seen positions in seen-local order, `is_seen` a bool [C] mask.
    `trunk_features`: batches carry the frozen vision trunk's outputs instead of pixels.
    """

    def __init__(self, model: DuetModel, semantics: Tensor, seen_columns: Tensor, is_seen: Tensor,
                 weights: LossWeights, template_ids: Tensor, share_template_states: bool,
                 trunk_features: bool = False, mask_probability: float = 0.4) -> None:
        super().__init__()
        self.mask_probability = mask_probability
        self.trunk_features = trunk_features
        self.model = model
        self.register_buffer("semantics", semantics.float())
        self.register_buffer("seen_columns", seen_columns.long())
        self.register_buffer("is_seen", is_seen.bool())
        self.register_buffer("is_unseen", ~is_seen.bool())
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
            if batch.contrast_pixels is not None and w.contrast:
                acl = model(batch.contrast_pixels, batch.contrast_ids, batch.contrast_attention,
                            trunk_features=self.trunk_features,
                            cross_attention_mask=batch.contrast_cross_mask)
                spans = model.span_embeddings(acl.lang, batch.contrast_positions)
                parts["contrast"] = w.contrast * attribute_contrast_loss(
                    spans.view(-1, 6, spans.shape[-1]), batch.contrast_weights)
        else:
            out = self._template_forward(batch.pixels)
            if batch.view_pixels is not None and w.image_contrast_active:
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
                sc_logits, self.is_unseen)
        total = torch.stack([value.float() for value in parts.values()]).sum()
        return total, parts

    def _mask_loss(self, lang: Tensor, batch: DuetBatch) -> Tensor:
        if self.weights.reference_mask_loss:  # every position, [PAD] included
            return mask_reconstruction_loss(self.model.token_logits(lang), batch.label_ids,
                                            batch.mask_weights)
        span_states = lang.flatten(0, 1).index_select(0, batch.span_index)
        span_labels = batch.label_ids.flatten().index_select(0, batch.span_index)
        denominators = (float(lang.shape[1]) if self.weights.mask_loss_scale == "reference"
                        else batch.span_counts)
        return span_reconstruction_loss(self.model.mlm_head(span_states), span_labels,
                                        batch.span_rows, batch.mask_weights, denominators)

    def _template_forward(self, pixels: Tensor):
        ids = self.template_ids
        mask = torch.ones_like(ids)
        if self.share_template_states:  # the model broadcasts [1, L] states
            return self.model(pixels, ids, mask, trunk_features=self.trunk_features)
        batch = pixels.shape[0]
        return self.model(pixels, ids.expand(batch, -1), mask.expand(batch, -1),
                          trunk_features=self.trunk_features)

    # -- which parameters a step uses (DistributedDataParallel) ----------------------------------

    def never_used_parameters(self) -> list[str]:
        """Names (in this module) of trainable parameters no step ever uses: the language
        model's pooler (its output is unused, spec §2.3), and the parameters only the mask
        branch uses when the configuration never runs it: the MLM head, the contrast
        projection and the X-layer's language-side self-attention and FFN (a template batch
        reads only the fused visual token, which attends to the language model's states
        before the X-layer updates them)."""
        unused_prefixes = ["model.text_encoder.pooler."]
        if not self.mask_branch_possible:
            unused_prefixes += ["model.mlm_head.", *LANGUAGE_SIDE_PREFIXES]
        if not self.mask_branch_possible or not self.weights.contrast:
            unused_prefixes.append("model.contrast_projection.")
        return [name for name, p in self.named_parameters()
                if p.requires_grad and name.startswith(tuple(unused_prefixes))]

    def same_parameters_every_step(self) -> bool:
        """True when every step uses the same parameters (once `never_used_parameters` are
        ignored), so DDP needs no unused-parameter search and can use a static graph: the
        branch coin always lands the same way, and a mask batch always uses the contrast
        projection or never does. Otherwise template batches leave the MLM head and the
        X-layer's language side unused, and mask batches without an ACL tuple leave the
        contrast projection unused."""
        if not self.mask_branch_possible:
            return True
        return self.mask_probability >= 1.0 and not self.weights.contrast

    @property
    def mask_branch_possible(self) -> bool:
        return self.mask_probability > 0


LOSS_NAMES = ("classification", "regression", "self_calibration", "mask", "contrast",
              "image_contrast")


# X-layer modules that only the fused language states (mask branch, ACL) depend on
LANGUAGE_SIDE_PREFIXES = ("model.cross_layer.lang_self_att.", "model.cross_layer.lang_inter.",
                          "model.cross_layer.lang_output.")


class LossTracker:
    """Per-epoch loss sums kept on the device (no host sync per step); `check` (every
    `sync_every_steps` batches and before every evaluation) reads them once and raises
    `TrainingDivergedError` if any part was ever non-finite."""

    def __init__(self, device: torch.device) -> None:
        self.sums = torch.zeros(len(LOSS_NAMES) + 1, dtype=torch.float64, device=device)
        self.finite = torch.ones(len(LOSS_NAMES) + 1, dtype=torch.bool, device=device)
        self.counts = np.zeros(len(LOSS_NAMES) + 1, dtype=np.int64)  # known on the host
        self.batches = self.mask_batches = self.contrast_tuples = 0
        self._zero = torch.zeros((), device=device)

    def add(self, loss: Tensor, parts: dict[str, Tensor], batch: DuetBatch) -> None:
        # absent parts add 0; what is present is known on the host, so nothing is copied over
        values = torch.stack([parts.get(name, self._zero).detach().float()
                              for name in LOSS_NAMES] + [loss.detach().float()])
        self.sums += values.double()
        self.finite &= torch.isfinite(values)
        self.counts += np.array([name in parts for name in LOSS_NAMES] + [True])
        self.batches += 1
        self.mask_batches += int(batch.masked)
        if batch.contrast_weights is not None:
            self.contrast_tuples += batch.contrast_weights.numel()

    def check(self, epoch: int, step: int) -> None:
        finite = self.finite.cpu().numpy()
        if not finite.all():
            names = [name for name, ok in zip((*LOSS_NAMES, "loss"), finite, strict=True)
                     if not ok]
            raise TrainingDivergedError(
                f"DUET: loss {names} became NaN or Inf by epoch {epoch}, step {step}; training "
                "stopped before the next checkpoint, the last good one is the previous "
                "evaluation's; lower the learning rate")

    def means(self) -> dict[str, float]:
        """Each part averaged over the batches it occurred in, plus the branch counts."""
        sums = self.sums.cpu().numpy()
        means = {name: float(sums[k] / max(self.counts[k], 1))
                 for k, name in enumerate((*LOSS_NAMES, "loss"))}
        means["mask_batches"] = self.mask_batches / max(self.batches, 1)
        means["contrast_tuples"] = self.contrast_tuples / max(self.batches, 1)
        return means
