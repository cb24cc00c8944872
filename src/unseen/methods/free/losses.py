"""FREE's self-adaptive margin centre loss (SAMC, reference `center_loss.py`), vectorised.

With d(i, k) = ||mu_i - c_k||^2 for FR means mu [B, A] and class centres c [C_s, A], seen-local
labels y, margin Delta and in-centre weight w:

    SAMC = (1 / B) sum_i max(Delta + w d(i, y_i) - (1 - w) d(i, o_i), 0)

where the negative o_i is
- "nearest" (`TripCenterLoss_min_margin`, AWA1/AWA2/APY): the nearest other centre. The
  reference builds it with a Python loop over the batch; here it is a masked min.
- "random" (`TripCenterLoss_margin`, CUB/FLO/SUN): o_i = (y_i + U{0..C_s-1}) mod C_s, one
  `randint` on the CPU generator. The offset can be 0, so o_i = y_i with probability 1/C_s.
"""

from __future__ import annotations

import torch

NEGATIVES = ("nearest", "random")


def random_other_classes(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The reference's `Other_label`: labels shifted by a uniform offset in [0, C_s), wrapped."""
    offset = torch.randint(num_classes, (labels.shape[0],)).to(labels.device)
    return (labels + offset) % num_classes


def squared_distances(mu: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """d(i, k) = ||mu_i||^2 + ||c_k||^2 - 2 mu_i . c_k [B, C_s], in the reference's arithmetic
    (the expanded form and one addmm, not a subtraction per pair)."""
    base = mu.pow(2).sum(1, keepdim=True) + centers.pow(2).sum(1)[None, :]
    return torch.addmm(base, mu, centers.T, beta=1, alpha=-2)


def samc_loss(mu: torch.Tensor, labels: torch.Tensor, centers: torch.Tensor, margin: float,
              incenter_weight: float, negative: str) -> torch.Tensor:
    """SAMC of FR means `mu` [B, A] with seen-local `labels` [B] against `centers` [C_s, A].
    RNG: one `randint(C_s, (B,))` for the "random" negative, none for "nearest"."""
    if negative not in NEGATIVES:
        raise ValueError(f"samc negative: expected one of {NEGATIVES}, found {negative!r}")
    distances = squared_distances(mu, centers)
    own = distances.gather(1, labels[:, None])[:, 0]
    if negative == "nearest":
        is_own = torch.zeros_like(distances, dtype=torch.bool).scatter_(1, labels[:, None], True)
        other = distances.masked_fill(is_own, float("inf")).min(dim=1).values
    else:
        others = random_other_classes(labels, centers.shape[0])
        other = distances.gather(1, others[:, None])[:, 0]
    hinge = margin + incenter_weight * own - (1.0 - incenter_weight) * other
    # torch.maximum, not clamp: the reference's torch.max(., 0) (the same gradient at a tie)
    return torch.maximum(hinge, hinge.new_zeros(())).sum() / mu.shape[0]
