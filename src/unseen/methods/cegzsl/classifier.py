"""The final softmax classifier, retrained from scratch after every GAN epoch
(reference `classifier_embed_contras.py`).

It trains on h = E(x), computed once by the caller (E is frozen, so this equals the
reference's per-batch E calls), and yields one candidate per classifier epoch: the
log-probabilities of the evaluation rows and the weights that produced them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from unseen.methods.cegzsl.networks import LinearLogSoftmax


def adam(parameters: Iterable[torch.nn.Parameter], lr: float, betas: tuple[float, float]
         ) -> torch.optim.Adam:
    """Adam with the fused (single-kernel) update: the same update rule as the reference's
    Adam, several times faster on CPU for the GAN's ~27 M parameters."""
    return torch.optim.Adam(parameters, lr=lr, betas=betas, fused=True)


class CarryOverBatches:
    """The reference's `next_batch`: shuffle once, walk through in order; at the end of a pass,
    the leftover rows are joined with the first rows of a fresh shuffle (the remainder carries
    into the next pass). Permutations compose, as the reference permutes its stored arrays."""

    def __init__(self, num_rows: int) -> None:
        self.num_rows = num_rows
        self.order: torch.Tensor | None = None
        self.position = 0

    def next(self, batch_size: int) -> torch.Tensor:
        if self.order is None:
            self.order = torch.randperm(self.num_rows)
        start = self.position
        if start + batch_size <= self.num_rows:
            self.position = start + batch_size
            return self.order[start:self.position]
        rest = self.order[start:]
        self.order = self.order[torch.randperm(self.num_rows)]
        self.position = batch_size - rest.numel()
        return torch.cat([rest, self.order[:self.position]])


@dataclass
class ClassifierEpoch:
    """One classifier epoch: eval-row log-probabilities and the weights that gave them."""

    log_probs: torch.Tensor  # [n_eval, K]
    weight: torch.Tensor  # [K, E]
    bias: torch.Tensor  # [K]


def train_classifier(train_embedding: torch.Tensor, train_labels: torch.Tensor,
                     eval_embedding: torch.Tensor, num_classes: int, epochs: int,
                     batch_size: int, lr: float, betas: tuple[float, float]
                     ) -> Iterator[ClassifierEpoch]:
    """Train Linear+LogSoftmax with NLL and Adam; yield a `ClassifierEpoch` after each epoch.

    An epoch is ceil(n / batch_size) carry-over batches, as in the reference. RNG use, in order:
    the Linear's default init, its N(0, 0.02^2) re-init, then one randperm per completed pass.
    """
    model = LinearLogSoftmax(train_embedding.shape[1], num_classes).to(train_embedding.device)
    optimizer = adam(model.parameters(), lr, betas)
    batches = CarryOverBatches(train_embedding.shape[0])
    steps = math.ceil(train_embedding.shape[0] / batch_size)
    for _ in range(epochs):
        for _ in range(steps):
            rows = batches.next(batch_size).to(train_embedding.device)
            optimizer.zero_grad(set_to_none=True)
            with torch.enable_grad():  # callers may sit in no_grad (E and G are frozen)
                F.nll_loss(model(train_embedding[rows]), train_labels[rows]).backward()
            optimizer.step()
        with torch.no_grad():
            yield ClassifierEpoch(log_probs=model(eval_embedding),
                                  weight=model.fc.weight.detach().clone(),
                                  bias=model.fc.bias.detach().clone())
