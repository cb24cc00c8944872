"""A trained generative method's inference state: what a model directory keeps.

Prediction (`scores`) and classes added later (each method's `portable.refit_with_added_classes`)
read only the networks a method names in `GenerativeMethod.inference_parts` and the final
classifiers; the critic, the optimisers' moments, FREE's SAMC centres, f-CLSWGAN's seen-class
softmax and CE-GZSL's comparator only serve training, so `unseen export` leaves them out.

A name in `inference_parts` is a `_stateful` key ("generator") or one submodule of it
("vaes.image_encoder"): that part's `state_dict` entries under the prefix are kept.

    {"inference_version": 1, "architecture": {...}, "epoch": N,
     "<part>": {its kept state_dict entries}, ..., "classifiers": {...}}

`load_inference_state` builds the method's networks as `load_state_dict` does (the same
`_build_networks`, hence the same random draws and speed options) and loads the kept parts
into them; the rest keep their fresh initialisation and are never read.
"""

from __future__ import annotations

from typing import Any

from unseen.errors import UnseenInputError
from unseen.methods.generative.trainer import GenerativeMethod

INFERENCE_VERSION = 1
_CLASSIFIERS = "classifiers"


def is_inference_state(state: dict[str, Any]) -> bool:
    """True for `inference_state`'s output; False for a full `state_dict` (older model
    directories of f-CLSWGAN, TF-VAEGAN, FREE and CADA-VAE hold those; `GZSLModel.from_pretrained`
    trims them on loading)."""
    return "inference_version" in state


def _prefixes_by_part(method_class: type[GenerativeMethod]) -> dict[str, tuple[str, ...]]:
    """{part: state_dict key prefixes} ("" for the whole part) from `inference_parts`."""
    parts: dict[str, tuple[str, ...]] = {}
    for name in method_class.inference_parts:
        part, _, sub = name.partition(".")
        parts[part] = (*parts.get(part, ()), f"{sub}." if sub else "")
    return parts


def _kept(entries: dict[str, Any], prefixes: tuple[str, ...]) -> dict[str, Any]:
    return {key: value for key, value in entries.items() if key.startswith(prefixes)}


def inference_state(method_class: type[GenerativeMethod], state: dict[str, Any]
                    ) -> dict[str, Any]:
    """From a full `state_dict()` (a run's checkpoint), the parts that prediction and added
    classes read: `inference_parts`, the final classifiers, the architecture and the epoch."""
    parts = _prefixes_by_part(method_class)
    missing = [key for key in ("architecture", "epoch", _CLASSIFIERS, *parts) if key not in state]
    if missing:
        raise UnseenInputError(f"{method_class.label} checkpoint: expected fields {missing}, "
                               "found none")
    kept = {"inference_version": INFERENCE_VERSION, "architecture": dict(state["architecture"]),
            "epoch": int(state["epoch"]),
            **{part: _kept(dict(state[part]), prefixes) for part, prefixes in parts.items()},
            _CLASSIFIERS: {name: dict(entry) for name, entry in state[_CLASSIFIERS].items()}}
    if "refit_base_candidate" in state:  # a model directory's, once classes were added
        kept["refit_base_candidate"] = state["refit_base_candidate"]
    return kept


def load_inference_state(method: GenerativeMethod, state: dict[str, Any]) -> None:
    """Restore `inference_state` into a fresh `Method(config, seed)`: its networks built, the
    kept parts loaded (every key of them, nothing else), the networks in eval mode."""
    if state.get("inference_version") != INFERENCE_VERSION:
        raise UnseenInputError(f"{method.label} model state: field 'inference_version': expected "
                               f"{INFERENCE_VERSION}, found {state.get('inference_version')!r}")
    method._build_networks({key: int(value) for key, value in state["architecture"].items()})
    stateful = method._stateful()
    for part, prefixes in _prefixes_by_part(type(method)).items():
        module = stateful[part]
        expected = set(_kept(module.state_dict(), prefixes))
        found = set(state[part])
        if found != expected:
            odd = sorted(expected ^ found)
            raise KeyError(f"{part}: {len(odd)} weights missing or unexpected (first: {odd[0]})")
        module.load_state_dict(state[part], strict=False)
        module.eval()
    method.classifiers.load_state_dict(state[_CLASSIFIERS])
    method.start_epoch = int(state["epoch"])
