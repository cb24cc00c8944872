"""The VAE pieces of the VAE-GAN methods (TF-VAEGAN, FREE) and CADA-VAE's sampling:
reparameterisation, the BCE + KL loss and the weighted L1 of the semantic decoders."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor,
                   noise: Literal["full", "per_sample"] = "full",
                   std: Literal["half_logvar", "logvar"] = "half_logvar",
                   cpu_noise: bool = False) -> torch.Tensor:
    """z = mu + sigma * eps.

    The standard form (TF-VAEGAN `train_images.py:163-167`, FREE `model.py:130-131`):
    sigma = exp(logvar / 2), eps ~ N(0, I) of mu's shape. `cpu_noise`: eps drawn on the CPU
    generator and moved (TF-VAEGAN's `torch.randn(...).cpu()`), so a GPU run draws the
    numbers a CPU run does. CADA-VAE's code (`vaemodel.py:92-99`): `noise="per_sample"` (one
    N(0, 1) value per row shared by every latent dimension) and `std="logvar"`
    (sigma = exp(logvar)).
    """
    shape = mu.shape if noise == "full" else (mu.shape[0], 1)
    if cpu_noise:
        eps = torch.randn(shape, dtype=mu.dtype).to(mu.device)
    else:
        eps = torch.randn(shape, device=mu.device, dtype=mu.dtype)
    sigma = torch.exp(0.5 * logvar) if std == "half_logvar" else torch.exp(logvar)
    return mu + sigma * eps.expand_as(mu)


def vae_loss(reconstruction: torch.Tensor, target: torch.Tensor, mu: torch.Tensor,
             logvar: torch.Tensor) -> torch.Tensor:
    """BCE(reconstruction + 1e-12, target) summed / B + KL(N(mu, sigma^2) || N(0, I)) / B
    (TF-VAEGAN `loss_fn`, `train_images.py:63-67`; FREE `train_free.py:90-95`). `target`
    (the MinMax-scaled feature, in [0, 1]) gets no gradient."""
    rows = target.shape[0]
    bce = F.binary_cross_entropy(reconstruction + 1e-12, target.detach(), reduction="sum")
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce / rows + kl / rows


def weighted_l1(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(1/B) sum_rows sum_j w_j |d_j| with d = prediction - target and w_j = d_j^2 / ||d_row||,
    i.e. sum |d_j|^3 / ||d_row|| (TF-VAEGAN `WeightedL1`, `:74-78`; FREE `:103-107`). The
    weights are not detached: gradients flow through them. 0/0 for a row with d = 0."""
    difference = prediction - target
    weights = difference.pow(2)
    weights = weights / weights.sum(1).sqrt().unsqueeze(1)
    return (weights * difference.abs()).sum() / difference.shape[0]
