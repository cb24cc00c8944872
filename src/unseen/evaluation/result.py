"""One call that evaluates a score matrix completely: U, S, H, T1, AUSUC, gamma, per class."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from unseen.evaluation.curve import SeenUnseenCurve, ausuc, best_gamma, curve_from_summary
from unseen.evaluation.metrics import (
    DEFAULT_CHUNK_SIZE,
    as_tensor,
    harmonic_mean,
    per_class_accuracy,
    summarise_scores,
    zsl_accuracy_from_summary,
    zsl_accuracy_restricted,
)

ArrayLike = torch.Tensor | np.ndarray


@dataclass(frozen=True)
class EvaluationResult:
    """Everything reported for one score matrix; accuracies are fractions in [0, 1].

    `gamma_selected` is True when gamma was chosen to maximise H on these very scores (honest
    only on a validation split) and False when it was given. `per_class_accuracy` [K] is each
    class's GZSL accuracy at that gamma, None for a class without samples.
    """

    U: float
    S: float
    H: float
    T1: float
    AUSUC: float
    gamma: float
    gamma_selected: bool
    per_class_accuracy: list[float | None]
    curve: SeenUnseenCurve

    def to_dict(self, include_curve: bool = False) -> dict[str, Any]:
        """JSON-able dict (NaN -> None); the curve, which has up to N points, only on request."""
        out: dict[str, Any] = {name: _json_float(getattr(self, name))
                               for name in ("U", "S", "H", "T1", "AUSUC", "gamma")}
        out["gamma_selected"] = self.gamma_selected
        out["per_class_accuracy"] = list(self.per_class_accuracy)
        if include_curve:
            out["curve"] = self.curve.to_dict()
        return out


def evaluate(scores: ArrayLike, labels: ArrayLike, is_seen_class: ArrayLike,
             gamma: float | None = None, zsl_scores: ArrayLike | None = None,
             zsl_labels: ArrayLike | None = None,
             chunk_size: int = DEFAULT_CHUNK_SIZE) -> EvaluationResult:
    """Evaluate GZSL `scores` [N, K]: `labels` [N] are positions 0..K-1, `is_seen_class` [K]
    bool; each a torch tensor or a NumPy array.

    `gamma=None` chooses the calibrated-stacking gamma that maximises H on these scores (use it
    on a validation split, then pass the chosen float on the test split). T1 comes from
    `zsl_scores` [n_unseen, K_u] with `zsl_labels` in 0..K_u-1 when given, else from `scores`
    restricted to the unseen samples and columns. The scores are read once, in chunks of rows.
    """
    scores, labels = as_tensor(scores, "scores"), as_tensor(labels, "labels")
    is_seen_class = as_tensor(is_seen_class, "is_seen_class")
    if (zsl_scores is None) != (zsl_labels is None):
        raise ValueError("zsl_scores and zsl_labels: expected both or neither, found one")
    summary = summarise_scores(scores, is_seen_class, chunk_size)
    curve = curve_from_summary(summary, labels, is_seen_class)
    selected = gamma is None
    if gamma is None:
        gamma = best_gamma(curve)[0]
    unseen, seen = curve.at(gamma)  # the exact curve already holds U and S at every gamma
    harmonic = harmonic_mean(unseen, seen)
    if zsl_scores is not None and zsl_labels is not None:
        zsl_labels = as_tensor(zsl_labels, "zsl_labels")
        top1 = zsl_accuracy_restricted(zsl_scores, zsl_labels, chunk_size)
    else:
        top1 = zsl_accuracy_from_summary(summary, labels, is_seen_class)
    per_class = per_class_accuracy(summary.predictions(gamma), labels, summary.num_classes)
    return EvaluationResult(
        U=unseen, S=seen, H=harmonic, T1=top1, AUSUC=ausuc(curve), gamma=float(gamma),
        gamma_selected=selected, per_class_accuracy=[_json_float(v) for v in per_class.tolist()],
        curve=curve)


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else float(value)
