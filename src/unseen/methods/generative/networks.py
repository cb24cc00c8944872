"""The networks the feature-generating methods share (f-CLSWGAN, CE-GZSL, TF-VAEGAN, FREE):
the conditional generator and critic, the [x ; a] VAE encoder and the final softmax.

Every Linear layer is created with PyTorch's default init and then overwritten by
`init_linear_`, in construction order, exactly as the references do: the default init still
consumes the global RNG, which keeps the random stream aligned with theirs.
"""

from __future__ import annotations

from functools import partial
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

LEAKY_SLOPE = 0.2
InitScheme = Literal["normal", "xavier_half"]


def init_linear_(module: nn.Module, scheme: InitScheme = "normal") -> None:
    """The references' `weights_init` on Linear layers (others untouched), zero biases.

    "normal": N(0, 0.02^2) weights (f-CLSWGAN, CE-GZSL, TF-VAEGAN, FREE);
    "xavier_half": xavier_uniform_ with gain 0.5 (CADA-VAE).
    """
    if not isinstance(module, nn.Linear):
        return
    if scheme == "normal":
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif scheme == "xavier_half":
        nn.init.xavier_uniform_(module.weight, gain=0.5)
    else:
        raise ValueError(f"init scheme: expected normal or xavier_half, found {scheme!r}")
    if module.bias is not None:
        nn.init.zeros_(module.bias)


class ConditionalGenerator(nn.Module):
    """G: [noise ; semantics] -> hidden (LeakyReLU 0.2) -> feature, through ReLU (f-CLSWGAN,
    CE-GZSL: features >= 0) or Sigmoid (TF-VAEGAN, FREE: features in (0, 1))."""

    def __init__(self, noise_dim: int, semantic_dim: int, hidden_dim: int, feature_dim: int,
                 output: Literal["relu", "sigmoid"] = "relu") -> None:
        super().__init__()
        if output not in ("relu", "sigmoid"):
            raise ValueError(f"generator output: expected relu or sigmoid, found {output!r}")
        self.output = output
        self.fc1 = nn.Linear(noise_dim + semantic_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, feature_dim)
        self.apply(init_linear_)

    def hidden(self, noise: torch.Tensor, semantics: torch.Tensor) -> torch.Tensor:
        """LeakyReLU(fc1 [noise ; semantics]): where TF-VAEGAN's feedback is added."""
        return F.leaky_relu(self.fc1(torch.cat([noise, semantics], 1)), LEAKY_SLOPE)

    def forward(self, noise: torch.Tensor, semantics: torch.Tensor,
                feedback: torch.Tensor | None = None, feedback_weight: float = 0.0
                ) -> torch.Tensor:
        """act(fc2(hidden + feedback_weight * feedback)); without `feedback`, act(fc2(hidden))
        (TF-VAEGAN `TFVAEGAN_model.py:62-70`)."""
        hidden = self.hidden(noise, semantics)
        if feedback is not None:
            hidden = hidden + feedback_weight * feedback
        out = self.fc2(hidden)
        return F.relu(out) if self.output == "relu" else torch.sigmoid(out)


class ConditionalCritic(nn.Module):
    """D: [feature ; semantics] -> hidden (LeakyReLU 0.2) -> one unbounded score."""

    def __init__(self, feature_dim: int, semantic_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.fc1 = nn.Linear(feature_dim + semantic_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, 1)
        self.apply(init_linear_)

    def forward(self, features: torch.Tensor, semantics: torch.Tensor) -> torch.Tensor:
        return self.head(self.fc1(torch.cat([features, semantics], 1)))

    def preactivation(self, features: torch.Tensor, semantics: torch.Tensor) -> torch.Tensor:
        """fc1 of [features ; semantics] for `features` [..., B, D] sharing one `semantics` [B, A]
        (real and fake batches go through one matmul)."""
        semantics = semantics.expand(*features.shape[:-1], semantics.shape[-1])
        return self.fc1(torch.cat([features, semantics], -1))

    def head(self, preactivation: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.leaky_relu(preactivation, LEAKY_SLOPE))


class VAEEncoder(nn.Module):
    """E of TF-VAEGAN and FREE (identical, `TFVAEGAN_model.py:16-37`, FREE `model.py:18-39`):
    [x ; a] -> hidden -> LeakyReLU -> 2 * latent -> LeakyReLU -> (mu, logvar), latent-wide."""

    def __init__(self, feature_dim: int, semantic_dim: int, hidden_dim: int, latent_dim: int
                 ) -> None:
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


class LinearLogSoftmax(nn.Module):
    """The final classifier: Linear -> LogSoftmax (trained with NLL)."""

    def __init__(self, input_dim: int, num_classes: int, init: InitScheme = "normal") -> None:
        super().__init__()
        self.fc = nn.Linear(input_dim, num_classes)
        self.apply(partial(init_linear_, scheme=init))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.fc(inputs), dim=1)
