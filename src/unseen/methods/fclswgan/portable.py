"""f-CLSWGAN and classes added at prediction time.

As for CE-GZSL (`unseen.methods.cegzsl.portable`): G synthesises `syn_num` features for every
class of the extended label space from its semantic vector and only the final softmax is
retrained, seeded, for the classifier epochs of the chosen candidate
(`unseen.methods.generative.added_classes.refit_on_synthesis`). f-CLSWGAN's classifier reads
the features themselves (no embedding). The training images are not in the model directory, so
the seen classes are represented by G's features too.
"""

from __future__ import annotations

import torch

from unseen.methods.fclswgan.method import FCLSWGAN
from unseen.methods.generative.added_classes import refit_on_synthesis


def refit_with_added_classes(method: FCLSWGAN, class_semantics: torch.Tensor, seed: int,
                             classifier_epochs: int) -> str:
    """Retrain the final classifier over all rows of `class_semantics` [K', A] (the model's
    classes followed by the added ones) on G's features; returns the new candidate's name."""
    return refit_on_synthesis(method, class_semantics, seed, classifier_epochs)
