"""CADA-VAE's objective as the reference computes it (`model/vaemodel.py:92-190`), its
warm-up weights and its reparameterisation; docs/methods/cadavae.md §3."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from unseen.methods.cadavae.networks import AlignedVAEs
from unseen.methods.generative.vae import reparameterize as shared_reparameterize


@dataclass(frozen=True)
class WarmUp:
    """weight(e) = clamp(factor * (e - start) / (end - start), 0, factor), e the 0-based
    epoch; constant within an epoch (`vaemodel.py:163-173`)."""

    factor: float
    start: int
    end: int

    def at(self, epoch: int) -> float:
        ramp = self.factor * (epoch - self.start) / (self.end - self.start)
        return min(max(ramp, 0.0), self.factor)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, reference: bool) -> torch.Tensor:
    """z = mu + sigma * eps. `reference`: the code's sigma = exp(logvar) and one N(0, 1) value
    per row shared by every latent dimension (`vaemodel.py:92-99`); otherwise the standard
    sigma = exp(logvar / 2) (how the KL and alignment terms read logvar) and eps ~ N(0, I)."""
    if reference:
        return shared_reparameterize(mu, logvar, noise="per_sample", std="logvar")
    return shared_reparameterize(mu, logvar)


def vae_loss(vaes: AlignedVAEs, features: torch.Tensor, attributes: torch.Tensor,
             beta: float, gamma: float, delta: float, reference: bool
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """loss = recon + beta * KL + gamma * cross-recon + delta * DA, every term summed over the
    batch and the dimensions. Returns the loss and its terms (detached, the KL as a positive
    divergence)."""
    mu_x, logvar_x = vaes.image_encoder(features)
    mu_a, logvar_a = vaes.attribute_encoder(attributes)
    z_x = reparameterize(mu_x, logvar_x, reference)
    z_a = reparameterize(mu_a, logvar_a, reference)
    reconstruction = ((vaes.image_decoder(z_x) - features).abs().sum()
                      + (vaes.attribute_decoder(z_a) - attributes).abs().sum())
    cross_reconstruction = ((vaes.image_decoder(z_a) - features).abs().sum()
                            + (vaes.attribute_decoder(z_x) - attributes).abs().sum())
    # The reference's "KLD" is the negative KL divergence; loss - beta * KLD = + beta * KL.
    negative_kl = (0.5 * (1 + logvar_x - mu_x.pow(2) - logvar_x.exp()).sum()
                   + 0.5 * (1 + logvar_a - mu_a.pow(2) - logvar_a.exp()).sum())
    # 2-Wasserstein distance between the two diagonal Gaussians of each row, summed.
    alignment = torch.sqrt((mu_x - mu_a).pow(2).sum(1)
                           + (torch.exp(0.5 * logvar_x) - torch.exp(0.5 * logvar_a)).pow(2).sum(1)
                           ).sum()
    # The reference adds gamma * CR under `if CR > 0`: always true for an L1 sum, and adding
    # gamma * 0 would change neither the value nor the gradient, so no test (no device sync).
    loss = reconstruction - beta * negative_kl + gamma * cross_reconstruction
    if delta > 0:  # skipped, not multiplied by 0: sqrt's gradient at 0 would be NaN
        loss = loss + delta * alignment
    terms = {"loss": loss, "reconstruction": reconstruction,
             "cross_reconstruction": cross_reconstruction, "kl": -negative_kl,
             "distribution_alignment": alignment}
    return loss, {name: value.detach() for name, value in terms.items()}
