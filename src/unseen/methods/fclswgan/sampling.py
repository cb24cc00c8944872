"""The random pieces of a feature-generating GAN (the f-CLSWGAN reference's `sample()` and
`generate_syn_feature`), written so that the generative methods can share them.

RNG use follows the reference: one `randperm(N)` per critic batch; one `normal_` of
`per_class x noise_dim` per unseen class, in sorted class order, at synthesis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from unseen.errors import TrainingDivergedError

BLOCK_ROWS = 8192  # rows per no-grad generator call when synthesising many features


@dataclass
class Batch:
    """One training batch: features, their class semantics and seen-local labels."""

    features: torch.Tensor  # [B, D]
    semantics: torch.Tensor  # [B, A]
    labels: torch.Tensor  # [B], positions in the sorted seen classes


def random_batch(features: torch.Tensor, labels: torch.Tensor, seen_semantics: torch.Tensor,
                 batch_size: int) -> Batch:
    """`batch_size` distinct rows drawn uniformly (the reference's `randperm(N)[:B]`)."""
    picked = torch.randperm(features.shape[0])[:batch_size].to(features.device)
    picked_labels = labels[picked]
    return Batch(features[picked], seen_semantics[picked_labels], picked_labels)


@torch.no_grad()
def synthesize_per_class(generate: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                         semantics: torch.Tensor, per_class: int, noise_dim: int,
                         what: str) -> torch.Tensor:
    """`per_class` generated features for each row of `semantics` [C, A]: [C * per_class, D],
    class by class. `generate(noise, semantics)` is the method's generator; `what` names the
    method and epoch in the error raised when its output is not finite."""
    num_classes = semantics.shape[0]
    noise = torch.empty(num_classes, per_class, noise_dim, device=semantics.device)
    for class_noise in noise:  # one draw per class, in order: the reference's RNG stream
        class_noise.normal_()
    repeated = semantics.repeat_interleave(per_class, 0)
    flat_noise = noise.view(num_classes * per_class, noise_dim)
    blocks = [generate(noise_block, semantic_block) for noise_block, semantic_block
              in zip(flat_noise.split(BLOCK_ROWS), repeated.split(BLOCK_ROWS), strict=True)]
    features = torch.cat(blocks)
    if not bool(torch.isfinite(features).all()):
        raise TrainingDivergedError(f"{what}: generator output is not finite")
    return features
