"""FREE's feature refinement module FR (reference `model.py:86-131`).

FR maps a visual feature x to a hidden layer h = LeakyReLU(fc1 x) and from there to a
semantic Gaussian: mu and sigma = Sigmoid(.) (used directly as the standard deviation). Its
sample e = mu + sigma * eps is squashed by a Sigmoid into the "semantic reconstruction" that
the weighted-L1 loss compares with the class attribute; the centre loss acts on mu. The
final classifier reads [x ; h ; Sigmoid(e)].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from unseen.methods.generative.networks import LEAKY_SLOPE, init_linear_


@dataclass
class Refined:
    """One FR forward pass."""

    hidden: torch.Tensor  # [B, H]: LeakyReLU(fc1 x), the reference's `getLayersOutDet()`
    mu: torch.Tensor  # [B, A]
    sigma: torch.Tensor  # [B, A], in (0, 1)
    reconstruction: torch.Tensor  # [B, A]: Sigmoid(mu + sigma * eps), eps ~ N(0, I)


class FeatureRefinement(nn.Module):
    """FR: x -> fc1 -> LeakyReLU(0.2) = h -> fc3 -> (mu, Sigmoid -> sigma) -> Sigmoid(mu +
    sigma * eps).

    The reference also builds a one-unit `discriminator` and a seen-class `classifier` head on
    the semantic code; no loss ever reads them. They are kept (never trained) because their
    construction draws random numbers: the networks built after FR, and every later draw,
    then match the reference's random stream.
    """

    def __init__(self, feature_dim: int, hidden_dim: int, semantic_dim: int, num_seen: int
                 ) -> None:
        super().__init__()
        self.semantic_dim = semantic_dim
        self.fc1 = nn.Linear(feature_dim, hidden_dim)
        self.fc3 = nn.Linear(hidden_dim, 2 * semantic_dim)
        self.discriminator = nn.Linear(semantic_dim, 1)  # unused by every loss
        self.classifier = nn.Linear(semantic_dim, num_seen)  # unused by every loss
        self.apply(init_linear_)

    def encode(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(hidden, mu, sigma), without drawing noise."""
        hidden = F.leaky_relu(self.fc1(features), LEAKY_SLOPE)
        latent = self.fc3(hidden)
        mu, sigma = latent.split(self.semantic_dim, dim=1)
        return hidden, mu, torch.sigmoid(sigma)

    def forward(self, features: torch.Tensor) -> Refined:
        """One pass with fresh noise eps ~ N(0, I) of mu's shape (`randn_like`, drawn in eval
        mode too, as the reference)."""
        hidden, mu, sigma = self.encode(features)
        sample = torch.randn_like(mu) * sigma + mu
        return Refined(hidden, mu, sigma, torch.sigmoid(sample))

    def classifier_features(self, features: torch.Tensor, stochastic: bool,
                            draw_unused: bool = False) -> torch.Tensor:
        """[x ; h ; Sigmoid(mu + sigma * eps)] (`stochastic`, the reference, which draws eps at
        evaluation too) or [x ; h ; Sigmoid(mu)] (deterministic): [B, D + H + A]. With
        `draw_unused`, the deterministic form still draws (and ignores) the eps the reference
        draws, so that the random stream stays the reference's."""
        if stochastic:
            refined = self(features)
            return torch.cat([features, refined.hidden, refined.reconstruction], dim=1)
        hidden, mu, _ = self.encode(features)
        if draw_unused:
            torch.randn_like(mu)
        return torch.cat([features, hidden, torch.sigmoid(mu)], dim=1)
