"""Shared by the export / predict / added-class tests: a small embedded `animals` set (built
once per test process), a copy without one class, and its pictures written as PNG files."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from unseen.data.benchmark import Benchmark

PER_CLASS = 30
_CACHE: dict[str, Path] = {}


def animals(partition: int = 0) -> Benchmark:
    """The embedded `animals` set with PER_CLASS images per class (cache built on first use)."""
    from unseen.data.embedded import build_embedded, load_embedded

    if "root" not in _CACHE:
        _CACHE["root"] = Path(tempfile.mkdtemp(prefix="unseen-animals-"))
        build_embedded("animals", _CACHE["root"], images_per_class=PER_CLASS, progress=False)
    return load_embedded("animals", partition, _CACHE["root"], PER_CLASS, progress=False)


def without_class(benchmark: Benchmark, name: str) -> Benchmark:
    """The benchmark with one class removed entirely (its images, row and description)."""
    held = benchmark.class_names.index(name)
    keep = benchmark.labels != held
    new_row = np.cumsum(keep) - 1
    relabel = np.arange(benchmark.num_classes) - (np.arange(benchmark.num_classes) > held)

    def rows(idx: np.ndarray) -> np.ndarray:
        return new_row[idx[keep[idx]]].astype(np.int64)

    source = dict(benchmark.source)
    source["descriptions"] = [d for c, d in enumerate(source["descriptions"]) if c != held]
    return Benchmark(
        name=benchmark.name, features=benchmark.features[keep],
        labels=relabel[benchmark.labels[keep]].astype(np.int64),
        semantics=np.delete(benchmark.semantics, held, axis=0),
        class_names=[n for n in benchmark.class_names if n != name],
        trainval_idx=rows(benchmark.trainval_idx), test_seen_idx=rows(benchmark.test_seen_idx),
        test_unseen_idx=rows(benchmark.test_unseen_idx), source=source)


def write_pngs(benchmark: Benchmark, rows: np.ndarray, directory: Path) -> list[str]:
    """The pictures of `rows` as PNG files (as a user would pass them to `unseen predict`)."""
    from PIL import Image

    from unseen.data.embedded import load_embedded_images

    images = load_embedded_images(benchmark)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for row in rows:
        path = directory / f"{benchmark.class_names[benchmark.labels[row]]}-{row}.png"
        Image.fromarray(np.asarray(images[row])).save(path)
        paths.append(str(path))
    return paths
