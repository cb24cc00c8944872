"""CE-GZSL outside its run: classes added at prediction time.

A model directory keeps G (to synthesise features for classes added later), E (the embedding
the final classifier reads) and the final classifiers (`CEGZSL.inference_parts`,
`unseen.methods.generative.inference`); the critic D, the comparator F and the optimisers only
serve training and are left out.

Adding classes (`refit_with_added_classes`): G synthesises `syn_num` features for every class
of the extended label space from its semantic vector, E embeds them, and only the final
softmax classifier is retrained (seeded, so the same call gives the same classifier), for the
number of classifier epochs of the chosen candidate. The training images are not in the model
directory, so the seen classes are represented by G's features too (G was trained to
reproduce exactly those); in the reference the seen classes use their real features.
"""

from __future__ import annotations

import torch

from unseen.errors import TrainingDivergedError, UnseenInputError
from unseen.methods.cegzsl.method import CEGZSL
from unseen.methods.generative.added_classes import refit
from unseen.methods.generative.synthesis import BLOCK_ROWS


def refit_with_added_classes(method: CEGZSL, class_semantics: torch.Tensor, seed: int,
                             classifier_epochs: int) -> str:
    """Retrain the final classifier over all rows of `class_semantics` [K', A] (the model's
    classes followed by the added ones) on G's features; returns the new candidate's name."""
    if method.generator is None or method.embedding is None:
        raise UnseenInputError("CE-GZSL model: expected a trained method, found no networks")
    c = method.config
    syn = c.syn_num

    def embedded(semantics: torch.Tensor) -> torch.Tensor:
        generator = torch.Generator(device="cpu").manual_seed(seed)
        noise = torch.randn(semantics.shape[0] * syn, method.architecture["noise_dim"],
                            generator=generator).to(semantics.device)
        blocks = []
        for noise_block, semantic_block in zip(noise.split(BLOCK_ROWS),
                                               semantics.repeat_interleave(syn, 0).split(
                                                   BLOCK_ROWS), strict=True):
            fake = method.generator(noise_block, semantic_block)
            if not torch.isfinite(fake).all():
                raise TrainingDivergedError("CE-GZSL synthesising the added classes: generator "
                                            "output is not finite")
            blocks.append(method._classifier_inputs(fake))
        return torch.cat(blocks)

    return refit(method, class_semantics, seed, classifier_epochs,
                 method.architecture["semantic_dim"], syn, c.classifier_batch_size or syn,
                 embedded)
