"""The conditional WGAN-GP pieces of the feature-generating methods: the random critic batch,
the gradient penalty (fixed, or TF-VAEGAN's and FREE's adaptive lambda) and the critic loss.

RNG use follows the references: one `randperm(N)` per critic batch (`util.next_batch`); the
penalty's alpha [B, 1] is drawn by the caller (each method owns its draw order).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from unseen.methods.generative.networks import LEAKY_SLOPE, ConditionalCritic


@dataclass
class Batch:
    """One training batch: features, their class semantics and seen-local labels."""

    features: torch.Tensor  # [B, D]
    semantics: torch.Tensor  # [B, A]
    labels: torch.Tensor  # [B], positions in the sorted seen classes


def random_batch(features: torch.Tensor, labels: torch.Tensor, seen_semantics: torch.Tensor,
                 batch_size: int) -> Batch:
    """`batch_size` distinct rows drawn uniformly (the reference's `randperm(N)[:B]`, on the
    CPU generator)."""
    picked = torch.randperm(features.shape[0])[:batch_size].to(features.device)
    picked_labels = labels[picked]
    return Batch(features[picked], seen_semantics[picked_labels], picked_labels)


@dataclass
class GradientPenalty:
    """The penalty weight lambda, fixed (f-CLSWGAN, CE-GZSL) or adaptive (TF-VAEGAN
    `train_images.py:193-197`, FREE `train_free.py:272-276`): after the critic steps of a
    generator iteration, m = the mean over those steps of mean_i (||grad_i|| - 1)^2; lambda is
    multiplied by `factor` if m > `grow_above`, else divided by it if m < `shrink_below`. The
    references compute m as sum(GP) / (gammaD * lambda * critic_iter): the same number.
    """

    weight: float = 10.0
    adaptive: bool = False
    grow_above: float = 1.05
    shrink_below: float = 1.001
    factor: float = 1.1
    _deviations: list[torch.Tensor] = field(default_factory=list, init=False, repr=False,
                                           compare=False)

    def observe(self, deviation: torch.Tensor) -> None:
        """Record one critic step's un-weighted mean (||grad|| - 1)^2 (adaptive only)."""
        if self.adaptive:
            self._deviations.append(deviation.detach())

    def update(self) -> float | None:
        """Apply the rule to the steps observed since the last call; returns m (None when
        fixed or nothing was observed). One device sync."""
        if not self.adaptive or not self._deviations:
            return None
        mean = float(torch.stack(self._deviations).mean())
        self._deviations = []
        if mean > self.grow_above:
            self.weight *= self.factor
        elif mean < self.shrink_below:
            self.weight /= self.factor
        return mean

    def state_dict(self) -> dict[str, Any]:
        return {"weight": self.weight}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.weight = float(state["weight"])
        self._deviations = []


def gradient_terms(critic: ConditionalCritic, real: torch.Tensor, fake: torch.Tensor,
                   semantics: torch.Tensor, alpha: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean D(real, a), mean D(fake, a), mean_i (||dD/dx(x_hat_i, a_i)|| - 1)^2) for one critic
    step; `critic_terms` without the penalty weight.

    `fake` must be detached. x_hat = alpha * real + (1 - alpha) * fake, with one alpha [B, 1]
    per sample. D is fc2(LeakyReLU(fc1 [x ; a])), so dD/dx = W_x^T (w2 * slope) where slope in
    {1, 0.2} is LeakyReLU' at fc1(x_hat): the same tensor autograd builds with
    `create_graph=True`, without the third forward pass or the double backward. fc1 is affine,
    so its value at x_hat is the alpha-mix of its values at real and fake (the semantic part
    and bias have weight alpha + 1 - alpha = 1).
    """
    preactivation = critic.preactivation(torch.stack([real, fake]), semantics)
    scores = critic.head(preactivation)
    with torch.no_grad():
        mixed = torch.lerp(preactivation[1], preactivation[0], alpha)
        slope = torch.full_like(mixed, LEAKY_SLOPE).masked_fill_(mixed > 0, 1.0)
    # Through the whole fc1 weight, then sliced: slicing the parameter instead would make
    # autograd allocate and zero a full-size gradient for the slice.
    input_gradient = ((slope * critic.fc2.weight) @ critic.fc1.weight)[:, :critic.feature_dim]
    deviation = ((input_gradient.norm(2, dim=1) - 1.0) ** 2).mean()
    return scores[0].mean(), scores[1].mean(), deviation


def critic_terms(critic: ConditionalCritic, real: torch.Tensor, fake: torch.Tensor,
                 semantics: torch.Tensor, alpha: torch.Tensor, gp_weight: float
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean D(real, a), mean D(fake, a), gradient penalty lambda * mean_i (||grad|| - 1)^2)
    for one critic step, the input gradient in closed form (see `gradient_terms`)."""
    real_score, fake_score, deviation = gradient_terms(critic, real, fake, semantics, alpha)
    return real_score, fake_score, deviation * gp_weight


def critic_loss(critic: ConditionalCritic, real: torch.Tensor, fake: torch.Tensor,
                semantics: torch.Tensor, alpha: torch.Tensor,
                penalty: GradientPenalty | float, scale: float = 1.0
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The WGAN-GP critic loss scale * (mean D(fake) - mean D(real) + GP) and its (unscaled)
    terms; `fake` must be detached, `alpha` is [B, 1]. `scale` is TF-VAEGAN's and FREE's gammaD,
    which scales the penalty too. A `GradientPenalty` supplies lambda and observes the step's
    deviation for its adaptive rule."""
    real_score, fake_score, deviation = gradient_terms(critic, real, fake, semantics, alpha)
    if isinstance(penalty, GradientPenalty):
        penalty.observe(deviation)
        weight = penalty.weight
    else:
        weight = penalty
    gradient_penalty = deviation * weight
    loss = fake_score - real_score + gradient_penalty
    if scale != 1.0:
        loss = loss * scale
    return loss, {"critic_loss": loss, "critic_real": real_score, "critic_fake": fake_score,
                  "gradient_penalty": gradient_penalty}
