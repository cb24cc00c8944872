"""CADA-VAE and classes added at prediction time.

The attribute encoder maps any class vector into the shared latent space, so an added class
needs no image: as the reference builds the unseen classes' classifier rows (§4.1), every class
of the extended label space gets `unseen_latents_per_class` noisy latents of its semantic
vector, and only the latent softmax is retrained, seeded, for the classifier epochs of the
chosen candidate. The training images are not in the model directory, so the seen classes
are represented by their attribute latents too (the VAEs were trained to align the two).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import torch

from unseen.errors import UnseenInputError
from unseen.methods.cadavae.latents import noisy_latents
from unseen.methods.cadavae.method import _CLASSIFIER_BETAS, CADAVAE
from unseen.methods.cegzsl.classifier import train_classifier
from unseen.methods.cegzsl.portable import ADDED_CANDIDATE


@torch.no_grad()
def refit_with_added_classes(method: CADAVAE, class_semantics: torch.Tensor, seed: int,
                             classifier_epochs: int) -> str:
    """Retrain the latent classifier over all rows of `class_semantics` [K', A] (the model's
    classes followed by the added ones); returns the new candidate's name."""
    if method.vaes is None:
        raise UnseenInputError("CADA-VAE model: expected a trained method, found no networks")
    attribute_dim = method.architecture["attribute_dim"]
    if class_semantics.ndim != 2 or class_semantics.shape[1] != attribute_dim:
        raise UnseenInputError(f"CADA-VAE added classes: expected semantic vectors of size "
                               f"{attribute_dim}, found {tuple(class_semantics.shape)}")
    c = method.config
    device = method.device
    num_classes = int(class_semantics.shape[0])
    per_class = c.unseen_latents_per_class
    method.vaes.eval()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        labels = torch.arange(num_classes, device=device).repeat_interleave(per_class)
        latents = noisy_latents(method.vaes.attribute_encoder,
                                class_semantics.to(device, torch.float32), labels,
                                c.replicate_reference_bugs)
        epochs = train_classifier(latents, labels, latents[:0], num_classes, classifier_epochs,
                                  c.classifier_batch_size, c.classifier_lr, _CLASSIFIER_BETAS)
        last = deque(epochs, maxlen=1)[0]  # run every epoch, keep the last
    method.classifiers.entries[ADDED_CANDIDATE] = ("gzsl", last.weight.cpu(), last.bias.cpu())
    return ADDED_CANDIDATE


def classifier_entry(method: CADAVAE, name: str) -> dict[str, Any]:
    """One latent classifier in the form the model directory's state stores it."""
    kind, weight, bias = method.classifiers.entries[name]
    return {"kind": kind, "weight": weight, "bias": bias}
