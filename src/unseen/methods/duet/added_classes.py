"""DUET outside its run: the model-directory state, its vocabulary files, and new classes.

DUET scores class c as softmax_c(pre_attri . att_c) over the candidates, with att the
L2-normalised class semantic rows (`DuetModel.class_logits`); the image side (pre_attri, from
the image paired with the fixed template) does not depend on the classes. A class added at
prediction time is therefore one more row of att: its attribute row, made like the training
rows (the model directory's semantics recipe), joins the candidates and every existing score
is unchanged before the softmax. DUET's semantics are attribute rows on every data set it
trains on (its text side is built from attribute names), so a class described only by text is
refused by the recipe unless the model's semantics are themselves text embeddings.

The model directory keeps the DUET network's weights (vision, language model, X-layer, heads)
and copies the attribute files the vocabulary is read from (groups, mapping, names), so that
the template that pairs with every image is rebuilt identically; the vision and text model
references (`vision_model`, `text_model`) still name the architectures and tokenizer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from unseen.data.benchmark import Benchmark
from unseen.errors import UnseenInputError

# DUETConfig fields naming a vocabulary file, and the benchmark.source keys they default to.
VOCABULARY_FILES = ("attribute_groups", "attribute_mapping", "attributes_txt")


def inference_state(state: dict[str, Any]) -> dict[str, Any]:
    """From a full `DUET.state_dict()`: the network weights and the epoch (no optimiser, no
    RNG: `DUET.load_state_dict` accepts this as it is)."""
    if "model" not in state:
        raise UnseenInputError("DUET checkpoint: expected field 'model', found none")
    return {"model": dict(state["model"]), "epoch": int(state.get("epoch", 0))}


def vocabulary_files(hyperparameters: dict[str, Any], benchmark: Benchmark
                     ) -> tuple[dict[str, tuple[str, bytes, Path]], str]:
    """({config field: (file name, contents, path)} of each vocabulary file in use, the
    resolved duet_style)."""
    source = benchmark.source or {}
    files = {}
    for key in VOCABULARY_FILES:
        value = hyperparameters.get(key) or source.get(key)
        if value:
            path = Path(value)
            try:
                files[key] = (f"{key}{path.suffix}", path.read_bytes(), path)
            except OSError as error:
                raise UnseenInputError(f"DUET vocabulary file {path} (field '{key}'): expected a "
                                       f"readable file, found {error.strerror}") from None
    style = hyperparameters.get("duet_style") or source.get("duet_style") or "generic"
    return files, style


def portable_hyperparameters(hyperparameters: dict[str, Any], files: dict[str, str],
                             style: str) -> dict[str, Any]:
    """The hyperparameters with the vocabulary paths pointing at the model directory's copies
    (`files`: field -> path) and the run's paths that prediction does not need cleared."""
    updated = dict(hyperparameters, duet_style=style, image_root="", pixel_cache_dir="")
    for key in VOCABULARY_FILES:
        updated[key] = files.get(key, "")
    return updated


@torch.no_grad()
def class_probabilities(pre_attri: torch.Tensor, class_semantics: torch.Tensor) -> torch.Tensor:
    """softmax(pre_attri . att^T) with att the L2-normalised rows: DUET's class score, for any
    set of candidate rows (the reference formula, restated for checking added classes)."""
    att = torch.nn.functional.normalize(class_semantics.float(), dim=1)
    return torch.softmax(pre_attri.float() @ att.T, dim=-1)


@torch.no_grad()
def pre_attributes(method, task, pixels: torch.Tensor) -> torch.Tensor:
    """pre_attri [n, A] of normalised pixels, each image paired with the fixed template: the
    image side of DUET's class score, independent of the candidate classes."""
    method._prepare(task)
    model, device = method.model, method._device
    was_training = model.training
    model.eval()
    ids = method._template.to(device)[None]
    mask = torch.ones_like(ids)
    out = []
    with method._autocast():
        states = model.encode_text(ids, mask)
        for start in range(0, pixels.shape[0], method.config.eval_batch_size):
            batch = pixels[start:start + method.config.eval_batch_size].to(device)
            out.append(model(batch, ids, mask, text_states=states).pre_attri.float().cpu())
    model.train(was_training)
    return torch.cat(out)
