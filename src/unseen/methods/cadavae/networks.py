"""CADA-VAE's encoders and decoders (reference `model/models.py`): one hidden ReLU layer each,
Linear weights xavier-uniform with gain 0.5 and zero biases."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from unseen.methods.generative.networks import init_linear_

# The reference's `weights_init`; the default init has already consumed the RNG.
_init_linear = partial(init_linear_, scheme="xavier_half")


class Encoder(nn.Module):
    """x -> (mu, logvar): Linear -> ReLU, then two Linear heads."""

    def __init__(self, input_dim: int, hidden: int, latent: int) -> None:
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(input_dim, hidden), nn.ReLU())
        self.mu = nn.Linear(hidden, latent)
        self.logvar = nn.Linear(hidden, latent)
        self.apply(_init_linear)

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.hidden(inputs)
        return self.mu(h), self.logvar(h)


class Decoder(nn.Module):
    """z -> Linear -> ReLU -> Linear, no output activation."""

    def __init__(self, latent: int, hidden: int, output_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(),
                                 nn.Linear(hidden, output_dim))
        self.apply(_init_linear)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class AlignedVAEs(nn.Module):
    """The two VAEs as registered submodules (the reference keeps them in plain dicts), built
    in the reference's order: image encoder, attribute encoder, image decoder, attribute
    decoder (their inits fix the RNG stream)."""

    def __init__(self, feature_dim: int, attribute_dim: int, latent: int,
                 image_encoder_hidden: int, image_decoder_hidden: int,
                 attribute_encoder_hidden: int, attribute_decoder_hidden: int) -> None:
        super().__init__()
        self.image_encoder = Encoder(feature_dim, image_encoder_hidden, latent)
        self.attribute_encoder = Encoder(attribute_dim, attribute_encoder_hidden, latent)
        self.image_decoder = Decoder(latent, image_decoder_hidden, feature_dim)
        self.attribute_decoder = Decoder(latent, attribute_decoder_hidden, attribute_dim)
