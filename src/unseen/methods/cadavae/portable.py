"""CADA-VAE and classes added at prediction time.

The attribute encoder maps any class vector into the shared latent space, so an added class
needs no image: as the reference builds the unseen classes' classifier rows (§4.1), every class
of the extended label space gets `unseen_latents_per_class` noisy latents of its semantic
vector, and only the latent softmax is retrained, seeded, for the classifier epochs of the
chosen candidate. The training images are not in the model directory, so the seen classes
are represented by their attribute latents too (the VAEs were trained to align the two). The
softmax takes the trained one's form (`reference_classifier`: init and batching).
"""

from __future__ import annotations

import torch

from unseen.errors import UnseenInputError
from unseen.methods.cadavae.latents import noisy_latents
from unseen.methods.cadavae.method import CADAVAE
from unseen.methods.generative.added_classes import refit


def refit_with_added_classes(method: CADAVAE, class_semantics: torch.Tensor, seed: int,
                             classifier_epochs: int) -> str:
    """Retrain the latent classifier over all rows of `class_semantics` [K', A] (the model's
    classes followed by the added ones); returns the new candidate's name."""
    if method.vaes is None:
        raise UnseenInputError("CADA-VAE model: expected a trained method, found no networks")
    c = method.config
    per_class = c.unseen_latents_per_class
    method.vaes.eval()

    def latents(semantics: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(semantics.shape[0], device=semantics.device).repeat_interleave(
            per_class)
        return noisy_latents(method.vaes.attribute_encoder, semantics, rows,
                             c.replicate_reference_bugs)

    init, batching = method.classifier_form()
    return refit(method, class_semantics, seed, classifier_epochs,
                 method.architecture["attribute_dim"], per_class, c.classifier_batch_size,
                 latents, init=init, batching=batching)
