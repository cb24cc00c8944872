"""CE-GZSL outside its run: the inference state of a model directory, and new classes.

A model directory keeps G (to synthesise features for classes added later), E (the embedding
the final classifier reads) and the final classifiers; the critic D, the comparator F and the
optimisers only serve training and are left out.

Adding classes (`refit_with_added_classes`): G synthesises `syn_num` features for every class
of the extended label space from its semantic vector, E embeds them, and only the final
softmax classifier is retrained (seeded, so the same call gives the same classifier), for the
number of classifier epochs of the chosen candidate. The training images are not in the model
directory, so the seen classes are represented by G's features too (G was trained to
reproduce exactly those); in the reference the seen classes use their real features.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from typing import Any

import torch

from unseen.errors import UnseenInputError
from unseen.methods.cegzsl.method import _CLASSIFIER_BETAS, CEGZSL
from unseen.methods.cegzsl.networks import EmbeddingNet
from unseen.methods.generative.classifier import train_classifier
from unseen.methods.generative.networks import ConditionalGenerator

ADDED_CANDIDATE = "added_classes"
_INFERENCE_VERSION = 1


def inference_state(state: dict[str, Any]) -> dict[str, Any]:
    """From a full `CEGZSL.state_dict()` (a run's checkpoint), what prediction and
    `refit_with_added_classes` need: G, E and the final classifiers."""
    missing = [k for k in ("architecture", "generator", "embedding", "classifiers", "epoch")
               if k not in state]
    if missing:
        raise UnseenInputError(f"CE-GZSL checkpoint: expected fields {missing}, found none")
    return {"inference_version": _INFERENCE_VERSION, "architecture": dict(state["architecture"]),
            "epoch": int(state["epoch"]), "generator": dict(state["generator"]),
            "embedding": dict(state["embedding"]),
            "classifiers": {name: dict(entry) for name, entry in state["classifiers"].items()}}


def load_inference_state(method: CEGZSL, state: dict[str, Any]) -> None:
    """Restore `inference_state` into a fresh `CEGZSL(config, seed)` (G and E only)."""
    if state.get("inference_version") != _INFERENCE_VERSION:
        raise UnseenInputError(f"CE-GZSL model state: field 'inference_version': expected "
                               f"{_INFERENCE_VERSION}, found {state.get('inference_version')!r}")
    a = {key: int(value) for key, value in state["architecture"].items()}
    device = method.device
    method.architecture = a
    method.generator = ConditionalGenerator(a["noise_dim"], a["semantic_dim"],
                                            a["generator_hidden"], a["feature_dim"]).to(device)
    method.embedding = EmbeddingNet(a["feature_dim"], a["embed_dim"],
                                    a["projection_dim"]).to(device)
    method.generator.load_state_dict(state["generator"])
    method.embedding.load_state_dict(state["embedding"])
    method.generator.eval()
    method.embedding.eval()
    method.classifiers = {name: (entry["kind"], entry["weight"], entry["bias"])
                          for name, entry in state["classifiers"].items()}
    method.start_epoch = int(state["epoch"])


def classifier_epochs_of(method: CEGZSL, candidate: str | None) -> int:
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
                 num_classes: int, epochs: int, batch_size: int, lr: float
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Train a fresh final softmax on `training_set()` (inputs, labels), made and trained under
    `seed` without touching the global RNG streams; returns the last epoch's (weight, bias)."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        inputs, labels = training_set()
        epochs_run = train_classifier(inputs, labels, inputs[:0], num_classes, epochs,
                                      batch_size, lr, _CLASSIFIER_BETAS)
        last = deque(epochs_run, maxlen=1)[0]  # run every epoch, keep the last
    return last.weight.cpu(), last.bias.cpu()


def refit_with_added_classes(method: CEGZSL, class_semantics: torch.Tensor, seed: int,
                             classifier_epochs: int) -> str:
    """Retrain the final classifier over all rows of `class_semantics` [K', A] (the model's
    classes followed by the added ones) on G's features; returns the new candidate's name."""
    if method.generator is None or method.embedding is None:
        raise UnseenInputError("CE-GZSL model: expected a trained method, found no networks")
    check_class_semantics("CE-GZSL", class_semantics, method.architecture["semantic_dim"])
    c = method.config
    syn = c.syn_num
    device = method.device
    num_classes = int(class_semantics.shape[0])

    def training_set() -> tuple[torch.Tensor, torch.Tensor]:
        generator = torch.Generator(device="cpu").manual_seed(seed)
        noise = torch.randn(num_classes * syn, method.architecture["noise_dim"],
                            generator=generator)
        semantics = class_semantics.to(device, torch.float32).repeat_interleave(syn, 0)
        synthetic = method._classifier_input(
            method._embed_synthetic(noise.to(device), semantics, method.start_epoch - 1))
        return synthetic, torch.arange(num_classes, device=device).repeat_interleave(syn)

    weight, bias = seeded_refit(device, seed, training_set, num_classes, classifier_epochs,
                                c.classifier_batch_size or syn, c.classifier_lr)
    method.classifiers[ADDED_CANDIDATE] = ("gzsl", weight, bias)
    return ADDED_CANDIDATE


def classifier_entry(method: CEGZSL, name: str) -> dict[str, Any]:
    """One final classifier in the form `inference_state` stores it."""
    kind, weight, bias = method.classifiers[name]
    return {"kind": kind, "weight": weight, "bias": bias}
