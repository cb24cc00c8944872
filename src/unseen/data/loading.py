"""One entry point to load any data set by name: embedded ones (built on first use) or files."""

from __future__ import annotations

import os

from unseen.data.benchmark import Benchmark
from unseen.data.datasets import EMBEDDED_LOADERS, load_benchmark

# `semi-real:PATH/att_splits.mat[?scale=S]`: real semantics and split structure, generated
# features, S times the real number of images (default: semi_real.DEFAULT_IMAGES_SCALE).
SEMI_REAL_PREFIX = "semi-real:"


def register_embedded() -> None:
    """Register the embedded data sets (their modules import torch/transformers lazily)."""
    if EMBEDDED_LOADERS:
        return
    from unseen.data.embedded import EMBEDDED_NAMES, load_embedded
    from unseen.data.rendered import load_rendered

    for name in EMBEDDED_NAMES:
        EMBEDDED_LOADERS[name.lower()] = lambda _name=name, **kw: load_embedded(_name, **kw)
    EMBEDDED_LOADERS["shapes"] = load_rendered


def is_embedded(name: str) -> bool:
    register_embedded()
    return name.lower() in EMBEDDED_LOADERS


def load_dataset(name: str, data_root: str | os.PathLike | None = None,
                 partition: int = 0) -> Benchmark:
    """Load `name`; `partition` picks the seen/unseen partition of an embedded data set and is
    ignored for the fixed xlsa17 proposed splits."""
    if name.startswith(SEMI_REAL_PREFIX):
        from unseen.data.semi_real import parse_semi_real_name, semi_real_benchmark

        path, scale = parse_semi_real_name(name[len(SEMI_REAL_PREFIX):])
        return semi_real_benchmark(path, images_scale=scale, seed=0)
    if is_embedded(name):
        return load_benchmark(name, data_root, partition=partition)
    return load_benchmark(name, data_root)
