"""INTERIM: the shared skeleton's stage-1 pieces that TF-VAEGAN needs, with the names and
signatures of docs/methods/generative-skeleton.md §2, until `methods/generative/` lands.
Replaced by imports from the skeleton at merge time; nothing here is TF-VAEGAN-specific."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from unseen.methods.cegzsl.networks import LEAKY_SLOPE, init_linear_


class VAEEncoder(nn.Module):
    """[x ; a] -> hidden -> LReLU -> 2A -> LReLU -> (mu, logvar), each `latent_dim` wide.
    Layers in the reference's construction order: fc1, fc3, linear_means, linear_log_var."""

    def __init__(self, feature_dim: int, semantic_dim: int, hidden_dim: int,
                 latent_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(feature_dim + semantic_dim, hidden_dim)
        self.fc3 = nn.Linear(hidden_dim, 2 * latent_dim)
        self.linear_means = nn.Linear(2 * latent_dim, latent_dim)
        self.linear_log_var = nn.Linear(2 * latent_dim, latent_dim)
        self.apply(init_linear_)

    def forward(self, features: torch.Tensor, semantics: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = F.leaky_relu(self.fc1(torch.cat([features, semantics], 1)), LEAKY_SLOPE)
        hidden = F.leaky_relu(self.fc3(hidden), LEAKY_SLOPE)
        return self.linear_means(hidden), self.linear_log_var(hidden)


class ConditionalGenerator(nn.Module):
    """[noise ; a] -> fc1 -> LReLU -> (+ weight * feedback) -> fc2 -> sigmoid."""

    def __init__(self, noise_dim: int, semantic_dim: int, hidden_dim: int,
                 feature_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(noise_dim + semantic_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, feature_dim)
        self.apply(init_linear_)

    def forward(self, noise: torch.Tensor, semantics: torch.Tensor,
                feedback: torch.Tensor | None = None, feedback_weight: float = 0.0
                ) -> torch.Tensor:
        hidden = F.leaky_relu(self.fc1(torch.cat([noise, semantics], 1)), LEAKY_SLOPE)
        if feedback is not None:
            hidden = hidden + feedback_weight * feedback
        return torch.sigmoid(self.fc2(hidden))


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """mu + exp(logvar / 2) * eps, eps ~ N(0, I) drawn on the CPU generator."""
    eps = torch.randn(mu.shape).to(mu)
    return eps * torch.exp(0.5 * logvar) + mu


def vae_loss(reconstruction: torch.Tensor, target: torch.Tensor, mu: torch.Tensor,
             logvar: torch.Tensor) -> torch.Tensor:
    """BCE(rec + 1e-12, x) summed / B + KL(N(mu, sigma) || N(0, I)) summed / B."""
    rows = target.shape[0]
    bce = F.binary_cross_entropy(reconstruction + 1e-12, target.detach(), reduction="sum")
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return (bce + kl) / rows


def weighted_l1(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """sum_rows sum_j |d_j|^3 / ||d_row|| / B with d = prediction - target (weights not
    detached, as the reference)."""
    difference = prediction - target
    weight = difference.pow(2) / difference.pow(2).sum(1, keepdim=True).sqrt()
    return (weight * difference.abs()).sum() / difference.shape[0]


@dataclass
class GradientPenalty:
    """lambda of WGAN-GP: fixed, or adapted once per generator iteration from the mean
    (||grad|| - 1)^2 of its critic steps (TF-VAEGAN, FREE)."""

    weight: float = 10.0
    adaptive: bool = False
    grow_above: float = 1.05
    shrink_below: float = 1.001
    factor: float = 1.1

    def update(self, mean_squared_deviation: float) -> None:
        if not self.adaptive:
            return
        if mean_squared_deviation > self.grow_above:
            self.weight *= self.factor
        elif mean_squared_deviation < self.shrink_below:
            self.weight /= self.factor

    def state_dict(self) -> dict:
        return {"weight": self.weight}

    def load_state_dict(self, state: dict) -> None:
        self.weight = float(state["weight"])
