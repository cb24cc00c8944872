"""`unseen predict MODEL_DIR|RUN_DIR IMAGE...`: top-k classes for new images.

A run directory is first turned into an in-memory `GZSLModel` (as `unseen export` would write
it), so that both kinds of directory predict through one code path. Feature methods extract
features with the backbone the data set recorded (embedded sets: EfficientNet-Lite0 at their
resolution; built sets: their manifest's backbone) and scale them with the training rows'
MinMax statistics; image methods (DUET) preprocess pixels with their own backbone's processor.
`--add-class` / `--add-classes` add classes described only by text or an attribute row.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from unseen.class_semantics import AddedClass
from unseen.errors import input_error
from unseen.export import CONFIG_FILE, FORMAT, GZSLModel


def load_model(directory: str | Path, seed: int | None = None, load_benchmark=None
               ) -> GZSLModel:
    """A model directory (`unseen export`) or a run directory (`unseen train`) as a model."""
    root = Path(directory)
    path = root / CONFIG_FILE
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise input_error(str(root), None, "a model directory or a run directory (with "
                          f"{CONFIG_FILE})", "no such file" if not root.exists()
                          else f"no {CONFIG_FILE}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise input_error(str(path), None, "JSON", f"a parse error ({error})") from None
    if isinstance(config, dict) and config.get("format") == FORMAT:
        if seed is not None:
            raise input_error("option '--seed'", None, "a run directory (a model directory "
                              "holds one seed's model)", f"the model directory {root}")
        return GZSLModel.from_pretrained(root)
    if isinstance(config, dict) and "spec" in config:
        return GZSLModel.from_run(root, seed, load_benchmark)
    raise input_error(str(path), "format", f"{FORMAT!r} (a model directory) or a run's config",
                      repr(config.get("format") if isinstance(config, dict) else config))


def predict(directory: str | Path, images: list[str], top_k: int = 5, seed: int | None = None,
            added_classes: list[AddedClass] | None = None) -> list[dict[str, Any]]:
    """Calibrated top-k classes for each image; `added_classes` join the candidates first."""
    model = load_model(directory, seed)
    if added_classes:
        model.add_classes(added_classes)
    return model.predict(images, top_k)


def format_predictions(predictions: list[dict[str, Any]]) -> str:
    """Per image: its path, then one line per class: rank, class, score, [seen|unseen|added]."""
    lines = []
    for item in predictions:
        lines.append(item["image"])
        for rank, entry in enumerate(item["top"], start=1):
            lines.append(f"  {rank}. {entry['class']:<24s} {entry['score']:9.4f}  "
                         f"[{entry['kind']}]")
    return "\n".join(lines)
