"""TF-VAEGAN's objectives (reference `train_images.py:137-248`), on the shared VAE and WGAN-GP
terms.

- semantic decoder, in every critic step: recons_weight * WeightedL1(Dec(x), a) on real x;
- critic: gammaD * (mean D(x~, a) - mean D(x, a) + lambda * mean (||grad D(x^, a)|| - 1)^2);
  gammaD scales the penalty too (`:160, :182, :185`);
- encoder, generator, feedback (and the decoder unless frozen): BCE + KL of the VAE
  reconstruction, gammaG * (-mean D(x~, a)), recons_weight * WeightedL1(Dec(x~), a).
"""

from __future__ import annotations

import torch

from unseen.methods.cegzsl.losses import critic_terms
from unseen.methods.cegzsl.networks import Critic
from unseen.methods.tfvaegan._interim import vae_loss, weighted_l1
from unseen.methods.tfvaegan.networks import SemanticDecoder


def decoder_loss(decoder: SemanticDecoder, features: torch.Tensor, semantics: torch.Tensor,
                 recons_weight: float) -> torch.Tensor:
    """The decoder's own step on real features (`:152-155`)."""
    return recons_weight * weighted_l1(decoder(features), semantics)


def critic_loss(critic: Critic, real: torch.Tensor, fake: torch.Tensor, semantics: torch.Tensor,
                alpha: torch.Tensor, gp_weight: float, scale: float
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The critic's loss and its terms; `fake` detached, `alpha` [B, 1], `scale` = gammaD.
    `squared_deviation` is the un-weighted mean (||grad|| - 1)^2 that adapts lambda."""
    real_score, fake_score, deviation = critic_terms(critic, real, fake, semantics, alpha, 1.0)
    penalty = gp_weight * deviation
    loss = scale * (fake_score - real_score + penalty)
    return loss, {"critic_loss": loss, "critic_real": real_score, "critic_fake": fake_score,
                  "gradient_penalty": scale * penalty, "squared_deviation": deviation}


def generator_loss(critic: Critic, decoder: SemanticDecoder, reconstruction: torch.Tensor,
                   features: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                   fake: torch.Tensor, semantics: torch.Tensor, gamma_g: float,
                   recons_weight: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The generator-step loss (`:219-250`): `reconstruction` = G(E-sample of (x, a), a),
    `fake` = the features judged by D and decoded (the reconstruction itself with
    `encoded_noise`)."""
    vae = vae_loss(reconstruction, features, mu, logvar)
    adversarial = -critic(fake, semantics).mean()
    reconstruction_error = weighted_l1(decoder(fake), semantics)
    loss = vae + gamma_g * adversarial + recons_weight * reconstruction_error
    return loss, {"generator_loss": loss, "vae_loss": vae, "generator_adversarial": adversarial,
                  "fake_reconstruction": reconstruction_error}
