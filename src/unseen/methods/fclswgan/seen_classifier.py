"""The pre-trained seen-class softmax of Eq. (4) (reference `classifier.py`): trained once on the
real training features before the GAN, then frozen; its cross-entropy on generated features is
the generator's classification loss."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from unseen.methods.generative.classifier import train_classifier

# Hard-coded in the reference's call (`clswgan.py:177`), with lr 1e-3, 50 epochs, batch 100.
BETAS = (0.5, 0.999)


@dataclass
class SeenClassifier:
    """A frozen Linear + LogSoftmax over the seen classes, held as plain tensors (no
    parameters, so no optimiser can move it)."""

    weight: torch.Tensor  # [C_s, D]
    bias: torch.Tensor  # [C_s]

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return F.linear(features, self.weight, self.bias)

    def loss(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """NLL of LogSoftmax (the reference's `cls_criterion(pretrain_cls.model(x), y)`), with
        `labels` seen-local; differentiable in `features` only."""
        return F.cross_entropy(self.logits(features), labels)

    def to(self, device: torch.device) -> SeenClassifier:
        return SeenClassifier(self.weight.to(device), self.bias.to(device))


def pretrain_seen_classifier(features: torch.Tensor, labels: torch.Tensor, num_seen: int,
                             epochs: int, batch_size: int, lr: float) -> SeenClassifier:
    """Train on real features with seen-local labels; keep the weights after the last step
    (the reference has no validation here). RNG use: the Linear's default init, its
    N(0, 0.02^2) re-init, then the carry-over batches' randperms, as the reference."""
    last = deque(train_classifier(features, labels, features[:0], num_seen, epochs, batch_size,
                                  lr, BETAS), maxlen=1)
    if not last:
        raise ValueError("pretrain_seen_classifier needs at least one epoch")
    return SeenClassifier(last[0].weight, last[0].bias)
