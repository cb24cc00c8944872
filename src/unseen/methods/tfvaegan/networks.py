"""TF-VAEGAN's own networks (reference `networks/TFVAEGAN_model.py`): the semantic embedding
decoder and the feedback module. The encoder, generator and critic are the shared skeleton's.

Every Linear layer gets PyTorch's default init and then N(0, 0.02^2) weights and zero biases,
in construction order, as the reference's `weights_init`: the default init consumes the global
RNG, which keeps the random stream aligned with the reference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unseen.methods.generative.networks import LEAKY_SLOPE, init_linear_


class SemanticDecoder(nn.Module):
    """Dec (`AttDec`): feature -> hidden (LeakyReLU 0.2) -> semantics, L2-normalised per row.

    Its hidden activation is the feedback module's input and a third of the final classifier's
    input; the reference reads it (`getLayersOutDet`) detached."""

    def __init__(self, feature_dim: int, hidden_dim: int, semantic_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(feature_dim, hidden_dim)
        self.fc3 = nn.Linear(hidden_dim, semantic_dim)
        self.apply(init_linear_)

    def decode(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(reconstructed semantics [B, A], hidden activation [B, hidden])."""
        hidden = F.leaky_relu(self.fc1(features), LEAKY_SLOPE)
        semantics = self.fc3(hidden)
        # The reference divides by the row norm without an epsilon (an all-zero row is NaN).
        return semantics / semantics.norm(dim=1, keepdim=True), hidden

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.decode(features)[0]

    def hidden(self, features: torch.Tensor) -> torch.Tensor:
        """The hidden activation alone, detached (`getLayersOutDet`)."""
        return F.leaky_relu(self.fc1(features), LEAKY_SLOPE).detach()

    def transform(self, features: torch.Tensor) -> torch.Tensor:
        """The final classifier's input [x ; Dec(x) ; Dec hidden(x)]
        (`classifier_images.py:206-220`)."""
        semantics, hidden = self.decode(features)
        return torch.cat([features, semantics, hidden], dim=1)


class Feedback(nn.Module):
    """F: Dec hidden -> LeakyReLU(fc1) -> LeakyReLU(fc2), both `hidden_dim` wide; its output,
    times a1 (training) or a2 (synthesis), is added to the generator's hidden activation."""

    def __init__(self, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(hidden_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, hidden_dim)
        self.apply(init_linear_)

    def forward(self, decoder_hidden: torch.Tensor) -> torch.Tensor:
        hidden = F.leaky_relu(self.fc1(decoder_hidden), LEAKY_SLOPE)
        return F.leaky_relu(self.fc2(hidden), LEAKY_SLOPE)
