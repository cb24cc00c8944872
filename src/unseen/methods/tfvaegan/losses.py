"""TF-VAEGAN's own objectives (reference `train_images.py:137-248`), on the shared VAE terms;
the critic's is the shared `generative.wgan.critic_loss` with scale gammaD (penalty included).

- semantic decoder, in every critic step: recons_weight * WeightedL1(Dec(x), a) on real x;
- encoder, generator, feedback (and the decoder unless frozen): BCE + KL of the VAE
  reconstruction, gammaG * (-mean D(x~, a)), recons_weight * WeightedL1(Dec(x~), a).
"""

from __future__ import annotations

import torch

from unseen.methods.generative.networks import ConditionalCritic
from unseen.methods.generative.vae import vae_loss, weighted_l1
from unseen.methods.tfvaegan.networks import SemanticDecoder


def decoder_loss(decoder: SemanticDecoder, features: torch.Tensor, semantics: torch.Tensor,
                 recons_weight: float) -> torch.Tensor:
    """The decoder's own step on real features (`:152-155`)."""
    return recons_weight * weighted_l1(decoder(features), semantics)


def generator_loss(critic: ConditionalCritic, decoder: SemanticDecoder,
                   reconstruction: torch.Tensor, features: torch.Tensor, mu: torch.Tensor,
                   logvar: torch.Tensor, fake: torch.Tensor, semantics: torch.Tensor,
                   gamma_g: float, recons_weight: float
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The generator-step loss (`:219-250`): `reconstruction` = G(E-sample of (x, a), a),
    `fake` = the features judged by D and decoded (the reconstruction itself with
    `encoded_noise`)."""
    vae = vae_loss(reconstruction, features, mu, logvar)
    adversarial = -critic(fake, semantics).mean()
    reconstruction_error = weighted_l1(decoder(fake), semantics)
    loss = vae + gamma_g * adversarial + recons_weight * reconstruction_error
    return loss, {"generator_loss": loss, "vae_loss": vae, "generator_adversarial": adversarial,
                  "fake_reconstruction": reconstruction_error}
