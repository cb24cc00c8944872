"""f-CLSWGAN's generator objective (reference `clswgan.py:226-243`):
L_G = -mean D(x~, a) + cls_weight * CE(frozen seen softmax(x~), y), Eq. (4).

The critic's, L_D = mean D(x~, a) - mean D(x, a) + lambda * mean (||grad_x^ D(x^, a)|| - 1)^2
(`clswgan.py:194-223`), is the shared `unseen.methods.generative.wgan.critic_loss`.
"""

from __future__ import annotations

import torch

from unseen.methods.fclswgan.seen_classifier import SeenClassifier
from unseen.methods.generative.networks import ConditionalCritic


def generator_loss(critic: ConditionalCritic, seen_classifier: SeenClassifier,
                   fake: torch.Tensor, semantics: torch.Tensor, labels: torch.Tensor,
                   cls_weight: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The generator's loss and its terms; `labels` are seen-local."""
    adversarial = -critic(fake, semantics).mean()
    classification = seen_classifier.loss(fake, labels)
    loss = adversarial + cls_weight * classification
    return loss, {"generator_loss": loss, "generator_adversarial": adversarial,
                  "fake_class": classification}
