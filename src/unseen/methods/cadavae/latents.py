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
def encode(encoder: Encoder, inputs: torch.Tensor, chunk: int = 8192
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, logvar) of every row, in chunks (bounded memory)."""
    parts = [encoder(part) for part in inputs.split(chunk)]
    return torch.cat([mu for mu, _ in parts]), torch.cat([logvar for _, logvar in parts])


@torch.no_grad()
def noisy_latents(encoder: Encoder, inputs: torch.Tensor, rows: torch.Tensor, reference: bool
                  ) -> torch.Tensor:
    """z = mu + sigma * eps of `inputs[rows]` (rows may repeat): each distinct row is encoded
    once (rows never drawn are not) and the repeats get their own noise, as encoding the tiled
    rows would give."""
    distinct, position = torch.unique(rows, return_inverse=True)
    mu, logvar = encode(encoder, inputs[distinct])
    return reparameterize(mu[position], logvar[position], reference)


def means(encoder: Encoder, inputs: torch.Tensor) -> torch.Tensor:
    """mu of every row (the test latents, `vaemodel.py:315`)."""
    return encode(encoder, inputs)[0]
