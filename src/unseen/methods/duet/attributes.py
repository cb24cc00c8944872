"""DUET's attribute vocabulary: surface words, aspect groups, the binary class-attribute matrix,
the feature-to-sequence text (FST, `matrix2text`) and the fixed per-dataset templates.

Sources, in order of precedence (spec §1.2-1.3, §1.6):
- names: `attributes_txt` (CUB `attributes.txt` lines `1 has_bill_shape::curved_(up_or_down)`,
  AWA2 `predicates.txt` lines `1\tblack`, or one bare name per line), else
  `benchmark.attribute_names`;
- groups: `groups_json` (`attributeindex2prompt.json`: index -> group), else the CUB-style
  `has_<group>::<value>` prefix of the names, else (generic style only) one group "attributes";
- surface words: `mapping_json` (index -> word) overrides the cleaned name.
Paths left as None are taken from `benchmark.source` keys `attribute_groups`,
`attribute_mapping` and `attributes_txt` when present.

Binary matrix: bin[c, a] = 1 iff original_att[c, a] > mean over classes of original_att[:, a]
(strict >, the reading of the authors' answer in issue #4); `semantics` when the benchmark has no
`original_att`. AWA2's `original_att` holds -1 for missing values; they enter the mean as stored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unseen.data.benchmark import Benchmark
from unseen.errors import input_error

STYLES = ("cub", "awa2", "sun", "generic")

# The reference's fixed templates (`main.py::prompt_text`), restated verbatim, typos included:
# CUB's "underparts color:" lacks a space, AWA2 spells "behavior" and puts habit last, SUN keeps
# the authors' "meterial".
_CUB_GROUPS = (
    "bill shape", "wing color", "upperparts color", "underparts color", "breast pattern",
    "back color", "tail shape", "upper tail color", "head pattern", "breast color",
    "throat color", "eye color", "bill length", "forehead color", "under tail color",
    "nape color", "belly color", "wing shape", "size", "shape", "back pattern", "tail pattern",
    "belly pattern", "primary color", "leg color", "bill color", "crown color", "wing pattern",
)
_AWA2_GROUPS = (
    "color", "pattern", "texture", "shape", "has part", "behaviour", "character", "limb",
    "habit", "diet", "role", "habitat",
)
_SUN_GROUPS = (
    "transportation function", "environment function", "technical function",
    "coarse meterial", "specific meterial", "natural meterial", "light", "surface",
    "temperature", "origin property", "area", "horizon", "direction", "feeling",
)
STYLE_GROUPS = {"cub": _CUB_GROUPS, "awa2": _AWA2_GROUPS, "sun": _SUN_GROUPS}
FIXED_TEMPLATES = {
    "cub": " :  | ".join(_CUB_GROUPS).replace("underparts color :", "underparts color:")
    + " : .",
    "awa2": "color :  | pattern :  | texture :  | shape :  | has part :  | behavior:  | "
    "character:  | limb:  | diet:  | role:  | habitat:  | habit: .",
    "sun": " :  | ".join(_SUN_GROUPS) + " : .",
}


@dataclass
class AttributeVocabulary:
    """Everything DUET's text side needs to know about the attributes of one data set."""

    words: list[str]  # surface word per attribute (cleaned names + mapping.json)
    groups: list[str]  # group name per attribute
    group_order: list[str]  # groups in first-appearance order (text order)
    binary: np.ndarray  # [C, A] uint8 class attributes (original_att > per-attribute mean)
    template: str  # the fixed per-dataset template text (spec §1.6)
    style: str  # "cub" | "awa2" | "sun" | "generic"
    # cleaned names before mapping.json: the reference measures CUB pruning lengths with these
    unmapped_words: list[str] | None = None

    @property
    def num_attributes(self) -> int:
        return len(self.words)

    @property
    def group_index(self) -> np.ndarray:
        """int64 [A]: rank of each attribute's group in `group_order`."""
        rank = {g: i for i, g in enumerate(self.group_order)}
        return np.array([rank[g] for g in self.groups], dtype=np.int64)


def binary_attributes(benchmark: Benchmark) -> np.ndarray:
    """uint8 [C, A]: 1 where a class's attribute strictly exceeds that attribute's class mean."""
    values = benchmark.original_semantics
    if values is None:
        values = benchmark.semantics
    values = np.asarray(values, dtype=np.float64)
    return (values > values.mean(axis=0, keepdims=True)).astype(np.uint8)


def _read_names(path: Path, expected: int) -> list[str]:
    names = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.strip().split(None, 1)
        if parts:  # "<index> <name>" (CUB, AWA2 files) or a bare name
            names.append(parts[1] if len(parts) == 2 and parts[0].isdigit() else line.strip())
    if len(names) != expected:
        raise input_error(str(path), None, f"{expected} attribute names (one per line)",
                          f"{len(names)}")
    return names


def _read_index_json(path: Path, expected: int, *, complete: bool) -> dict[int, str]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise input_error(str(path), None, "a JSON object of attribute index -> string",
                          f"unreadable file ({error})") from error
    if not isinstance(raw, dict):
        raise input_error(str(path), None, "a JSON object of attribute index -> string",
                          type(raw).__name__)
    table: dict[int, str] = {}
    for key, value in raw.items():
        if not str(key).isdigit() or int(key) >= expected or not isinstance(value, str):
            raise input_error(str(path), str(key),
                              f"an attribute index in 0..{expected - 1} mapped to a string",
                              repr(value))
        table[int(key)] = value
    if complete and len(table) != expected:
        raise input_error(str(path), None, f"{expected} attributes (keys 0..{expected - 1})",
                          f"{len(table)}")
    return table


def clean_name(name: str, style: str) -> str:
    """The reference's surface word for a raw name (before mapping.json)."""
    if style == "cub" or (style == "generic" and "::" in name):
        name = name.split("::", 1)[-1].replace("-", " ").replace("_", " ")
        return name.split("(")[0].strip()
    return name.strip()


def _group_from_cub_name(name: str) -> str | None:
    if "::" not in name:
        return None
    prefix = name.split("::", 1)[0]
    return prefix.removeprefix("has_").replace("_", " ").strip()


def _path(argument: Path | str | None, benchmark: Benchmark, key: str) -> Path | None:
    value = argument if argument is not None else benchmark.source.get(key)
    return Path(value).expanduser() if value else None


def load_attribute_vocabulary(benchmark: Benchmark, style: str = "generic", *,
                              groups_json: Path | None = None, mapping_json: Path | None = None,
                              attributes_txt: Path | None = None,
                              manifest_names: list[str] | None = None) -> AttributeVocabulary:
    """Read names, groups and surface words from the user's files and build the vocabulary.
    `manifest_names`: a built data set's attribute names (after the file and the benchmark's
    own names), one attribute per name, one group unless the names carry `group::value`."""
    if style not in STYLES:
        raise input_error("option 'duet_style'", None, " or ".join(STYLES), repr(style))
    count = int(benchmark.semantics.shape[1])
    groups_path = _path(groups_json, benchmark, "attribute_groups")
    mapping_path = _path(mapping_json, benchmark, "attribute_mapping")
    names_path = _path(attributes_txt, benchmark, "attributes_txt")

    names: list[str] | None = None
    if names_path is not None:
        names = _read_names(names_path, count)
    elif benchmark.attribute_names is not None or manifest_names is not None:
        names = [str(n) for n in (benchmark.attribute_names if benchmark.attribute_names
                                  is not None else manifest_names)]
        if len(names) != count:
            raise input_error(f"benchmark '{benchmark.name}'", "attribute_names",
                              f"{count} names", f"{len(names)}")
    mapping = _read_index_json(mapping_path, count, complete=False) if mapping_path else {}

    if groups_path is not None:
        by_index = _read_index_json(groups_path, count, complete=True)
        groups = [by_index[a] for a in range(count)]
    elif names is not None and all("::" in n for n in names):
        groups = [_group_from_cub_name(n) or "" for n in names]
    elif style == "generic":
        groups = ["attributes"] * count
    elif style == "cub":
        raise input_error("option 'attributes_txt'", None,
                          "CUB's attributes.txt (its names 'has_bill_shape::dagger' carry the 28 "
                          "groups; --set attributes_txt=.../CUB_200_2011/attributes.txt), or "
                          "attribute_groups=attributeindex2prompt.json", "neither given")
    else:
        raise input_error("option 'attribute_groups'", None,
                          f"an attributeindex2prompt.json (attribute index -> group) for style "
                          f"'{style}'", "none given")

    if names is None and len(mapping) < count:
        raise input_error(f"benchmark '{benchmark.name}'", "attribute names",
                          f"{count} names from attributes_txt or the benchmark",
                          f"none (mapping.json covers {len(mapping)})")
    unmapped = [clean_name(n, style) for n in names] if names is not None else \
        [mapping[a] for a in range(count)]
    words = [mapping.get(a, unmapped[a]).strip() for a in range(count)]
    empty = [a for a, w in enumerate(words) if not w]
    if empty:
        raise input_error(str(names_path or mapping_path or benchmark.name), "attribute names",
                          "a non-empty surface word per attribute",
                          f"empty words at indices {empty[:5]}")
    group_order = list(dict.fromkeys(groups))
    if style in STYLE_GROUPS and tuple(group_order) != STYLE_GROUPS[style]:
        where = str(groups_path or names_path or f"benchmark '{benchmark.name}'")
        raise input_error(where, "groups",
                          f"the {len(STYLE_GROUPS[style])} groups of the fixed '{style}' "
                          "template (or style 'generic')", f"{group_order[:6]}...")
    vocab = AttributeVocabulary(words=words, groups=groups, group_order=group_order,
                                binary=binary_attributes(benchmark), template="", style=style,
                                unmapped_words=unmapped)
    vocab.template = FIXED_TEMPLATES.get(style) or matrix2text(
        vocab, np.zeros(count, dtype=bool))
    return vocab


def fst_with_spans(vocab: AttributeVocabulary, row: np.ndarray,
                   words: list[str] | None = None) -> tuple[str, dict[int, tuple[int, int]]]:
    """FST text of a binary row and the character span [start, end) of each active word.

    Groups in `group_order`, each `"<group> : v1,v2"` (SUN: `"<group> :  v1, v2"`), empty groups
    kept as `"<group> : "`, joined by `" | "`, ending with `"."`. `words` overrides the surface
    words (the reference's CUB digit-prefixed variant).
    """
    words = vocab.words if words is None else words
    row = np.asarray(row).astype(bool)
    lead = " " if vocab.style == "sun" else ""
    members: dict[str, list[int]] = {g: [] for g in vocab.group_order}
    for a in np.flatnonzero(row).tolist():
        members[vocab.groups[a]].append(a)
    parts: list[str] = []
    spans: dict[int, tuple[int, int]] = {}
    length = 0
    for rank, group in enumerate(vocab.group_order):
        piece = ("" if rank == 0 else " | ") + group + " : "
        for k, a in enumerate(members[group]):
            piece += ("," if k else "") + lead
            start = length + len(piece)
            piece += words[a]
            spans[a] = (start, start + len(words[a]))
        parts.append(piece)
        length += len(piece)
    parts.append(".")
    return "".join(parts), spans


def matrix2text(vocab: AttributeVocabulary, row: np.ndarray) -> str:
    """The reference's FST text of one binary attribute row (spec §1.6)."""
    return fst_with_spans(vocab, row)[0]


__all__ = ["FIXED_TEMPLATES", "STYLES", "AttributeVocabulary", "binary_attributes", "clean_name",
           "fst_with_spans", "load_attribute_vocabulary", "matrix2text"]
