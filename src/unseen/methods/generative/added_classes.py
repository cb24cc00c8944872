"""Classes added to a trained generative model at prediction time: only the final softmax is
retrained, seeded, over every class of the extended label space, on inputs the method makes
from the classes' semantic vectors alone (the training images are not in the model directory).

`refit` takes those inputs from any function; `refit_on_synthesis` makes them as the method's
own evaluation does (f-CLSWGAN, TF-VAEGAN, FREE): `syn_num` features per class from
`_synthesize`, mapped to the classifier's input by `_transformed`.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable

import torch

from unseen.errors import UnseenInputError
from unseen.methods.generative.classifier import Batching, train_classifier
from unseen.methods.generative.networks import InitScheme
from unseen.methods.generative.trainer import CLASSIFIER_BETAS, GenerativeMethod

ADDED_CANDIDATE = "added_classes"


def classifier_epochs_of(method: GenerativeMethod, candidate: str | None) -> int:
    """The classifier epochs of the chosen candidate ("classifier_epoch=K" -> K)."""
    match = re.fullmatch(r"classifier_epoch=(\d+)", candidate or "")
    return int(match.group(1)) if match else method.config.classifier_epochs


def check_class_semantics(method_name: str, class_semantics: torch.Tensor, size: int) -> None:
    """Added classes' semantic vectors must have the model's semantic size."""
    if class_semantics.ndim != 2 or class_semantics.shape[1] != size:
        raise UnseenInputError(f"{method_name} added classes: expected semantic vectors of size "
                               f"{size}, found {tuple(class_semantics.shape)}")


@torch.no_grad()
def seeded_refit(device: torch.device, seed: int,
                 training_set: Callable[[], tuple[torch.Tensor, torch.Tensor]],
                 num_classes: int, epochs: int, batch_size: int, lr: float,
                 init: InitScheme = "normal", batching: Batching = "carry_over"
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Train a fresh final softmax (`init`, `batching`: `train_classifier`'s) on
    `training_set()` (inputs, labels), made and trained under `seed` without touching the
    global RNG streams; returns the last epoch's (weight, bias)."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        inputs, labels = training_set()
        epochs_run = train_classifier(inputs, labels, inputs[:0], num_classes, epochs,
                                      batch_size, lr, CLASSIFIER_BETAS, init, batching)
        last = deque(epochs_run, maxlen=1)[0]  # run every epoch, keep the last
    return last.weight.cpu(), last.bias.cpu()


@torch.no_grad()
def refit(method: GenerativeMethod, class_semantics: torch.Tensor, seed: int,
          classifier_epochs: int, semantic_size: int, per_class: int, batch_size: int,
          inputs_for: Callable[[torch.Tensor], torch.Tensor], init: InitScheme = "normal",
          batching: Batching = "carry_over") -> str:
    """Retrain the final classifier over all rows of `class_semantics` [K', A] (the model's
    classes followed by the added ones) on `inputs_for(semantics on the device)`, `per_class`
    rows per class in class order; store it as `ADDED_CANDIDATE` and return that name."""
    check_class_semantics(method.label, class_semantics, semantic_size)
    device = method.device
    num_classes = int(class_semantics.shape[0])

    def training_set() -> tuple[torch.Tensor, torch.Tensor]:
        inputs = inputs_for(class_semantics.to(device, torch.float32))
        return inputs, torch.arange(num_classes, device=device).repeat_interleave(per_class)

    weight, bias = seeded_refit(device, seed, training_set, num_classes, classifier_epochs,
                                batch_size, method.config.classifier_lr, init, batching)
    method.classifiers.entries[ADDED_CANDIDATE] = ("gzsl", weight, bias)
    return ADDED_CANDIDATE


@torch.no_grad()
def refit_on_synthesis(method: GenerativeMethod, class_semantics: torch.Tensor, seed: int,
                       classifier_epochs: int) -> str:
    """`refit` on the method's evaluation-time inputs: `_synthesize` (`syn_num` features per
    class), then `_transformed` (the classifier's input: the features themselves, or the
    method's transform of them); the semantics first take the method's `_class_semantics`, as
    in training."""
    if method.generator is None:
        raise UnseenInputError(f"{method.label} model: expected a trained method, found no "
                               "generator")
    c = method.config
    what = f"{method.label} synthesising the added classes"
    method.generator.eval()

    def inputs_for(semantics: torch.Tensor) -> torch.Tensor:
        semantics = method._class_semantics(semantics)
        return method._transformed(method._synthesize(semantics, c.syn_num, what), what)

    return refit(method, class_semantics, seed, classifier_epochs,
                 method.architecture["semantic_dim"], c.syn_num,
                 c.classifier_batch_size or c.syn_num, inputs_for)
