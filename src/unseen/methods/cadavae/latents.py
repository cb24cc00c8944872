"""The latent-space classifier's training set (reference `vaemodel.py:336-405`): per seen
class its first `per_class` training images (in training-row order, tiled when the class has
fewer), per unseen class its attribute vector `per_class` times; each row encoded with noise."""

from __future__ import annotations

import torch

from unseen.methods.cadavae.losses import reparameterize
from unseen.methods.cadavae.networks import Encoder


def first_rows_per_class(labels: torch.Tensor, per_class: int) -> torch.Tensor:
    """Row indices [C * per_class], classes in sorted order: for each class present in
    `labels`, its rows in their order, tiled ceil(per_class / n_c) times, the first
    `per_class` kept (`sample_train_data_on_sample_per_class_basis`)."""
    order = torch.argsort(labels, stable=True)  # rows grouped by class, original order kept
    _, counts = torch.unique(labels, return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    offsets = torch.arange(per_class, device=labels.device)[None, :] % counts[:, None]
    return order[(starts[:, None] + offsets).flatten()]


@torch.no_grad()
def noisy_latents(encoder: Encoder, inputs: torch.Tensor, reference: bool,
                  chunk: int = 8192) -> torch.Tensor:
    """z = mu + sigma * eps of every row, in chunks (bounded memory)."""
    return torch.cat([reparameterize(*encoder(part), reference)
                      for part in inputs.split(chunk)])


@torch.no_grad()
def means(encoder: Encoder, inputs: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    """mu of every row (the test latents, `vaemodel.py:315`), in chunks."""
    return torch.cat([encoder(part)[0] for part in inputs.split(chunk)])
