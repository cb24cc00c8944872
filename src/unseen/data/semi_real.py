"""Semi-real benchmarks: REAL class semantics and split structure, generated features.

Users rarely have `res101.mat` in a test environment, but the real `att_splits.mat` files
(class semantics, class names, split sizes) are small. A semi-real benchmark keeps from the
file: the semantic matrix, the class names, the number of seen and unseen classes and the
trainval / test_seen / test_unseen proportions; it generates the image features with a fixed
random two-layer network of the class semantics plus a class-specific deviation that the
semantics do not explain, plus per-image noise. So it is as hard as the real semantic
geometry makes it (which classes look alike), not as the real images do.

The real files do not record which class each image index belongs to (that is in the absent
`res101.mat`), so the unseen classes are the published ones where known (AWA1/AWA2, from the
xlsa17 class lists) and otherwise a fixed seeded choice of the published number.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from unseen.data.benchmark import Benchmark
from unseen.data.matfile import load_mat
from unseen.errors import UnseenInputError

# Published unseen (test) classes where we know them by name; counts for the others.
AWA_UNSEEN = ("bat", "blue+whale", "bobcat", "dolphin", "giraffe", "horse", "rat", "seal",
              "sheep", "walrus")
UNSEEN_COUNTS = {"AWA1": 10, "AWA2": 10, "CUB": 50, "SUN": 72, "APY": 12, "FLO": 20}
DEFAULT_IMAGES_SCALE = 1.0


def parse_semi_real_name(spec: str) -> tuple[str, float]:
    """`PATH` or `PATH?scale=S` -> (PATH, S); a clear error for anything else after `?`."""
    path, _, query = spec.partition("?")
    if not query:
        return path, DEFAULT_IMAGES_SCALE
    key, _, value = query.partition("=")
    try:
        scale = float(value)
    except ValueError:
        scale = -1.0
    if key != "scale" or not scale > 0:
        raise UnseenInputError(
            f"semi-real:{spec}: expected `semi-real:PATH` or `semi-real:PATH?scale=S` with "
            f"S > 0 (the fraction of the real number of images), found `?{query}`")
    return path, scale


def semi_real_benchmark(splits_path: str | os.PathLike, name: str | None = None,
                        images_scale: float = DEFAULT_IMAGES_SCALE, feature_dim: int = 512,
                        class_deviation: float = 1.5, noise: float = 1.0,
                        seed: int = 0) -> Benchmark:
    """A benchmark with the real semantics of `splits_path` and generated features.

    `images_scale` scales the real split sizes (1.0: as many images as the real file, 0.1: 10 %,
    at least 2 per class). The default deviation and noise were set so that ESZSL's ZSL top-1
    on semi-real AWA2 (57.0 % at scale 1.0, 55.8 % at 0.1) is near its published value on the
    real features (58.6 %, Xian et al. 2018).
    """
    path = Path(splits_path)
    name = name or path.parent.name
    mat = load_mat(path)
    semantics = np.asarray(mat["att"], np.float64).T  # [C, A]
    num_classes = semantics.shape[0]
    names = [str(n) for n in mat.get("allclasses_names", [])] or [
        f"class_{c + 1:03d}" for c in range(num_classes)]
    rng = np.random.default_rng(seed)
    unseen = _unseen_classes(name, names, rng)
    seen = np.setdiff1d(np.arange(num_classes), unseen)
    sizes = {key: max(int(round(np.asarray(mat[f"{key}_loc"]).size * images_scale)), 1)
             for key in ("trainval", "test_seen", "test_unseen")}
    per_seen = max((sizes["trainval"] + sizes["test_seen"]) // seen.size, 2)
    per_unseen = max(sizes["test_unseen"] // unseen.size, 2)
    counts = np.where(np.isin(np.arange(num_classes), unseen), per_unseen, per_seen)
    labels = np.repeat(np.arange(num_classes), counts)
    features = _generate_features(semantics, labels, feature_dim, class_deviation, noise, rng)

    test_seen_share = sizes["test_seen"] / max(sizes["trainval"] + sizes["test_seen"], 1)
    is_unseen = np.isin(labels, unseen)
    seen_rows = np.flatnonzero(~is_unseen)
    held_out = rng.random(seen_rows.size) < test_seen_share
    # Keep at least one trainval image per seen class.
    first_of_class = np.unique(labels[seen_rows], return_index=True)[1]
    held_out[first_of_class] = False
    original = mat.get("original_att")
    return Benchmark(
        name=f"{name}-semi-real", features=features, labels=labels.astype(np.int64),
        semantics=semantics.astype(np.float32), class_names=names,
        trainval_idx=seen_rows[~held_out].astype(np.int64),
        test_seen_idx=seen_rows[held_out].astype(np.int64),
        test_unseen_idx=np.flatnonzero(is_unseen).astype(np.int64),
        original_semantics=None if original is None else np.asarray(original, np.float32).T,
        side_information="sent" if path.name.startswith("sent") else "att",
        source={"generator": "unseen.data.semi_real", "splits_file": str(path), "seed": seed,
                "images_scale": images_scale, "feature_dim": feature_dim,
                "unseen_rule": "published names" if name in ("AWA1", "AWA2") else "seeded choice"},
    )


def _unseen_classes(name: str, names: list[str], rng: np.random.Generator) -> np.ndarray:
    if name.upper() in ("AWA1", "AWA2"):
        return np.sort(np.flatnonzero(np.isin(names, AWA_UNSEEN)))
    count = UNSEEN_COUNTS.get(name.upper(), max(len(names) // 5, 1))
    return np.sort(rng.choice(len(names), size=count, replace=False))


def _generate_features(semantics: np.ndarray, labels: np.ndarray, feature_dim: int,
                       class_deviation: float, noise: float,
                       rng: np.random.Generator) -> np.ndarray:
    """ReLU features like pooled CNN activations: f(a_c) + deviation_c + noise, clipped at 0."""
    centred = (semantics - semantics.mean(0)) / (semantics.std(0) + 1e-8)
    hidden_dim = 2 * feature_dim
    first = rng.normal(0, 1 / np.sqrt(centred.shape[1]), (centred.shape[1], hidden_dim))
    second = rng.normal(0, 1 / np.sqrt(hidden_dim), (hidden_dim, feature_dim))
    prototypes = np.tanh(centred @ first) @ second
    prototypes += class_deviation * rng.normal(0, prototypes.std(), prototypes.shape)
    images = prototypes[labels] + noise * prototypes.std() * rng.normal(
        0, 1, (labels.size, feature_dim))
    return np.maximum(images + prototypes.std(), 0.0).astype(np.float32)
