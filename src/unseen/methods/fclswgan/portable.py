"""f-CLSWGAN and classes added at prediction time.

As for CE-GZSL (`unseen.methods.cegzsl.portable`): G synthesises `syn_num` features for every
class of the extended label space from its semantic vector and only the final softmax is
retrained, seeded, for the classifier epochs of the chosen candidate. f-CLSWGAN's classifier
reads the features themselves (no embedding). The training images are not in the model
directory, so the seen classes are represented by G's features too.
"""

from __future__ import annotations

from typing import Any

import torch

from unseen.errors import UnseenInputError
from unseen.methods.cegzsl.portable import ADDED_CANDIDATE, check_class_semantics, seeded_refit
from unseen.methods.fclswgan.method import FCLSWGAN
from unseen.methods.generative.synthesis import synthesize_per_class


@torch.no_grad()
def refit_with_added_classes(method: FCLSWGAN, class_semantics: torch.Tensor, seed: int,
                             classifier_epochs: int) -> str:
    """Retrain the final classifier over all rows of `class_semantics` [K', A] (the model's
    classes followed by the added ones) on G's features; returns the new candidate's name."""
    if method.generator is None:
        raise UnseenInputError("f-CLSWGAN model: expected a trained method, found no generator")
    check_class_semantics("f-CLSWGAN", class_semantics, method.architecture["semantic_dim"])
    c = method.config
    device = method.device
    num_classes = int(class_semantics.shape[0])
    method.generator.eval()

    def training_set() -> tuple[torch.Tensor, torch.Tensor]:
        features = synthesize_per_class(
            method.generator, class_semantics.to(device, torch.float32), c.syn_num,
            method.architecture["noise_dim"], "f-CLSWGAN synthesising the added classes")
        return features, torch.arange(num_classes, device=device).repeat_interleave(c.syn_num)

    weight, bias = seeded_refit(device, seed, training_set, num_classes, classifier_epochs,
                                c.classifier_batch_size or c.syn_num, c.classifier_lr)
    method.classifiers.entries[ADDED_CANDIDATE] = ("gzsl", weight, bias)
    return ADDED_CANDIDATE


def classifier_entry(method: FCLSWGAN, name: str) -> dict[str, Any]:
    """One final classifier in the form the model directory's state stores it."""
    return method.classifiers.entry(name)
