"""A deterministic synthetic benchmark in seconds, for tests and quick experiments.

Class semantics are random non-negative vectors; each class's features are a fixed random
non-linear map of its semantics plus noise, so semantics really predict features and a
method that transfers knowledge beats chance on the unseen classes.
"""

from __future__ import annotations

import numpy as np

from unseen.data.benchmark import Benchmark


def synthetic_benchmark(num_classes: int = 12, num_unseen: int = 4, images_per_class: int = 40,
                        feature_dim: int = 64, semantic_dim: int = 16, noise: float = 0.3,
                        test_seen_fraction: float = 0.2, seed: int = 0,
                        name: str = "synthetic") -> Benchmark:
    """Build a `Benchmark` whose splits follow the xlsa17 proposed-split structure."""
    rng = np.random.default_rng(seed)
    raw = rng.random((num_classes, semantic_dim)) ** 2
    semantics = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    projection = rng.normal(0.0, 1.0, (semantic_dim, feature_dim))
    prototypes = np.maximum(semantics @ projection * 3.0, 0.0) + 0.1
    labels = np.repeat(np.arange(num_classes), images_per_class)
    features = prototypes[labels] + noise * rng.normal(0.0, 1.0, (labels.size, feature_dim))
    features = np.maximum(features, 0.0).astype(np.float32)

    unseen = np.sort(rng.choice(num_classes, size=num_unseen, replace=False))
    is_unseen_image = np.isin(labels, unseen)
    test_unseen = np.flatnonzero(is_unseen_image)
    seen_rows = np.flatnonzero(~is_unseen_image)
    held_out = rng.random(seen_rows.size) < test_seen_fraction
    return Benchmark(
        name=name, features=features, labels=labels.astype(np.int64),
        semantics=semantics.astype(np.float32),
        class_names=[f"class_{c:03d}" for c in range(num_classes)],
        trainval_idx=seen_rows[~held_out].astype(np.int64),
        test_seen_idx=seen_rows[held_out].astype(np.int64),
        test_unseen_idx=test_unseen.astype(np.int64),
        image_files=[f"synthetic/class_{c:03d}/{i:05d}.jpg" for i, c in enumerate(labels)],
        original_semantics=(raw * 100).astype(np.float32),
        attribute_names=[f"attribute_{a:02d}" for a in range(semantic_dim)],
        source={"generator": "unseen.data.synthetic", "seed": seed},
    )
