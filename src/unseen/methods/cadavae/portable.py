"""CADA-VAE and classes added at prediction time.

The attribute encoder maps any class vector into the shared latent space, so an added class
needs no image: as the reference builds the unseen classes' classifier rows (§4.1), every class
of the extended label space gets `unseen_latents_per_class` noisy latents of its semantic
vector, and only the latent softmax is retrained, seeded, for the classifier epochs of the
chosen candidate. The training images are not in the model directory, so the seen classes
are represented by their attribute latents too (the VAEs were trained to align the two).
"""

from __future__ import annotations

from typing import Any

import torch

from unseen.errors import UnseenInputError
from unseen.methods.cadavae.latents import noisy_latents
from unseen.methods.cadavae.method import CADAVAE
from unseen.methods.cegzsl.portable import ADDED_CANDIDATE, check_class_semantics, seeded_refit


@torch.no_grad()
def refit_with_added_classes(method: CADAVAE, class_semantics: torch.Tensor, seed: int,
                             classifier_epochs: int) -> str:
    """Retrain the latent classifier over all rows of `class_semantics` [K', A] (the model's
    classes followed by the added ones); returns the new candidate's name."""
    if method.vaes is None:
        raise UnseenInputError("CADA-VAE model: expected a trained method, found no networks")
    check_class_semantics("CADA-VAE", class_semantics, method.architecture["attribute_dim"])
    c = method.config
    device = method.device
    num_classes = int(class_semantics.shape[0])
    method.vaes.eval()

    def training_set() -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.arange(num_classes, device=device).repeat_interleave(
            c.unseen_latents_per_class)
        latents = noisy_latents(method.vaes.attribute_encoder,
                                class_semantics.to(device, torch.float32), labels,
                                c.replicate_reference_bugs)
        return latents, labels

    weight, bias = seeded_refit(device, seed, training_set, num_classes, classifier_epochs,
                                c.classifier_batch_size, c.classifier_lr)
    method.classifiers.entries[ADDED_CANDIDATE] = ("gzsl", weight, bias)
    return ADDED_CANDIDATE


def classifier_entry(method: CADAVAE, name: str) -> dict[str, Any]:
    """One latent classifier in the form the model directory's state stores it."""
    return method.classifiers.entry(name)
