"""f-CLSWGAN and classes added at prediction time.

As for CE-GZSL (`unseen.methods.cegzsl.portable`): G synthesises `syn_num` features for every
class of the extended label space from its semantic vector and only the final softmax is
retrained, seeded, for the classifier epochs of the chosen candidate. f-CLSWGAN's classifier
reads the features themselves (no embedding). The training images are not in the model
directory, so the seen classes are represented by G's features too.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import torch

from unseen.errors import UnseenInputError
from unseen.methods.cegzsl.classifier import train_classifier
from unseen.methods.cegzsl.portable import ADDED_CANDIDATE
from unseen.methods.fclswgan.method import _CLASSIFIER_BETAS, FCLSWGAN
from unseen.methods.fclswgan.sampling import synthesize_per_class


@torch.no_grad()
def refit_with_added_classes(method: FCLSWGAN, class_semantics: torch.Tensor, seed: int,
                             classifier_epochs: int) -> str:
    """Retrain the final classifier over all rows of `class_semantics` [K', A] (the model's
    classes followed by the added ones) on G's features; returns the new candidate's name."""
    if method.generator is None:
        raise UnseenInputError("f-CLSWGAN model: expected a trained method, found no generator")
    semantic_dim = method.architecture["semantic_dim"]
    if class_semantics.ndim != 2 or class_semantics.shape[1] != semantic_dim:
        raise UnseenInputError(f"f-CLSWGAN added classes: expected semantic vectors of size "
                               f"{semantic_dim}, found {tuple(class_semantics.shape)}")
    c = method.config
    device = method.device
    num_classes = int(class_semantics.shape[0])
    method.generator.eval()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        features = synthesize_per_class(
            method.generator, class_semantics.to(device, torch.float32), c.syn_num,
            method.architecture["noise_dim"], "f-CLSWGAN synthesising the added classes")
        labels = torch.arange(num_classes, device=device).repeat_interleave(c.syn_num)
        epochs = train_classifier(features, labels, features[:0], num_classes,
                                  classifier_epochs, c.classifier_batch_size or c.syn_num,
                                  c.classifier_lr, _CLASSIFIER_BETAS)
        last = deque(epochs, maxlen=1)[0]  # run every epoch, keep the last
    method.classifiers.entries[ADDED_CANDIDATE] = ("gzsl", last.weight.cpu(), last.bias.cpu())
    return ADDED_CANDIDATE


def classifier_entry(method: FCLSWGAN, name: str) -> dict[str, Any]:
    """One final classifier in the form the model directory's state stores it."""
    kind, weight, bias = method.classifiers.entries[name]
    return {"kind": kind, "weight": weight, "bias": bias}
