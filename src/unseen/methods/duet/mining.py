"""DUET's class-level mining tables and the draws made from them (spec §1.4, §3.2, §3.4).

Everything that depends only on the seen classes' binary rows and attributes is computed once per
task, vectorised, in `MiningTables.__init__`:
- `deal`: seen attributes min-max scaled with ONE global min and max (the "attribute strength"
  w(c, a) of the mask and contrastive losses);
- `distance`: squared Manhattan distance between `deal` rows, diagonal = 1 (the reference fills a
  ones matrix, never writes the diagonal, then squares);
- `frequency`: 1 / (number of seen classes having the attribute, +3 for the AWA2 groups habit,
  diet, behaviour, role), 0 for attributes no seen class has;
- `far_order` / `near_order`: every seen class's classes sorted by distance, descending (positives)
  and ascending = 1/D descending (negatives), stable like the reference's `sorted`;
- `negative_ok[g, y, c]`: class c shares none of y's values of group g and has another value of
  it; `has_negatives[y, g]` = any c.
The candidate lists of the spec (per (class, attribute) positives, per (class, group) negatives,
top floor(n/2)+1 with p proportional to D or 1/D) are read off these tables per draw, in O(C_s).

Edge cases the reference crashes on (spec §6.1 item 12), handled here:
- "newmask" with all active frequencies equal, or a single active attribute: min-max scaling
  gives 0/0; we draw uniformly from the active set instead.
- a class with no active attribute cannot be masked: `choose_masked_attribute` returns -1.
- two seen classes at distance 0: 1/D is taken with D floored at 1e-12 instead of dividing by 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import cdist

# AWA2 groups whose attributes count 3 extra classes in the tf-idf frequency (spec §1.4).
_BOOSTED_GROUPS = ("habit", "diet", "behaviour", "role")
_MASK_RETRIES = 3


@dataclass
class ContrastExample:
    """One ACL 6-tuple: masked anchor, positive, 4 negatives, with their attribute-word spans."""

    input_ids: list[list[int]]  # 6 sequences: anchor (masked), positive, 4 negatives (unmasked)
    positions: list[list[int]]  # per sequence, token positions of the attribute span
    classes: list[int]  # seen-local class of each of the 6 (anchor, pos, n1, n1, n2, n2)
    weight: float  # min(w(y, a*), w(pos, a*)) (times construct_loss_weight later)
    # False: ACL is skipped for the sample after `classes` were mined (the reference has
    # already popped their pool images by then); the texts are then not all built
    complete: bool = True


def minmax_probabilities(values: np.ndarray) -> np.ndarray:
    """p proportional to min-max-scaled values; uniform where that is 0/0 (all equal, one value)."""
    low, high = values.min(), values.max()
    if high <= low:
        return np.full(values.size, 1.0 / values.size)
    scaled = (values - low) / (high - low)
    return scaled / scaled.sum()


def draw_index(probabilities: np.ndarray, rng: np.random.Generator) -> int:
    """One index drawn with the given probabilities (cheaper than `rng.choice` for one draw)."""
    cumulative = np.cumsum(probabilities)
    return int(min(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"),
                   probabilities.size - 1))


def top_half(ordered: np.ndarray) -> np.ndarray:
    """The reference keeps the first floor(n/2)+1 of its sorted candidates."""
    return ordered[: ordered.size // 2 + 1]


class MiningTables:
    """Class-level tables for masking and contrastive mining over the seen classes of one task."""

    def __init__(self, binary_seen: np.ndarray, semantics_seen: np.ndarray,
                 group_index: np.ndarray, group_names: list[str],
                 replicate_reference_bugs: bool = False) -> None:
        self.binary = np.asarray(binary_seen).astype(bool)  # [Cs, A]
        self.group_index = np.asarray(group_index, dtype=np.int64)  # [A]
        self.group_names = list(group_names)
        self.replicate_reference_bugs = replicate_reference_bugs
        self.group_members = [np.flatnonzero(self.group_index == g)
                              for g in range(len(group_names))]

        values = np.asarray(semantics_seen, dtype=np.float64)
        span = values.max() - values.min()
        self.deal = (values - values.min()) / span if span > 0 else np.zeros_like(values)
        distance = cdist(self.deal, self.deal, metric="cityblock")
        np.fill_diagonal(distance, 1.0)
        self.distance = distance**2  # [Cs, Cs]
        self.inverse_distance = 1.0 / np.maximum(self.distance, 1e-12)
        self.far_order = np.argsort(-self.distance, axis=1, kind="stable")
        self.near_order = np.argsort(-self.inverse_distance, axis=1, kind="stable")

        times = self.binary.sum(axis=0).astype(np.float64)
        boosted = np.isin(np.array(self.group_names, dtype=object)[self.group_index],
                          _BOOSTED_GROUPS)
        times = times + 3.0 * boosted
        self.frequency = np.divide(1.0, times, out=np.zeros_like(times), where=times > 0)

        as_int = self.binary.astype(np.int32)
        ok = np.empty((len(group_names), *self.distance.shape), dtype=bool)
        for g, members in enumerate(self.group_members):  # a handful of groups, once per task
            rows = as_int[:, members]
            shared = rows @ rows.T  # [y, c]: values of g both classes have
            other = (1 - rows) @ rows.T  # [y, c]: values of g that c has and y lacks
            ok[g] = (shared == 0) & (other > 0)
        self.negative_ok = ok  # [G, Cs, Cs]
        self.has_negatives = ok.any(axis=2).T  # [Cs, G]

    @property
    def num_seen(self) -> int:
        return int(self.binary.shape[0])

    def choose_masked_attribute(self, y: int, rng: np.random.Generator) -> tuple[int, bool]:
        """Rare-first ("newmask") draw of a*, retried up to 3 times until negatives exist.

        Returns (a*, valid); after 3 failures the last a* comes back with valid False (the
        reference keeps it for the mask loss and skips the contrastive term). (-1, False) when the
        class has no active attribute.
        """
        active = np.flatnonzero(self.binary[y])
        if active.size == 0:
            return -1, False
        probabilities = minmax_probabilities(self.frequency[active])
        attribute = -1
        for _ in range(_MASK_RETRIES):
            attribute = int(active[draw_index(probabilities, rng)])
            if self.has_negatives[y, self.group_index[attribute]]:
                return attribute, True
        return attribute, False

    def aspect_sets(self, y: int, attribute: int) -> tuple[np.ndarray, np.ndarray]:
        """(cannotmask, needmask): y's active and inactive values of a*'s group."""
        members = self.group_members[self.group_index[attribute]]
        active = self.binary[y, members]
        return members[active], members[~active]

    def positive_candidates(self, y: int, attribute: int) -> tuple[np.ndarray, np.ndarray]:
        """Seen classes with a* (y included), farthest first, top half, p proportional to D."""
        order = self.far_order[y]
        candidates = top_half(order[self.binary[order, attribute]])
        weights = self.distance[y, candidates]
        return candidates, weights / weights.sum()

    def negative_candidates(self, y: int, group: int) -> tuple[np.ndarray, np.ndarray]:
        """Classes with another value of the group and none of y's, closest first, top half."""
        order = self.near_order[y]
        candidates = order[self.negative_ok[group, y, order]]
        return self._nearest(y, candidates)

    def _nearest(self, y: int, ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if ordered.size == 0:
            return ordered, np.zeros(0)
        candidates = top_half(ordered)
        weights = self.inverse_distance[y, candidates]
        return candidates, weights / weights.sum()

    def fallback_negatives(self, y: int, attribute: int,
                           kept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reference fallback: classes with one of `kept` values and without a*, closest first."""
        order = self.near_order[y]
        has_kept = self.binary[np.ix_(order, kept)].any(axis=1) if kept.size else \
            np.zeros(order.size, dtype=bool)
        return self._nearest(y, order[has_kept & ~self.binary[order, attribute]])

    def draw_positive(self, y: int, attribute: int, rng: np.random.Generator) -> int | None:
        """A far seen class sharing a*, or None when none has it."""
        candidates, probabilities = self.positive_candidates(y, attribute)
        if candidates.size == 0:
            return None
        return int(candidates[draw_index(probabilities, rng)])

    def draw_negatives(self, y: int, attribute: int, needmask: np.ndarray,
                       notmiss: np.ndarray, miss: np.ndarray,
                       rng: np.random.Generator) -> list[tuple[int, int]] | None:
        """Four (class, value) negatives: 2 classes x 2 values, or 1 class x 4 (spec §3.4).

        Values are drawn uniformly, with replacement, from needmask ∩ the class's values. None
        when the reference skips the contrastive term for this sample.
        """
        if needmask.size == 0:
            return None
        candidates, probabilities = self.negative_candidates(y, self.group_index[attribute])
        for kept in (notmiss, miss):  # unreachable in practice (spec §3.4), kept for fidelity
            if candidates.size:
                break
            candidates, probabilities = self.fallback_negatives(y, attribute, kept)
        if candidates.size == 0:
            return None
        two_classes = candidates.size > 1
        if not two_classes:  # one class gives all 4 values
            classes = [int(candidates[0])] * 2
        else:
            first = draw_index(probabilities, rng)
            rest = probabilities.copy()
            rest[first] = 0.0
            classes = [int(candidates[first]), int(candidates[draw_index(rest, rng)])]
        pairs: list[tuple[int, int]] = []
        previous: list[int] = []
        for k, negative in enumerate(classes):
            values = needmask[self.binary[negative, needmask]]
            if values.size == 0:
                return None
            picks = rng.integers(values.size, size=2).tolist()
            if self.replicate_reference_bugs and k == 1 and two_classes:
                # the reference redraws once when a position equals the first class's position
                # in ITS OWN list: meaningless but it shifts the distribution slightly
                picks = [int(rng.integers(values.size)) if p == q else p
                         for p, q in zip(picks, previous, strict=True)]
            previous = picks
            pairs += [(negative, int(values[p])) for p in picks]
        return pairs
