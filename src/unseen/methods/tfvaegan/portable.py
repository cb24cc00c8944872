"""TF-VAEGAN and classes added at prediction time.

As its evaluation after every epoch: G with feedback (weight a2) synthesises `syn_num` features
for every class of the extended label space from its L2-normalised semantic vector
(`l2_semantics`, as in training), each row becomes [x ; Dec(x) ; Dec hidden(x)], and only the
final softmax is retrained, seeded, for the classifier epochs of the chosen candidate
(`unseen.methods.generative.added_classes.refit_on_synthesis`). The training images are not in
the model directory, so the seen classes are represented by G's features too.
"""

from __future__ import annotations

import torch

from unseen.methods.generative.added_classes import refit_on_synthesis
from unseen.methods.tfvaegan.method import TFVAEGAN


def refit_with_added_classes(method: TFVAEGAN, class_semantics: torch.Tensor, seed: int,
                             classifier_epochs: int) -> str:
    """Retrain the final classifier over all rows of `class_semantics` [K', A] (the model's
    classes followed by the added ones) on G's transformed features; returns the new
    candidate's name."""
    return refit_on_synthesis(method, class_semantics, seed, classifier_epochs)
