"""Per-class mean top-1 accuracy, GZSL U/S/H with calibrated stacking, and ZSL T1.

Conventions (Xian et al. 2018; Chao et al. 2016):
- `scores` [N, K] over a task's classes, higher is more likely; `labels` [N] are positions
  0..K-1; `is_seen_class` [K] is bool. Each may be a torch tensor, a NumPy array or a list
  (converted once, without a copy where possible). A row is a *seen sample* iff its label is a
  seen class.
- Calibrated stacking predicts argmax_k [scores[:, k] - gamma * is_seen_class[k]], with the
  first maximal column winning ties (as `torch.argmax`).
- Per-class mean accuracy is the mean over the target classes of (#correct / #samples) per
  class. Classes with no sample are excluded from the mean; a group with no sample at all has
  an undefined accuracy, reported as NaN (and then H is NaN too).
- All accuracies are fractions in [0, 1].

Every score matrix is reduced once, chunk by chunk over rows, to a `ScoreSummary`: for each row,
the best seen score and its column and the best unseen score and its column. Calibrated stacking
only ever picks one of those two columns, so every metric and the exact seen-unseen curve
(`unseen.evaluation.curve`) follow from the summary without touching the scores again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

DEFAULT_CHUNK_SIZE = 4096  # rows per chunk: 4096 x 1000 float32 is 16 MB of extra copies


@dataclass(frozen=True)
class ScoreSummary:
    """Per-row reduction of a score matrix [N, K]: all that calibrated stacking needs.

    `seen_index` / `unseen_index` are column positions of the first maximal seen / unseen
    column, or K when the group has no column (then its best score is -inf).
    """

    best_seen: torch.Tensor  # float64 [N]
    seen_index: torch.Tensor  # int64 [N]
    best_unseen: torch.Tensor  # float64 [N]
    unseen_index: torch.Tensor  # int64 [N]
    num_classes: int

    @property
    def gap(self) -> torch.Tensor:
        """best_seen - best_unseen (float64): the row switches to its unseen argmax when gamma
        exceeds it. NaN when both are -inf (or +inf): then the lower column index wins for every
        gamma. Exact for float32 scores, whose difference is representable in float64."""
        return self.best_seen - self.best_unseen

    def predictions(self, gamma: float = 0.0) -> torch.Tensor:
        """Calibrated-stacking predictions (positions 0..K-1) for one gamma.

        Equal to argmax(scores - gamma * is_seen_class) evaluated in exact arithmetic: the seen
        argmax when gap > gamma, the unseen argmax when gap < gamma, the lower column on a tie.
        """
        if math.isnan(gamma):
            raise ValueError("gamma: expected a number, found NaN")
        gap = self.gap
        tie = torch.minimum(self.seen_index, self.unseen_index)
        return torch.where(gap > gamma, self.seen_index,
                           torch.where(gap < gamma, self.unseen_index, tie))


def as_tensor(values: Any, name: str) -> torch.Tensor:
    """`values` (tensor, NumPy array or nested list) as a tensor; shares memory where it can."""
    if isinstance(values, torch.Tensor):
        return values
    try:
        if isinstance(values, np.ndarray):
            values = np.ascontiguousarray(values)  # torch refuses negative strides
        return torch.as_tensor(values)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name}: expected a tensor or a numeric array, found "
                         f"{type(values).__name__}") from None


def summarise_scores(scores: torch.Tensor, is_seen_class: torch.Tensor,
                     chunk_size: int = DEFAULT_CHUNK_SIZE) -> ScoreSummary:
    """Reduce `scores` [N, K] to a `ScoreSummary`, `chunk_size` rows at a time.

    The only extra copy is one chunk's seen and unseen columns, held in two buffers that are
    reused for every chunk (fresh temporaries per chunk fragment the CPU heap). The reduction
    runs on the scores' device; the result lives on the CPU.
    """
    scores = as_tensor(scores, "scores")
    if scores.ndim != 2:
        raise ValueError(f"scores: expected a 2-D tensor [N, K], found shape {tuple(scores.shape)}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size: expected a positive integer, found {chunk_size}")
    num_rows, num_classes = scores.shape
    device = scores.device
    seen_mask = _seen_mask(is_seen_class, num_classes).to(device)
    groups = []
    for columns in (torch.nonzero(seen_mask).flatten(), torch.nonzero(~seen_mask).flatten()):
        best = torch.full((num_rows,), -math.inf, dtype=scores.dtype, device=device)
        position = torch.zeros(num_rows, dtype=torch.int64, device=device)
        if columns.numel():
            buffer = torch.empty(min(chunk_size, num_rows), columns.numel(), dtype=scores.dtype,
                                 device=device)
            for start in range(0, num_rows, chunk_size):
                stop = min(start + chunk_size, num_rows)
                view = buffer[:stop - start]
                torch.index_select(scores[start:stop], 1, columns, out=view)
                torch.max(view, dim=1, out=(best[start:stop], position[start:stop]))
            del buffer
            index = columns[position]
        else:  # no column in this group: best -inf, index K (beyond every real column)
            index = torch.full((num_rows,), num_classes, dtype=torch.int64, device=device)
        groups.append((best.to(torch.float64).cpu(), index.cpu()))
    (best_seen, seen_index), (best_unseen, unseen_index) = groups
    nan_rows = torch.nonzero(torch.isnan(best_seen) | torch.isnan(best_unseen)).flatten()
    if nan_rows.numel():  # torch.max propagates NaN, so a NaN anywhere in a row shows up here
        raise ValueError(f"scores: expected no NaN, found NaN in row {int(nan_rows[0])}")
    return ScoreSummary(best_seen, seen_index, best_unseen, unseen_index, num_classes)


def per_class_accuracy(predictions: torch.Tensor, labels: torch.Tensor,
                       num_classes: int) -> torch.Tensor:
    """Top-1 accuracy of each class over its own samples, float64 [num_classes].

    NaN for a class with no sample (its accuracy is undefined, not zero).
    """
    predictions = torch.as_tensor(predictions).flatten().cpu()
    labels = _check_labels(labels, num_classes, predictions.numel())
    total = torch.bincount(labels, minlength=num_classes).to(torch.float64)
    correct = torch.bincount(labels[predictions == labels], minlength=num_classes)
    accuracy = correct.to(torch.float64) / total
    return torch.where(total > 0, accuracy, torch.full_like(accuracy, math.nan))


def mean_class_accuracy(predictions: torch.Tensor, labels: torch.Tensor,
                        classes: torch.Tensor) -> float:
    """Mean of the per-class accuracies over the target `classes` that have samples.

    `classes` is a bool mask [K] or a tensor of class positions. Classes without samples are
    excluded from the mean; NaN when no target class has a sample.
    """
    classes = torch.as_tensor(classes).flatten().cpu()
    predictions = torch.as_tensor(predictions).flatten().cpu()
    labels = torch.as_tensor(labels).flatten().cpu()
    if classes.dtype == torch.bool:
        num_classes, targets = classes.numel(), classes
    else:
        ids = classes.long()
        present = [t for t in (ids, labels, predictions) if t.numel()]
        num_classes = max((int(t.max()) + 1 for t in present), default=0)
        targets = torch.zeros(num_classes, dtype=torch.bool)
        targets[ids] = True
    accuracy = per_class_accuracy(predictions, labels, num_classes)[targets]
    return _nanmean(accuracy)


def gzsl_accuracy(scores: torch.Tensor, labels: torch.Tensor, is_seen_class: torch.Tensor,
                  gamma: float = 0.0,
                  chunk_size: int = DEFAULT_CHUNK_SIZE) -> tuple[float, float, float]:
    """GZSL (U, S, H) with calibrated stacking `gamma`, searching over all K classes."""
    summary = summarise_scores(scores, is_seen_class, chunk_size)
    return gzsl_accuracy_from_summary(summary, labels, is_seen_class, gamma)


def gzsl_accuracy_from_summary(summary: ScoreSummary, labels: torch.Tensor,
                               is_seen_class: torch.Tensor,
                               gamma: float) -> tuple[float, float, float]:
    """(U, S, H) from a precomputed `ScoreSummary`."""
    seen_mask = _seen_mask(is_seen_class, summary.num_classes).cpu()
    labels = _check_labels(labels, summary.num_classes, summary.seen_index.numel())
    accuracy = per_class_accuracy(summary.predictions(gamma), labels, summary.num_classes)
    unseen, seen = _nanmean(accuracy[~seen_mask]), _nanmean(accuracy[seen_mask])
    return unseen, seen, harmonic_mean(unseen, seen)


def zsl_accuracy(scores: torch.Tensor, labels: torch.Tensor, is_seen_class: torch.Tensor,
                 chunk_size: int = DEFAULT_CHUNK_SIZE) -> float:
    """ZSL T1: per-class mean accuracy of the unseen samples, argmax over unseen columns only."""
    summary = summarise_scores(scores, is_seen_class, chunk_size)
    return zsl_accuracy_from_summary(summary, labels, is_seen_class)


def zsl_accuracy_from_summary(summary: ScoreSummary, labels: torch.Tensor,
                              is_seen_class: torch.Tensor) -> float:
    """T1 from a precomputed `ScoreSummary` (its unseen argmax, on the unseen samples)."""
    seen_mask = _seen_mask(is_seen_class, summary.num_classes).cpu()
    labels = _check_labels(labels, summary.num_classes, summary.seen_index.numel())
    unseen_rows = ~seen_mask[labels]
    return mean_class_accuracy(summary.unseen_index[unseen_rows], labels[unseen_rows], ~seen_mask)


def zsl_accuracy_restricted(zsl_scores: torch.Tensor, zsl_labels: torch.Tensor,
                            chunk_size: int = DEFAULT_CHUNK_SIZE) -> float:
    """T1 from a separate ZSL score matrix [n_unseen, K_u] with labels in 0..K_u-1."""
    zsl_scores = as_tensor(zsl_scores, "zsl_scores")
    if zsl_scores.ndim != 2:
        raise ValueError(f"zsl_scores: expected a 2-D tensor [n, K_u], found shape "
                         f"{tuple(zsl_scores.shape)}")
    num_unseen = zsl_scores.shape[1]
    all_unseen = torch.zeros(num_unseen, dtype=torch.bool)
    summary = summarise_scores(zsl_scores, all_unseen, chunk_size)
    labels = _check_labels(zsl_labels, num_unseen, zsl_scores.shape[0])
    return mean_class_accuracy(summary.unseen_index, labels, ~all_unseen)


def harmonic_mean(unseen: float, seen: float) -> float:
    """H = 2US / (U + S); 0 when U + S == 0, NaN when either is NaN."""
    if math.isnan(unseen) or math.isnan(seen):
        return math.nan
    total = unseen + seen
    return 0.0 if total == 0 else 2.0 * unseen * seen / total


def _nanmean(values: torch.Tensor) -> float:
    present = values[~torch.isnan(values)]
    return float(present.mean()) if present.numel() else math.nan


def _seen_mask(is_seen_class: torch.Tensor, num_classes: int) -> torch.Tensor:
    mask = as_tensor(is_seen_class, "is_seen_class").flatten()
    if mask.dtype != torch.bool or mask.numel() != num_classes:
        raise ValueError(f"is_seen_class: expected a bool tensor of length {num_classes}, "
                         f"found {mask.dtype} of length {mask.numel()}")
    return mask


def _check_labels(labels: Any, num_classes: int, num_rows: int | None = None) -> torch.Tensor:
    """Labels as a flat int64 CPU tensor (from a tensor or array of integers), range-checked."""
    labels = as_tensor(labels, "labels").flatten().cpu()
    if labels.dtype == torch.bool or labels.is_floating_point() or labels.is_complex():
        raise ValueError(f"labels: expected integer class positions, found {labels.dtype}")
    labels = labels.long()
    if num_rows is not None and labels.numel() != num_rows:
        raise ValueError(f"labels: expected {num_rows} entries (one per score row), "
                         f"found {labels.numel()}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"labels: expected positions in 0..{num_classes - 1}, found values in "
                         f"{int(labels.min())}..{int(labels.max())}")
    return labels
