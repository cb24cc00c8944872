"""Class semantics for a built data set: attribute tables, encoded descriptions, encoded prompts.

Each source gives one block [C, d] in the image classes' order; one block is used with its rows
L2-normalised (the xlsa17 `att` convention), several are concatenated with each block's rows
L2-normalised first, so that no block outweighs another by its scale or dimension.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from unseen.data.images import read_class_attributes_csv
from unseen.errors import UnseenInputError, input_error

DEFAULT_TEXT_ENCODER = "minilm"  # the packaged all-MiniLM-L6-v2 (unseen.text.sentence_encoder)
DEFAULT_PROMPT = "a photo of a {}."
COMBINE_SINGLE = "single block, rows L2-normalised"
COMBINE_CONCAT = "concatenate, each block L2-normalised"


@dataclass
class ClassSemantics:
    """`att` [C, K] (what methods use), `original` [C, K] (raw values), and their provenance."""

    att: np.ndarray
    original: np.ndarray
    blocks: list[dict]
    combine: str
    attribute_names: list[str] | None = None
    descriptions: dict[str, str] | None = None
    encoder: dict | None = field(default=None)


def _match_classes(source: str, found: list[str], classes: list[str]) -> list[int]:
    """Rows of `found` in the order of `classes`; exit-2 errors for a class missing either way."""
    missing = [name for name in classes if name not in found]
    extra = [name for name in found if name not in classes]
    if missing:
        raise input_error(source, "class", "one entry for every image class",
                          f"none for {missing[:5]}" + (" ..." if len(missing) > 5 else ""))
    if extra:
        raise input_error(source, "class", "only classes that have images",
                          f"{extra[:5]} without images" + (" ..." if len(extra) > 5 else ""))
    return [found.index(name) for name in classes]


def read_attributes(path: Path, classes: list[str]) -> tuple[np.ndarray, list[str]]:
    """(values float64 [C, A] in `classes` order, attribute names) from a CSV/TSV table."""
    names, attribute_names, values = read_class_attributes_csv(Path(path))
    return values[_match_classes(str(path), names, classes)], attribute_names


def read_descriptions(path: Path) -> dict[str, str]:
    """{class: text} from `.json` ({class: text}), `.jsonl` ({"class", "text"} per line) or
    `.txt` (`class: text` per line)."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise input_error(source, None, "a descriptions file (.json, .jsonl or .txt)",
                          "no such file")
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8-sig")
    pairs: list[tuple[str, object]] = []
    if suffix == ".json":
        try:
            pairs = json.loads(text, object_pairs_hook=list)
        except json.JSONDecodeError as error:
            raise input_error(source, None, "a JSON object {class: text}", str(error)) from None
        if not isinstance(pairs, list):
            raise input_error(source, None, "a JSON object {class: text}",
                              type(pairs).__name__)
    elif suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = dict(json.loads(line))
            except (json.JSONDecodeError, TypeError, ValueError):
                raise input_error(source, f"line {number}", 'a JSON object {"class": ..., '
                                  '"text": ...}', repr(line[:60])) from None
            if "class" not in record or "text" not in record:
                raise input_error(source, f"line {number}", "keys 'class' and 'text'",
                                  str(sorted(record)))
            pairs.append((record["class"], record["text"]))
    elif suffix == ".txt":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            name, sep, description = line.partition(":")
            if not sep:
                raise input_error(source, f"line {number}", "'class: text'", repr(line[:60]))
            pairs.append((name, description))
    else:
        raise input_error(source, None, "a .json, .jsonl or .txt descriptions file",
                          f"the extension {suffix!r}")
    descriptions: dict[str, str] = {}
    for name, description in pairs:
        name = str(name).strip()
        if not isinstance(description, str) or not description.strip():
            raise input_error(source, f"class {name!r}", "a non-empty text", repr(description))
        if name in descriptions:
            raise input_error(source, "class", "each class once", f"{name!r} twice")
        descriptions[name] = description.strip()
    if not descriptions:
        raise input_error(source, None, "one description per class", "none")
    return descriptions


def text_encoder_id(spec: str | None) -> str:
    return DEFAULT_TEXT_ENCODER if spec in (None, "", DEFAULT_TEXT_ENCODER) else str(spec)


def load_text_encoder(spec: str | None, device: str = "cpu"):
    """(SentenceEncoder, provenance dict) for "minilm", a local transformers directory or a hub
    id already in the local hub cache (never downloaded)."""
    from unseen.text.sentence_encoder import ENCODER_NAME, SentenceEncoder

    encoder_id = text_encoder_id(spec)
    if encoder_id == DEFAULT_TEXT_ENCODER:
        return SentenceEncoder(device=device), {"id": encoder_id, "name": ENCODER_NAME}
    try:
        encoder = SentenceEncoder(encoder_id, device=device)
    except (OSError, ValueError, KeyError) as error:
        raise input_error(f"option '--text-encoder' ({encoder_id})", None,
                          "a local transformers text model directory or a hub id in the local "
                          "cache (with its tokenizer)", f"{type(error).__name__}: "
                          f"{str(error).splitlines()[0][:200]}") from None
    # Tokenizers saved without a length limit report ~1e30; the position table is the limit.
    positions = getattr(encoder.model.config, "max_position_embeddings", None)
    if positions and encoder.max_length > positions:
        encoder.max_length = int(positions)
    return encoder, {"id": encoder_id, "name": encoder_id}


def _normalise_rows(values: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(values, axis=1, keepdims=True)
    return values / np.maximum(norms, 1e-12)


def build_class_semantics(classes: list[str], attributes: Path | None = None,
                          descriptions: Path | None = None, prompt: str | None = None,
                          text_encoder: str | None = None, device: str = "cpu",
                          ) -> ClassSemantics:
    """The semantics of `classes` from any of attributes, descriptions and a prompt template
    (the prompt alone when neither file is given)."""
    if prompt is not None and "{}" not in prompt:
        raise input_error("option '--prompt'", None, "a template with '{}' for the class name",
                          repr(prompt))
    if attributes is None and descriptions is None and prompt is None:
        prompt = DEFAULT_PROMPT
    blocks: list[tuple[dict, np.ndarray]] = []
    attribute_names = None
    texts: dict[str, str] | None = None
    if attributes is not None:
        values, attribute_names = read_attributes(Path(attributes), classes)
        blocks.append(({"kind": "attributes", "source": Path(attributes).name,
                        "dim": int(values.shape[1])}, values))
    encoder = provenance = None
    if descriptions is not None:
        read = read_descriptions(Path(descriptions))
        order = _match_classes(str(descriptions), list(read), classes)
        values = list(read.values())
        texts = {classes[i]: values[row] for i, row in enumerate(order)}
        encoder, provenance = load_text_encoder(text_encoder, device)
        encoded = _encode(encoder, [texts[name] for name in classes], str(descriptions))
        blocks.append(({"kind": "descriptions", "source": Path(descriptions).name,
                        "dim": int(encoded.shape[1]), "encoder": provenance["id"],
                        "pooling": "mean", "normalise": "l2"}, encoded))
    if prompt is not None:
        if encoder is None:
            encoder, provenance = load_text_encoder(text_encoder, device)
        sentences = [prompt.replace("{}", name.replace("_", " ")) for name in classes]
        encoded = _encode(encoder, sentences, "option '--prompt'")
        blocks.append(({"kind": "prompt", "prompt": prompt, "dim": int(encoded.shape[1]),
                        "encoder": provenance["id"], "pooling": "mean", "normalise": "l2"},
                       encoded))
    original = np.concatenate([values for _, values in blocks], axis=1)
    att = np.concatenate([_normalise_rows(values) for _, values in blocks], axis=1)
    return ClassSemantics(att=att.astype(np.float32), original=original.astype(np.float32),
                          blocks=[meta for meta, _ in blocks],
                          combine=COMBINE_SINGLE if len(blocks) == 1 else COMBINE_CONCAT,
                          attribute_names=attribute_names, descriptions=texts,
                          encoder=provenance)


def _encode(encoder, sentences: list[str], source: str) -> np.ndarray:
    encoded = _normalise_rows(encoder.encode(sentences).astype(np.float64))
    if not np.isfinite(encoded).all():
        raise UnseenInputError(f"{source}: expected finite text embeddings, found NaN/Inf")
    return encoded
