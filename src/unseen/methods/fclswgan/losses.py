"""f-CLSWGAN's two objectives (reference `clswgan.py:194-243`).

- critic: L_D = mean D(x~, a) - mean D(x, a) + lambda * mean (||grad_x^ D(x^, a)|| - 1)^2,
  the WGAN-GP terms of CE-GZSL's `critic_terms` (same critic, same penalty);
- generator: L_G = -mean D(x~, a) + cls_weight * CE(frozen seen softmax(x~), y), Eq. (4).
"""

from __future__ import annotations

import torch

from unseen.methods.cegzsl.losses import critic_terms
from unseen.methods.cegzsl.networks import Critic
from unseen.methods.fclswgan.seen_classifier import SeenClassifier


def critic_loss(critic: Critic, real: torch.Tensor, fake: torch.Tensor, semantics: torch.Tensor,
                alpha: torch.Tensor, gp_weight: float
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The critic's loss and its terms; `fake` must be detached, `alpha` is [B, 1]."""
    real_score, fake_score, penalty = critic_terms(critic, real, fake, semantics, alpha,
                                                   gp_weight)
    loss = fake_score - real_score + penalty
    return loss, {"critic_loss": loss, "critic_real": real_score, "critic_fake": fake_score,
                  "gradient_penalty": penalty}


def generator_loss(critic: Critic, seen_classifier: SeenClassifier, fake: torch.Tensor,
                   semantics: torch.Tensor, labels: torch.Tensor, cls_weight: float
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The generator's loss and its terms; `labels` are seen-local."""
    adversarial = -critic(fake, semantics).mean()
    classification = seen_classifier.loss(fake, labels)
    loss = adversarial + cls_weight * classification
    return loss, {"generator_loss": loss, "generator_adversarial": adversarial,
                  "fake_class": classification}
