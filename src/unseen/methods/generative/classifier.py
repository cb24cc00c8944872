"""The final softmax classifier, retrained from scratch at every evaluation (the references'
`classifier2.py` / `classifier_embed_contras.py`; CADA-VAE's `final_classifier.py`).

It trains on inputs computed once by the caller (the method's feature transform, frozen
during the classifier's training) and yields one candidate per classifier epoch: the
log-probabilities of the evaluation rows and the weights that produced them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Literal

import torch
import torch.nn.functional as F

from unseen.methods.generative.networks import InitScheme, LinearLogSoftmax, init_linear_

Batching = Literal["carry_over", "shuffle_drop_last"]


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

    def steps_per_epoch(self, batch_size: int) -> int:
        return math.ceil(self.num_rows / batch_size)

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


class ShuffledBatches:
    """A `DataLoader(shuffle=True, drop_last=True)` over the rows (CADA-VAE's GZSL classifier):
    a fresh permutation per epoch, only full batches. RNG use as the DataLoader's: per epoch,
    two int64 draws from the global generator (the iterator's base seed, then the sampler's
    seed), the permutation from a generator seeded with the second."""

    def __init__(self, num_rows: int) -> None:
        self.num_rows = num_rows
        self.order: torch.Tensor | None = None
        self.position = 0

    def steps_per_epoch(self, batch_size: int) -> int:
        return self.num_rows // batch_size

    def next(self, batch_size: int) -> torch.Tensor:
        if self.order is None or self.position + batch_size > self.num_rows:
            torch.empty((), dtype=torch.int64).random_()  # the DataLoader iterator's base seed
            seed = int(torch.empty((), dtype=torch.int64).random_().item())
            self.order = torch.randperm(self.num_rows,
                                        generator=torch.Generator().manual_seed(seed))
            self.position = 0
        start, self.position = self.position, self.position + batch_size
        return self.order[start:self.position]


@dataclass
class ClassifierEpoch:
    """One classifier epoch: eval-row log-probabilities and the weights that gave them."""

    log_probs: torch.Tensor  # [n_eval, K]
    weight: torch.Tensor  # [K, E]
    bias: torch.Tensor  # [K]


def train_classifier(train_inputs: torch.Tensor, train_labels: torch.Tensor,
                     eval_inputs: torch.Tensor, num_classes: int, epochs: int,
                     batch_size: int, lr: float, betas: tuple[float, float] = (0.5, 0.999),
                     init: InitScheme = "normal", batching: Batching = "carry_over",
                     draw_default_init: bool = True,
                     model: LinearLogSoftmax | None = None) -> Iterator[ClassifierEpoch]:
    """Train Linear+LogSoftmax with NLL and Adam; yield a `ClassifierEpoch` after each epoch.

    An epoch is ceil(n / batch_size) carry-over batches, as in the reference, or n // batch_size
    shuffled full batches (`batching="shuffle_drop_last"`). RNG use, in order: the Linear's
    default init (skipped when `draw_default_init` is false: the caller made those draws
    already, where its reference makes them), its `init` re-init, then the batches'
    permutations. `model`: a classifier the caller built (and initialised) earlier, trained in
    place of a fresh one (`init` and `draw_default_init` unused); CADA-VAE builds its classifier
    before drawing its training latents, as its reference does.
    """
    if model is None and draw_default_init:
        model = LinearLogSoftmax(train_inputs.shape[1], num_classes, init)
    elif model is None:
        with torch.random.fork_rng(devices=[]):  # the Linear is built on the CPU
            model = LinearLogSoftmax(train_inputs.shape[1], num_classes, init)
        model.apply(partial(init_linear_, scheme=init))
    model = model.to(train_inputs.device)
    optimizer = adam(model.parameters(), lr, betas)
    if batching == "carry_over":
        batches: CarryOverBatches | ShuffledBatches = CarryOverBatches(train_inputs.shape[0])
    elif batching == "shuffle_drop_last":
        batches = ShuffledBatches(train_inputs.shape[0])
    else:
        raise ValueError(f"batching: expected carry_over or shuffle_drop_last, found "
                         f"{batching!r}")
    steps = batches.steps_per_epoch(batch_size)
    for _ in range(epochs):
        for _ in range(steps):
            rows = batches.next(batch_size).to(train_inputs.device)
            optimizer.zero_grad(set_to_none=True)
            with torch.enable_grad():  # callers may sit in no_grad (their networks are frozen)
                F.nll_loss(model(train_inputs[rows]), train_labels[rows]).backward()
            optimizer.step()
        with torch.no_grad():
            yield ClassifierEpoch(log_probs=model(eval_inputs),
                                  weight=model.fc.weight.detach().clone(),
                                  bias=model.fc.bias.detach().clone())
