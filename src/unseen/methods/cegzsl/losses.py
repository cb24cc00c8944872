"""CE-GZSL's own losses (reference `CE_GZSL.py` / `losses.py`), in exact but batched forms
(the WGAN-GP critic terms are the shared `unseen.methods.generative.wgan.critic_terms`).

- `supcon_loss`: the one-view supervised-contrastive "L_out" loss (`SupConLoss_clear`);
- `class_cross_entropy`: the class-level loss through the comparator F, over seen classes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from unseen.methods.cegzsl.networks import Comparator

# Elements of one B-chunk x C x hidden block on CPU: a few MiB, so the recomputed block stays
# in cache; larger chunks are slower on CPU, not faster.
_CPU_CHUNK_ELEMENTS = 1 << 20
# Blocks alive at once in the factored comparator (hidden, its gradient, a temporary).
_LIVE_BLOCKS = 3


def supcon_loss(projections: torch.Tensor, labels: torch.Tensor, temperature: float
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Supervised contrastive loss over unit-norm `projections` [M, d]; returns (loss, anchors).

    Positives of anchor i: other rows with its label; its denominator: all other rows.
    Anchors without a positive are dropped and the loss is averaged over the remaining
    `anchors` (a 0-d tensor). When no anchor has a positive the loss is 0 (not 0/0), still
    attached to the graph; the caller can report `anchors == 0`.
    """
    count = projections.shape[0]
    not_self = ~torch.eye(count, dtype=torch.bool, device=projections.device)
    positives = ((labels[:, None] == labels[None, :]) & not_self).to(projections.dtype)
    logits = torch.div(projections @ projections.T, temperature)
    logits = logits - logits.max(dim=1, keepdim=True).values.detach()
    denominator = (torch.exp(logits) * not_self).sum(dim=1, keepdim=True)
    log_prob = logits - torch.log(denominator)
    positive_count = positives.sum(dim=1)
    single = (positive_count == 0).to(projections.dtype)
    mean_log_prob = (positives * log_prob).sum(dim=1) / (positive_count + single)
    anchors = count - single.sum()
    loss = (-mean_log_prob * (1.0 - single)).sum() / anchors.clamp_min(1.0)
    return loss, anchors


def class_cross_entropy(comparator: Comparator, embedding: torch.Tensor,
                        seen_semantics: torch.Tensor, labels: torch.Tensor, temperature: float,
                        chunk_rows: int) -> torch.Tensor:
    """mean_i CE(softmax_c F([h_i ; a_c]) / temperature, labels_i) over the seen classes.

    `labels` are seen-local (positions in the sorted seen classes, the row order of
    `seen_semantics`). Equal to the reference's per-sample loop (`class_scores_for_loop`).
    """
    scores = comparator.pair_scores(embedding, seen_semantics, chunk_rows)
    return F.cross_entropy(torch.div(scores, temperature), labels)


def comparator_chunk_rows(num_classes: int, hidden_dim: int, memory_bytes: int,
                          device: torch.device) -> int:
    """Samples per block of the factored comparator: within `memory_bytes` for the
    B x C x hidden temporaries (4-byte floats) and, on CPU, small enough to stay in cache."""
    row_elements = num_classes * hidden_dim
    rows = memory_bytes // (_LIVE_BLOCKS * 4 * row_elements)
    if device.type == "cpu":
        rows = min(rows, _CPU_CHUNK_ELEMENTS // row_elements)
    return max(1, int(rows))
