"""The embedded real benchmarks: sources, build, splits, cache integrity and reuse."""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from unseen.data import embedded
from unseen.data.embedded import (
    EMBEDDED_NAMES,
    MANIFEST_FILE,
    NUM_PARTITIONS,
    PARTITIONS,
    TEST_SEEN_FRACTION,
    build_embedded,
    load_embedded,
    load_embedded_images,
    verify_embedded,
)
from unseen.data.embedded_sources import (
    ANIMAL_CLASSES,
    RestrictedUnpickler,
    fashion_mnist_available,
    load_animal_mnist,
    restricted_load_array,
)
from unseen.errors import UnseenInputError
from unseen.text.class_descriptions import wordnet_available, wordnet_descriptions

PER_CLASS = 24
SHARED = Path(__file__).resolve().parents[2] / "shared"
AWA2 = SHARED / "data" / "xlsa17" / "AWA2" / "att_splits.mat"


@pytest.fixture(scope="session")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("unseen-cache")
    build_embedded("animals", directory, images_per_class=PER_CLASS, progress=False)
    return directory


@pytest.fixture(scope="session")
def animals(cache: Path):
    return load_embedded("animals", 0, cache, PER_CLASS, progress=False)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_restricted_unpickler_refuses_code_and_accepts_arrays() -> None:
    with pytest.raises(UnseenInputError, match="posix.system|os.system|refusing"):
        restricted_load_array(pickle.dumps(_Evil()), "evil.pkl")
    with pytest.raises(pickle.UnpicklingError, match="builtins.print"):
        RestrictedUnpickler(io.BytesIO(pickle.dumps({"f": print}))).load()
    array = np.arange(12, dtype=np.int64).reshape(3, 4)
    np.testing.assert_array_equal(restricted_load_array(pickle.dumps(array), "ok.pkl"), array)
    with pytest.raises(UnseenInputError, match="a pickled numpy array"):
        restricted_load_array(pickle.dumps([1, 2]), "list.pkl")


def test_animal_mnist_files_hold_10_classes_of_1000() -> None:
    raw = load_animal_mnist()
    assert raw.images.shape == (10000, 28, 28) and raw.images.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(raw.labels), np.full(10, 1000))
    assert raw.class_names == ANIMAL_CLASSES
    # Giraffes (label 6) are the narrowest silhouettes, elephants (5) the widest.
    width = np.array([(raw.images[raw.labels == c] > 0).mean() for c in range(10)])
    assert width.argmin() == ANIMAL_CLASSES.index("giraffe")
    assert width.argmax() == ANIMAL_CLASSES.index("elephant")
    with gzip.open(raw.source["files"]["labels"], "rb") as handle:
        assert b"numpy" in handle.read(200)  # really a pickle: the restricted path was needed


def test_build_has_the_documented_shapes(animals) -> None:
    n = 10 * PER_CLASS
    assert animals.features.shape == (n, 1280) and animals.features.dtype == np.float32
    assert animals.semantics.shape == (10, 384)
    np.testing.assert_allclose(np.linalg.norm(animals.semantics, axis=1), 1.0, atol=1e-5)
    assert animals.class_names == list(ANIMAL_CLASSES)
    np.testing.assert_array_equal(np.bincount(animals.labels), np.full(10, PER_CLASS))
    assert animals.image_files[0] == "bear/0000"
    assert animals.image_files[-1] == f"zebra/{PER_CLASS - 1:04d}"
    images = load_embedded_images(animals)
    assert images.shape == (n, 28, 28) and images.dtype == np.uint8
    assert np.median(images) == 255  # rendered dark on white
    source = animals.source
    assert source["backbone"] == "efficientnet-lite0" and source["resolution"] == 64
    assert source["semantic_encoder"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert source["descriptions_kind"] == "wordnet" and source["partition"] == 0  # packaged
    assert len(source["manifest_sha256"]) == 64
    assert len(list(Path(source["examples_dir"]).glob("*.png"))) == 10


@pytest.mark.skipif(not wordnet_available(), reason="Debian's wordnet-base is not installed")
def test_semantics_equal_the_embeddings_of_the_installed_wordnet(animals) -> None:
    # The packaged glosses must give exactly the data set that WordNet itself gave, so the
    # embedded benchmarks (and every figure measured on them) do not depend on the machine.
    from unseen.text.sentence_encoder import SentenceEncoder

    texts = wordnet_descriptions(ANIMAL_CLASSES)
    assert animals.source["descriptions"] == texts
    np.testing.assert_array_equal(animals.semantics, SentenceEncoder().encode(texts))


def test_splits_follow_the_fixed_partitions(cache: Path) -> None:
    unseen_sets = []
    for partition in range(NUM_PARTITIONS):
        benchmark = load_embedded("animals", partition, cache, PER_CLASS, progress=False)
        unseen = [benchmark.class_names[c] for c in benchmark.unseen_classes]
        assert unseen == sorted(PARTITIONS["animals"][partition], key=ANIMAL_CLASSES.index)
        unseen_sets.append(frozenset(unseen))
        labels = benchmark.labels
        np.testing.assert_array_equal(
            np.sort(benchmark.test_unseen_idx),
            np.flatnonzero(np.isin(labels, benchmark.unseen_classes)))
        everything = np.concatenate([benchmark.trainval_idx, benchmark.test_seen_idx,
                                     benchmark.test_unseen_idx])
        np.testing.assert_array_equal(np.sort(everything), np.arange(labels.size))
        held = np.bincount(labels[benchmark.test_seen_idx], minlength=10)[benchmark.seen_classes]
        np.testing.assert_array_equal(held, np.full(7, int(TEST_SEEN_FRACTION * PER_CLASS)))
    assert len(set(unseen_sets)) == NUM_PARTITIONS
    assert frozenset().union(*unseen_sets) == frozenset(ANIMAL_CLASSES)


def test_features_are_finite_and_separate_the_classes(animals) -> None:
    features = animals.features / np.linalg.norm(animals.features, axis=1, keepdims=True)
    assert np.isfinite(features).all() and animals.features.std(axis=0).max() > 0.1
    train, test = animals.trainval_idx, animals.test_seen_idx
    seen = animals.seen_classes
    means = np.stack([features[train][animals.labels[train] == c].mean(0) for c in seen])
    assert np.linalg.norm(means[:, None] - means[None], axis=2)[np.triu_indices(7, 1)].min() > 0.01
    predicted = seen[(features[test] @ means.T).argmax(1)]
    assert (predicted == animals.labels[test]).mean() > 0.3  # chance: 1/7


def test_text_semantics_put_related_classes_closer(animals) -> None:
    s = animals.semantics
    names = animals.class_names
    similarity = s @ s.T

    def sim(a: str, b: str) -> float:
        return float(similarity[names.index(a), names.index(b)])

    assert sim("horse", "zebra") > sim("bird", "zebra")
    assert sim("cow", "sheep") > sim("bird", "elephant")


def test_cache_is_reused_without_rebuilding(cache: Path, monkeypatch) -> None:
    directory = build_embedded("animals", cache, 2, PER_CLASS, progress=False)
    manifest = directory.parent / MANIFEST_FILE
    before = manifest.stat().st_mtime_ns

    def no_rebuild(*args, **kwargs):
        raise AssertionError("the cache was rebuilt")

    monkeypatch.setattr(embedded, "_image_content", no_rebuild)
    assert build_embedded("animals", cache, 2, PER_CLASS, progress=False) == directory
    benchmark = load_embedded("animals", 3, cache, PER_CLASS, progress=False)
    assert benchmark.source["partition"] == 3
    assert manifest.stat().st_mtime_ns == before
    assert directory.name == "partition_2" and (directory / "att_splits.mat").is_file()


def test_tampered_cache_is_detected_and_rebuilt(cache: Path, tmp_path: Path, animals,
                                               monkeypatch) -> None:
    root = build_embedded("animals", cache, 0, PER_CLASS, progress=False).parent
    copy = tmp_path / "embedded" / root.name
    shutil.copytree(root, copy, symlinks=True)
    verify_embedded(copy)
    target = copy / "partition_1" / "att_splits.mat"
    data = bytearray(target.read_bytes())
    data[-20] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(UnseenInputError, match="att_splits.mat: expected sha256"):
        verify_embedded(copy)
    # The rebuild reuses the session's encoded content (the models are tested elsewhere).
    calls = []

    def cached_content(raw, params, options):
        calls.append(params.key)
        return embedded._Content(
            load_embedded_images(animals), animals.labels, list(animals.class_names),
            animals.features, animals.semantics, None, ["..."] * 10,
            {key: animals.source[key] for key in ("backbone", "resolution", "semantic_encoder",
                                                  "descriptions_kind")})

    monkeypatch.setattr(embedded, "_image_content", cached_content)
    rebuilt = load_embedded("animals", 1, tmp_path, PER_CLASS, progress=False)
    assert calls == [root.name]
    verify_embedded(copy)  # rebuilt in place, complete again
    original = load_embedded("animals", 1, cache, PER_CLASS, progress=False)
    np.testing.assert_array_equal(rebuilt.test_seen_idx, original.test_seen_idx)
    np.testing.assert_array_equal(rebuilt.features, original.features)
    manifest = json.loads((copy / MANIFEST_FILE).read_text())
    assert set(manifest["links"]) == {f"partition_{p}/res101.mat" for p in range(NUM_PARTITIONS)}
    # A cache without its manifest (an interrupted build) is rebuilt as well.
    (copy / MANIFEST_FILE).unlink()
    load_embedded("animals", 0, tmp_path, PER_CLASS, progress=False)
    assert len(calls) == 2 and (copy / MANIFEST_FILE).is_file()


def test_unknown_names_and_options_are_refused(cache: Path) -> None:
    with pytest.raises(UnseenInputError, match="one of animals"):
        load_embedded("mnist", 0, cache)
    with pytest.raises(UnseenInputError, match="partition"):
        load_embedded("animals", NUM_PARTITIONS, cache, PER_CLASS)
    with pytest.raises(UnseenInputError, match="resolutoin"):
        load_embedded("animals", 0, cache, PER_CLASS, resolutoin=64)


def test_registered_with_load_benchmark(cache: Path) -> None:
    from unseen.data.datasets import EMBEDDED_LOADERS, load_benchmark
    from unseen.data.loading import register_embedded

    register_embedded()
    assert set(EMBEDDED_NAMES) <= set(EMBEDDED_LOADERS)
    benchmark = load_benchmark("animals", partition=4, cache_dir=cache,
                               images_per_class=PER_CLASS, progress=False)
    assert benchmark.source["backbone_resolution"] == 64
    assert benchmark.source["unseen_class_names"] == list(PARTITIONS["animals"][4])


@pytest.mark.skipif(not AWA2.is_file(), reason="AwA2 att_splits.mat not beside the repository")
def test_awa2_predicates_variant(cache: Path, animals) -> None:
    benchmark = load_embedded("animals", 0, cache, PER_CLASS, awa2_att_splits=str(AWA2),
                              progress=False)
    assert benchmark.name == "animals-awa2"
    assert benchmark.semantics.shape == (9, 85) and "bird" not in benchmark.class_names
    np.testing.assert_allclose(np.linalg.norm(benchmark.semantics, axis=1), 1.0, atol=1e-5)
    assert benchmark.original_semantics is not None
    # Same pictures, same features as `animals`, bird rows removed.
    keep = animals.labels != ANIMAL_CLASSES.index("bird")
    np.testing.assert_allclose(benchmark.features, animals.features[keep], atol=1e-5)
    assert benchmark.image_files == [f for f, k in zip(animals.image_files, keep, strict=True) if k]
    assert benchmark.source["descriptions_kind"] == "awa2"
    names = benchmark.class_names
    s = benchmark.semantics @ benchmark.semantics.T
    assert s[names.index("horse"), names.index("zebra")] > s[names.index("cat"), names.index("cow")]


@pytest.mark.skipif(not fashion_mnist_available(), reason="dataset-fashion-mnist not installed")
def test_fashion_benchmark(tmp_path: Path) -> None:
    benchmark = load_embedded("fashion", 2, tmp_path, 10, progress=False)
    assert benchmark.features.shape == (100, 1280) and benchmark.semantics.shape == (10, 384)
    assert benchmark.class_names[-1] == "ankle boot"
    assert sorted(benchmark.source["unseen_class_names"]) == sorted(PARTITIONS["fashion"][2])
    np.testing.assert_array_equal(np.bincount(benchmark.labels), np.full(10, 10))
