"""Class semantics for classes added at prediction time, built like the training classes'.

A *recipe* (a JSON object saved in every model directory) says how a data set's class
semantics were made, so that a class that did not exist at training time gets a vector in the
same space:

    {"blocks": [{"kind": "attributes", "dim": 85, "attribute_names": [...] | null,
                 "normalise": "l2" | "none"},
                {"kind": "descriptions", "dim": 384, "encoder": "minilm" | DIR | HUB_ID,
                 "text_format": "{name}: {description}", "normalise": "l2" | "none"},
                {"kind": "prompt", "dim": 384, "encoder": ..., "prompt": "a photo of a {}.",
                 "underscores_to_spaces": true, "normalise": "l2" | "none"},
                {"kind": "vectors", "dim": 1024, "origin": "..."}],
     "combine": "concatenate"}

An attributes block needs an attribute row (names must match exactly), a descriptions block a
text, a prompt block only the class name; a "vectors" block (precomputed embeddings of unknown
origin, e.g. CUB's sentence features) needs a numeric row. The task's own semantic
preprocessing (`Preprocessing.semantics`) is applied afterwards, as for the training classes.

Added classes come from `--add-class "name: text"` or a file: the descriptions formats of
`unseen data build` (`.json` {class: text}, `.jsonl` one {"class": name, "text": text} per
line, `.txt` lines `class: text`), or `.csv`/`.tsv` with a `class` column and numeric attribute
columns (an optional `description` column gives text too).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from unseen.data.benchmark import Benchmark
from unseen.errors import UnseenInputError, input_error

PACKAGED_MINILM = "minilm"
_NORM_TOLERANCE = 1e-3


@dataclass
class AddedClass:
    """A class described at prediction time by a text, an attribute row, or both."""

    name: str
    description: str | None = None
    attributes: dict[str, float] | None = None
    source: str = "--add-class"  # where it came from, for error messages
    extra: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- recipes

def recipe_for_benchmark(benchmark: Benchmark) -> dict[str, Any]:
    """How `benchmark.semantics` were made: from a built data set's manifest, an embedded data
    set's record, or (plain xlsa17 files) what the stored matrix shows."""
    source = benchmark.source or {}
    dim = int(benchmark.semantics.shape[1])
    manifest = source.get("manifest")
    if isinstance(manifest, dict) and isinstance(manifest.get("semantics"), dict):
        return _recipe_from_manifest(manifest, dim)
    if source.get("generator") == "unseen.data.embedded" and source.get("descriptions_kind") in (
            "wordnet", "prompt"):
        return _recipe_from_embedded(benchmark, dim)
    if benchmark.side_information == "sent":
        return {"blocks": [{"kind": "vectors", "dim": dim,
                            "origin": f"precomputed sentence features of '{benchmark.name}'"}],
                "combine": "concatenate"}
    return {"blocks": [{"kind": "attributes", "dim": dim,
                        "attribute_names": _names(benchmark.attribute_names, dim),
                        "normalise": "l2" if _rows_unit_norm(benchmark.semantics) else "none"}],
            "combine": "concatenate"}


def _names(names: list[str] | None, dim: int) -> list[str] | None:
    return [str(n) for n in names] if names is not None and len(names) == dim else None


def _rows_unit_norm(semantics: np.ndarray) -> bool:
    norms = np.linalg.norm(np.asarray(semantics, np.float64), axis=1)
    return bool(norms.size) and bool(np.all(np.abs(norms - 1.0) < _NORM_TOLERANCE))


def _encoder_id(name: str | None) -> str:
    from unseen.text.sentence_encoder import ENCODER_NAME

    return PACKAGED_MINILM if name in (None, "", PACKAGED_MINILM, ENCODER_NAME) else str(name)


def _recipe_from_embedded(benchmark: Benchmark, dim: int) -> dict[str, Any]:
    from unseen.text.class_descriptions import DOMAINS, PROMPT_TEMPLATE

    source = benchmark.source
    encoder = _encoder_id(source.get("semantic_encoder"))
    if source["descriptions_kind"] == "wordnet":  # class_descriptions: "{name}: {gloss}"
        block = {"kind": "descriptions", "dim": dim, "encoder": encoder,
                 "text_format": "{name}: {description}", "normalise": "l2"}
    else:
        domain = str(source.get("name", benchmark.name))
        prompt = PROMPT_TEMPLATE.replace("{domain}", DOMAINS.get(domain, domain))
        block = {"kind": "prompt", "dim": dim, "encoder": encoder,
                 "prompt": prompt.replace("{name}", "{}"), "underscores_to_spaces": False,
                 "normalise": "l2"}
    return {"blocks": [block], "combine": "concatenate"}


def _recipe_from_manifest(manifest: dict[str, Any], dim: int) -> dict[str, Any]:
    semantics = manifest["semantics"]
    blocks_in = semantics.get("blocks") or []
    per_block_l2 = "normalised" in str(semantics.get("combine", "")).lower() or len(blocks_in) > 1
    blocks = []
    for raw in blocks_in:
        kind = raw.get("kind")
        block: dict[str, Any] = {"kind": kind, "dim": int(raw.get("dim", 0))}
        normalise = raw.get("normalise") or ("l2" if per_block_l2 else "none")
        if kind == "attributes":
            block.update(attribute_names=manifest.get("attribute_names"),
                         normalise="l2" if per_block_l2 else "none")
        elif kind == "descriptions":
            block.update(encoder=_encoder_id(raw.get("encoder")), normalise=normalise,
                         text_format=raw.get("text_format", "{description}"))
        elif kind == "prompt":
            # `unseen data build` fills "{}" with the name, underscores read as spaces
            block.update(encoder=_encoder_id(raw.get("encoder")), normalise=normalise,
                         prompt=str(raw.get("prompt", "{}")), underscores_to_spaces=True)
        else:
            raise input_error("data set manifest unseen.json", "semantics.blocks[].kind",
                              "attributes, descriptions or prompt", repr(kind))
        blocks.append(block)
    if sum(b["dim"] for b in blocks) != dim:
        raise input_error("data set manifest unseen.json", "semantics.blocks[].dim",
                          f"block sizes adding up to the semantic dimension {dim}",
                          str([b["dim"] for b in blocks]))
    return {"blocks": blocks, "combine": "concatenate"}


def recipe_summary(recipe: dict[str, Any]) -> str:
    """'attributes (85) + descriptions (384, minilm)': for messages."""
    parts = []
    for block in recipe["blocks"]:
        detail = f"{block['dim']}" + (f", {block['encoder']}" if "encoder" in block else "")
        parts.append(f"{block['kind']} ({detail})")
    return " + ".join(parts)


# ----------------------------------------------------------------------------- building vectors

def build_semantics(recipe: dict[str, Any], classes: list[AddedClass],
                    device: str = "cpu") -> np.ndarray:
    """float32 [len(classes), dim]: each added class's vector, made exactly like the training
    classes' (same encoder, text format or prompt, per-block normalisation, block order)."""
    if not classes:
        return np.empty((0, sum(b["dim"] for b in recipe["blocks"])), np.float32)
    blocks = []
    for block in recipe["blocks"]:
        kind = block["kind"]
        if kind in ("attributes", "vectors"):
            values = np.stack([_attribute_row(block, c, recipe) for c in classes])
        else:
            texts = [_text_for(block, c, recipe) for c in classes]
            values = _encode(block["encoder"], texts, device)
            if values.shape[1] != block["dim"]:
                raise input_error(f"text encoder '{block['encoder']}'", "output size",
                                  f"{block['dim']} (the model's {kind} block)",
                                  str(values.shape[1]))
        if block.get("normalise") == "l2":
            values = values / np.maximum(np.linalg.norm(values, axis=1, keepdims=True), 1e-12)
        blocks.append(values.astype(np.float32))
    return np.concatenate(blocks, axis=1)


def _text_for(block: dict[str, Any], added: AddedClass, recipe: dict[str, Any]) -> str:
    if block["kind"] == "prompt":
        if added.description:
            raise UnseenInputError(
                f"{added.source}: class '{added.name}': expected the class name alone, found a "
                f"description; this model's class semantics embed the prompt "
                f"{block['prompt']!r} built from the name only, so a description cannot enter "
                f"them (add it as '{added.name}')")
        name = added.name.replace("_", " ") if block.get("underscores_to_spaces") else added.name
        return block["prompt"].replace("{}", name)
    if not added.description:
        raise UnseenInputError(
            f"{added.source}: class '{added.name}': expected a text description (the model's "
            f"class semantics are {recipe_summary(recipe)}), found "
            + ("only an attribute row" if added.attributes else "none")
            + f"; add it as '{added.name}: <description>'")
    return block["text_format"].format(name=added.name, description=added.description)


def _attribute_row(block: dict[str, Any], added: AddedClass,
                   recipe: dict[str, Any]) -> np.ndarray:
    kind = "vector" if block["kind"] == "vectors" else "attribute"
    if not added.attributes:
        why = (f"this model's class semantics are {recipe_summary(recipe)}"
               + (f" ({block['origin']})" if "origin" in block else ""))
        raise UnseenInputError(
            f"{added.source}: class '{added.name}': expected an {kind} row ({why}; a text "
            f"cannot be turned into {kind}s), found "
            + ("only a description" if added.description else "nothing")
            + "; give it in a CSV/TSV with a 'class' column (--add-classes FILE)")
    names = block.get("attribute_names")
    given = list(added.attributes)
    if names is not None:
        missing = [n for n in names if n not in added.attributes]
        extra = [n for n in given if n not in names]
        if missing or extra:
            raise input_error(added.source, f"attribute columns of class '{added.name}'",
                              f"exactly the model's {len(names)} attribute names",
                              f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                              f"extra {extra[:5]}{'...' if len(extra) > 5 else ''}")
        values = [added.attributes[n] for n in names]
    else:
        if len(given) != block["dim"]:
            raise input_error(added.source, f"{kind} columns of class '{added.name}'",
                              f"{block['dim']} numeric columns (the model's semantic size)",
                              str(len(given)))
        values = [added.attributes[n] for n in given]
    return np.asarray(values, np.float64)


_ENCODERS: dict[tuple[str, str], Any] = {}


def _encode(encoder: str, texts: list[str], device: str) -> np.ndarray:
    """Sentence embeddings with the recipe's encoder, loaded as `unseen data build` loads it
    (once per process)."""
    from unseen.data.class_semantics import load_text_encoder

    key = (encoder, str(device))
    if key not in _ENCODERS:
        _ENCODERS[key] = load_text_encoder(encoder, device)[0]
    return np.asarray(_ENCODERS[key].encode(texts), np.float64)


# ----------------------------------------------------------------------------- parsing

def parse_add_class(text: str) -> AddedClass:
    """`"okapi: a forest giraffe ..."` -> AddedClass("okapi", "a forest giraffe ..."); a bare
    name (no colon) is a class without a description (for prompt-based models)."""
    name, sep, description = text.partition(":")
    name = name.strip()
    if not name:
        raise input_error("option '--add-class'", None, "'NAME: DESCRIPTION' or 'NAME'",
                          repr(text))
    return AddedClass(name, description.strip() or None if sep else None,
                      source=f"option '--add-class {text}'")


def read_added_classes(path: str | Path) -> list[AddedClass]:
    """Added classes from a descriptions file in the formats `unseen data build --descriptions`
    reads (.json / .jsonl / .txt) or a .csv / .tsv table."""
    from unseen.data.class_semantics import read_descriptions

    path = Path(path)
    where = f"option '--add-classes' file {path}"
    if not path.is_file():
        raise input_error(where, None, "a readable file", "no such file")
    suffix = path.suffix.lower()
    if suffix in (".json", ".jsonl", ".txt"):
        return [AddedClass(name, text, source=str(path))
                for name, text in read_descriptions(path).items()]
    if suffix not in (".csv", ".tsv"):
        raise input_error(where, "extension", ".json, .jsonl, .txt, .csv or .tsv", repr(suffix))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise input_error(where, None, "a UTF-8 text file", str(error)) from None
    return _read_table(text, "\t" if suffix == ".tsv" else ",", str(path))


def _read_table(text: str, delimiter: str, path: str) -> list[AddedClass]:
    rows = list(csv.reader(text.splitlines(), delimiter=delimiter))
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        raise input_error(path, None, "a header row with a 'class' column", "an empty file")
    header = [cell.strip() for cell in rows[0]]
    if "class" not in header:
        raise input_error(path, "header", "a 'class' column", str(header[:6]))
    class_column = header.index("class")
    text_column = header.index("description") if "description" in header else None
    value_columns = [i for i in range(len(header)) if i not in (class_column, text_column)]
    classes = []
    for number, row in enumerate(rows[1:], start=2):
        where = f"{path}: line {number}"
        if len(row) != len(header):
            raise input_error(where, None, f"{len(header)} columns", str(len(row)))
        values = {}
        for i in value_columns:
            try:
                values[header[i]] = float(row[i])
            except ValueError:
                raise input_error(where, header[i], "a number", repr(row[i])) from None
            if not math.isfinite(values[header[i]]):
                raise input_error(where, header[i], "a finite number", row[i])
        description = row[text_column].strip() if text_column is not None else ""
        classes.append(AddedClass(row[class_column].strip(), description or None,
                                  values or None, source=where))
    return classes


def merge_added_classes(classes: list[AddedClass]) -> list[AddedClass]:
    """One entry per name: a text from one source and an attribute row from another combine;
    the same field given twice is an error."""
    merged: dict[str, AddedClass] = {}
    for item in classes:
        if not item.name:
            raise input_error(item.source, "class", "a class name", "an empty name")
        if item.name not in merged:
            merged[item.name] = AddedClass(item.name, item.description, item.attributes,
                                           item.source)
            continue
        known = merged[item.name]
        for key in ("description", "attributes"):
            if getattr(item, key) is not None:
                if getattr(known, key) is not None:
                    raise input_error(item.source, f"class '{item.name}'",
                                      f"one {key} per added class",
                                      f"a second one (first from {known.source})")
                setattr(known, key, getattr(item, key))
    return list(merged.values())
