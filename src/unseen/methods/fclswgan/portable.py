"""f-CLSWGAN and classes added at prediction time.

As for CE-GZSL (`unseen.methods.cegzsl.portable`): G synthesises `syn_num` features for every
class of the extended label space from its semantic vector and only the final softmax is
retrained, seeded, for the classifier epochs of the chosen candidate
(`unseen.methods.generative.added_classes`). f-CLSWGAN's classifier reads the features
themselves (no embedding). The training images are not in the model directory, so the seen
classes are represented by G's features too.
"""

from __future__ import annotations

import torch

from unseen.errors import UnseenInputError
from unseen.methods.fclswgan.method import FCLSWGAN
from unseen.methods.generative.added_classes import refit
from unseen.methods.generative.synthesis import synthesize_per_class


def refit_with_added_classes(method: FCLSWGAN, class_semantics: torch.Tensor, seed: int,
                             classifier_epochs: int) -> str:
    """Retrain the final classifier over all rows of `class_semantics` [K', A] (the model's
    classes followed by the added ones) on G's features; returns the new candidate's name."""
    if method.generator is None:
        raise UnseenInputError("f-CLSWGAN model: expected a trained method, found no generator")
    c = method.config
    method.generator.eval()

    def features(semantics: torch.Tensor) -> torch.Tensor:
        return synthesize_per_class(method.generator, semantics, c.syn_num,
                                    method.architecture["noise_dim"],
                                    "f-CLSWGAN synthesising the added classes")

    return refit(method, class_semantics, seed, classifier_epochs,
                 method.architecture["semantic_dim"], c.syn_num,
                 c.classifier_batch_size or c.syn_num, features)
