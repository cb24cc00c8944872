"""The exact seen-unseen accuracy curve of calibrated stacking, its area (AUSUC) and best gamma.

Calibrated stacking only ever predicts a row's seen argmax or its unseen argmax: the seen one
while gamma < gap = best_seen - best_unseen, the unseen one once gamma > gap, and at gamma == gap
the lower column index (the first maximal column, as `torch.argmax`). U(gamma) and S(gamma) are
therefore step functions whose only breakpoints are the gaps of the rows that are right in one of
the two branches. Sorting those gaps and accumulating per-row weights 1 / (#samples of its class)
/ (#classes with samples in its group) gives the curve at every gamma exactly, not on a grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from unseen.evaluation.metrics import (
    DEFAULT_CHUNK_SIZE,
    ScoreSummary,
    _check_labels,
    _seen_mask,
    summarise_scores,
)


@dataclass(frozen=True)
class SeenUnseenCurve:
    """U and S of calibrated stacking for every gamma, as an exact step function.

    `gammas` [m] are the sorted breakpoints. `unseen_accuracy` / `seen_accuracy` [m + 1] hold the
    value on each open interval between them: index 0 is (-inf, gammas[0]), the limit gamma ->
    -inf (every row predicted seen, U = 0 unless some best seen score is -inf), index j is
    (gammas[j-1], gammas[j]) and index m is (gammas[m-1], +inf), the limit gamma -> +inf. At a
    breakpoint itself the value is `unseen_at_gammas[j]` / `seen_at_gammas[j]`, which lies between
    its two neighbours (rows whose gap equals the breakpoint go to their lower column). A group
    with no sample has NaN accuracy everywhere.
    """

    gammas: np.ndarray  # float64 [m]
    unseen_accuracy: np.ndarray  # float64 [m + 1]
    seen_accuracy: np.ndarray  # float64 [m + 1]
    unseen_at_gammas: np.ndarray  # float64 [m]
    seen_at_gammas: np.ndarray  # float64 [m]

    def at(self, gamma: float) -> tuple[float, float]:
        """(U, S) at one gamma; +-inf give the limits at the two ends."""
        if math.isnan(gamma):
            raise ValueError("gamma: expected a number, found NaN")
        j = int(np.searchsorted(self.gammas, gamma, side="left"))
        if j < self.gammas.size and self.gammas[j] == gamma:
            return float(self.unseen_at_gammas[j]), float(self.seen_at_gammas[j])
        return float(self.unseen_accuracy[j]), float(self.seen_accuracy[j])

    @property
    def harmonic_mean(self) -> np.ndarray:
        """H on each open interval [m + 1] (0 where U + S == 0, NaN where a group is empty)."""
        unseen, seen = self.unseen_accuracy, self.seen_accuracy
        total = unseen + seen
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total == 0, 0.0, 2.0 * unseen * seen / total)

    def interval_gammas(self) -> np.ndarray:
        """One gamma strictly inside each open interval [m + 1]: the midpoints, and a point at
        distance max(1, |end|) beyond each end."""
        b = self.gammas
        if b.size == 0:
            return np.zeros(1)
        first = b[0] - max(1.0, abs(float(b[0])))
        last = b[-1] + max(1.0, abs(float(b[-1])))
        return np.concatenate([[first], b[:-1] + (b[1:] - b[:-1]) / 2, [last]])

    def to_dict(self) -> dict[str, list[float | None]]:
        """JSON-able lists (NaN -> None)."""
        return {name: _json_list(getattr(self, name)) for name in
                ("gammas", "unseen_accuracy", "seen_accuracy", "unseen_at_gammas",
                 "seen_at_gammas")}


def seen_unseen_curve(scores: torch.Tensor, labels: torch.Tensor, is_seen_class: torch.Tensor,
                      chunk_size: int = DEFAULT_CHUNK_SIZE) -> SeenUnseenCurve:
    """The exact seen-unseen curve of `scores` [N, K] (see `SeenUnseenCurve`)."""
    return curve_from_summary(summarise_scores(scores, is_seen_class, chunk_size), labels,
                              is_seen_class)


def curve_from_summary(summary: ScoreSummary, labels: torch.Tensor,
                       is_seen_class: torch.Tensor) -> SeenUnseenCurve:
    """The exact curve from a precomputed `ScoreSummary`; O(N log N), no loop over gammas."""
    num_classes = summary.num_classes
    seen_mask = _seen_mask(is_seen_class, num_classes).cpu()
    labels = _check_labels(labels, num_classes, summary.seen_index.numel())
    class_count = torch.bincount(labels, minlength=num_classes).to(torch.float64)
    has_samples = class_count > 0
    groups_seen = float((has_samples & seen_mask).sum())
    groups_unseen = float((has_samples & ~seen_mask).sum())

    is_seen_sample = seen_mask[labels]
    group_size = torch.where(is_seen_sample, torch.tensor(groups_seen, dtype=torch.float64),
                             torch.tensor(groups_unseen, dtype=torch.float64))
    weight = 1.0 / (class_count[labels] * group_size)
    seen_right = is_seen_sample & (summary.seen_index == labels)
    unseen_right = ~is_seen_sample & (summary.unseen_index == labels)
    seen_wins_tie = summary.seen_index < summary.unseen_index

    gap = summary.gap
    undecided = torch.isnan(gap)  # both best scores infinite: the lower column, for every gamma
    finite = torch.isfinite(gap) & (seen_right | unseen_right)
    breakpoints, inverse = torch.unique(gap[finite], sorted=True, return_inverse=True)
    m = breakpoints.numel()
    # bin = 1 + position of the row's gap among the breakpoints; 0 for -inf, m + 1 for +inf
    bins = torch.zeros_like(labels)
    bins[finite] = inverse + 1
    bins[gap == math.inf] = m + 1

    def histogram(rows: torch.Tensor) -> torch.Tensor:
        rows = rows & ~undecided
        return torch.bincount(bins[rows], weights=weight[rows], minlength=m + 2)

    # S on interval j counts seen-right rows with gap >= gammas[j] (bins >= j + 1): a suffix sum
    seen_suffix = histogram(seen_right).flip(0).cumsum(0).flip(0)
    # U on interval j counts unseen-right rows with gap <= gammas[j-1] (bins <= j): a prefix sum
    unseen_prefix = histogram(unseen_right).cumsum(0)
    seen_tie = histogram(seen_right & seen_wins_tie)[1:m + 1]
    unseen_tie = histogram(unseen_right & ~seen_wins_tie)[1:m + 1]
    seen_always = float(weight[seen_right & undecided & seen_wins_tie].sum())
    unseen_always = float(weight[unseen_right & undecided & ~seen_wins_tie].sum())

    seen_interval = seen_suffix[1:m + 2] + seen_always
    unseen_interval = unseen_prefix[:m + 1] + unseen_always
    seen_at = seen_suffix[2:m + 2] + seen_tie + seen_always
    unseen_at = unseen_prefix[:m] + unseen_tie + unseen_always
    # sums of 1/(n_c G) weights may overshoot 1 by an ulp or two; the true values are in [0, 1]
    seen_interval, unseen_interval, seen_at, unseen_at = (
        values.clamp(0.0, 1.0) for values in (seen_interval, unseen_interval, seen_at, unseen_at))
    if groups_seen == 0:
        seen_interval, seen_at = seen_interval * math.nan, seen_at * math.nan
    if groups_unseen == 0:
        unseen_interval, unseen_at = unseen_interval * math.nan, unseen_at * math.nan
    return SeenUnseenCurve(
        gammas=breakpoints.numpy().astype(np.float64),
        unseen_accuracy=unseen_interval.numpy(), seen_accuracy=seen_interval.numpy(),
        unseen_at_gammas=unseen_at.numpy(), seen_at_gammas=seen_at.numpy())


def ausuc(curve: SeenUnseenCurve) -> float:
    """Area under the seen-unseen curve (Chao et al. 2016): S on the y axis against U on x.

    The curve joins the values on consecutive open intervals, from gamma -> -inf to +inf. With
    distinct gaps each step changes U or S alone, so the curve is a staircase and the trapezoid
    rule gives its exact area. Rows with equal gaps switch together; the segment is then a
    diagonal (the average of the two orders, as ROC AUC does for ties). Single breakpoints have
    measure zero in gamma and are left out, as a dense sweep would leave them out. No extension
    below the gamma -> -inf point: if some best seen score is -inf, the area starts at U > 0.
    NaN when a group has no sample.
    """
    unseen, seen = curve.unseen_accuracy, curve.seen_accuracy
    return float(np.sum(np.diff(unseen) * (seen[:-1] + seen[1:]) / 2.0))


def best_gamma(curve: SeenUnseenCurve) -> tuple[float, float, float, float]:
    """(gamma, U, S, H) maximising H over the open intervals of the curve.

    The gamma lies strictly inside its interval (the midpoint, see `interval_gammas`), never at a
    breakpoint, so `gzsl_accuracy(..., gamma)` reproduces U, S and H. Among equal maxima the
    smallest gamma wins. Needs samples of both groups.
    """
    harmonic = curve.harmonic_mean
    if np.isnan(harmonic).all():
        raise ValueError("best_gamma: expected samples of both seen and unseen classes, found "
                         "a group without samples (U or S undefined)")
    j = int(np.nanargmax(harmonic))
    return (float(curve.interval_gammas()[j]), float(curve.unseen_accuracy[j]),
            float(curve.seen_accuracy[j]), float(harmonic[j]))


def _json_list(values: np.ndarray) -> list[float | None]:
    return [None if math.isnan(v) else float(v) for v in values.tolist()]
