"""The rendered `shapes` benchmark: classes, partitions, xlsa17 files, groups JSON, manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unseen.data.images import DESCRIPTOR_DIM, resolve_image_paths
from unseen.data.matfile import load_mat
from unseen.data.rendered import (
    ATTRIBUTE_NAMES,
    GROUPS,
    NUM_CLASSES,
    NUM_PARTITIONS,
    NUM_UNSEEN,
    build_rendered_benchmark,
    class_binary,
    load_rendered,
    render_image,
    verify_rendered,
)
from unseen.errors import UnseenInputError

PER_CLASS = 5


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_rendered_benchmark(tmp_path_factory.mktemp("rendered"), PER_CLASS,
                                    progress=False)


def _binary(benchmark) -> np.ndarray:
    original = benchmark.original_semantics
    return (original > original.mean(axis=0)).astype(np.uint8)  # DUET's bin, spec 1.2


def test_classes_are_distinct_one_value_per_group(root: Path) -> None:
    benchmark = load_rendered(0, root.parent, PER_CLASS, progress=False)
    binary = _binary(benchmark)
    assert binary.shape == (NUM_CLASSES, len(ATTRIBUTE_NAMES))
    assert np.unique(binary, axis=0).shape[0] == NUM_CLASSES
    start = 0
    for values in GROUPS.values():
        assert (binary[:, start:start + len(values)].sum(axis=1) == 1).all()
        start += len(values)
    splits = load_mat(root / "partition_0" / "att_splits.mat")
    assert np.array_equal(splits["binary_att"].T, binary)
    for name, row in zip(benchmark.class_names, binary, strict=True):
        assert set(name.replace("_on_", "_").split("_")) == \
            {ATTRIBUTE_NAMES[a] for a in np.flatnonzero(row)}


def test_partitions_hold_out_new_combinations_of_seen_values(root: Path) -> None:
    unseen_sets = []
    for partition in range(NUM_PARTITIONS):
        benchmark = load_rendered(partition, root.parent, PER_CLASS, progress=False)
        binary = _binary(benchmark)
        seen, unseen = benchmark.seen_classes, benchmark.unseen_classes
        assert unseen.size == NUM_UNSEEN and seen.size == NUM_CLASSES - NUM_UNSEEN
        assert (binary[seen].sum(axis=0) >= 1).all()  # every value shown by a seen class
        seen_rows = {tuple(row) for row in binary[seen]}
        assert not any(tuple(row) in seen_rows for row in binary[unseen])
        assert sorted(benchmark.test_unseen_idx.tolist()) == \
            np.flatnonzero(np.isin(benchmark.labels, unseen)).tolist()
        assert benchmark.source["partition"] == partition
        assert benchmark.source["unseen_class_names"] == [benchmark.class_names[c] for c in unseen]
        unseen_sets.append(tuple(unseen))
    assert len(set(unseen_sets)) == NUM_PARTITIONS


def test_files_load_back_with_the_right_shapes(root: Path) -> None:
    benchmark = load_rendered(1, root.parent, PER_CLASS, progress=False)
    n = NUM_CLASSES * PER_CLASS
    assert benchmark.features.shape == (n, DESCRIPTOR_DIM)
    assert benchmark.semantics.shape == (NUM_CLASSES, len(ATTRIBUTE_NAMES))
    np.testing.assert_allclose(np.linalg.norm(benchmark.semantics, axis=1), 1.0, rtol=1e-5)
    assert benchmark.attribute_names == ATTRIBUTE_NAMES
    assert benchmark.trainval_idx.size + benchmark.test_seen_idx.size + \
        benchmark.test_unseen_idx.size == n
    image_root = Path(benchmark.source["image_root"])
    assert benchmark.source["duet_style"] == "generic"
    assert resolve_image_paths(benchmark, image_root)[0] == image_root / benchmark.image_files[0]
    for relative in benchmark.image_files[::37]:
        with Image.open(image_root / relative) as picture:
            assert picture.size == (64, 64) and picture.mode == "RGB"
    # The descriptor features tell classes apart (class means are not all alike).
    means = np.stack([benchmark.features[benchmark.labels == c].mean(0)
                      for c in range(NUM_CLASSES)])
    distances = np.linalg.norm(means[:, None] - means[None], axis=-1)
    assert distances[~np.eye(NUM_CLASSES, dtype=bool)].min() > 0.05


def test_groups_json_covers_every_attribute_in_group_order(root: Path) -> None:
    benchmark = load_rendered(0, root.parent, PER_CLASS, progress=False)
    groups = json.loads(Path(benchmark.source["attribute_groups"]).read_text())
    assert sorted(groups, key=int) == [str(a) for a in range(len(ATTRIBUTE_NAMES))]
    ordered = list(dict.fromkeys(groups[str(a)] for a in range(len(ATTRIBUTE_NAMES))))
    assert ordered == list(GROUPS)
    assert [groups[str(ATTRIBUTE_NAMES.index(v))] for v in ("star", "dotted", "dark")] == \
        ["shape", "pattern", "background"]


def test_cache_is_reused_and_tampering_is_detected(root: Path, tmp_path: Path) -> None:
    stamp = (root / "manifest.json").stat().st_mtime_ns
    assert build_rendered_benchmark(root.parent, PER_CLASS, progress=False) == root
    assert (root / "manifest.json").stat().st_mtime_ns == stamp
    small = build_rendered_benchmark(tmp_path, 2, num_partitions=1, progress=False)
    picture = next((small / "images").rglob("*.png"))
    Image.new("RGB", (64, 64)).save(picture)
    with pytest.raises(UnseenInputError, match=picture.name):
        verify_rendered(small)
    with pytest.raises(UnseenInputError, match="partition"):
        load_rendered(1, tmp_path, 2, num_partitions=1, progress=False)


def test_rendering_is_deterministic_and_shows_the_attributes() -> None:
    combo = np.array([0, 0, 0, 1, 0])  # large red solid circle on light
    first = render_image(combo, np.random.default_rng(3))
    assert np.array_equal(first, render_image(combo, np.random.default_rng(3)))
    red = (first[..., 0].astype(int) - first[..., 2]) > 100
    assert red.mean() > 0.15  # a large red shape covers a good part of the picture
    dark_blue = render_image(np.array([1, 2, 0, 0, 1]), np.random.default_rng(3))
    assert dark_blue.mean() < first.mean()
    assert class_binary(np.array([[0, 0, 0, 1, 0]])).tolist() == \
        [[1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0]]
