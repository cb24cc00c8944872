"""Per-class feature synthesis (the references' `generate_syn_feature`).

RNG use follows the references: one `normal_` of `per_class x noise_dim` per class, in the
order of the given semantics (the sorted unseen classes), before any generator call.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from unseen.errors import TrainingDivergedError

BLOCK_ROWS = 8192  # rows per no-grad generator call when synthesising many features


@torch.no_grad()
def synthesize_per_class(generate: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                         semantics: torch.Tensor, per_class: int, noise_dim: int,
                         what: str) -> torch.Tensor:
    """`per_class` generated features for each row of `semantics` [C, A]: [C * per_class, D],
    class by class. `generate(noise, semantics)` is the method's generator (or a closure, e.g.
    with feedback); `what` names the method and epoch in the error raised when its output is
    not finite."""
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
