"""`unseen data build`: real PNG images (Animal-MNIST) -> a data set every method and
`unseen data check` read, with its manifest, cache, split and exit-2 errors."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from data_build_fixtures import (
    ATTRIBUTES,
    CLASSES,
    IMAGES_PER_CLASS,
    add_bad_files,
    save_tiny_resnet,
    write_attributes,
    write_descriptions,
    write_image_folder,
)
from duet_fixtures import save_tiny_bert, save_tiny_vit

from unseen.backbones.auto import load_backbone
from unseen.cli import main
from unseen.data.build import choose_unseen, proposed_split
from unseen.data.class_semantics import load_text_encoder
from unseen.data.extraction import extract_to_cache
from unseen.data.feature_cache import FeatureCache
from unseen.data.inspect import check_dataset
from unseen.data.loading import load_dataset
from unseen.data.matfile import load_mat

FAST = ["--image-size", "32", "--workers", "0", "--batch-size", "16"]


@pytest.fixture(scope="module")
def material(tmp_path_factory) -> Path:
    """Images with two bad files, attributes, descriptions, tiny models and a shared cache."""
    root = tmp_path_factory.mktemp("material")
    write_image_folder(root / "images")
    add_bad_files(root / "images")
    write_attributes(root / "attributes.csv")
    save_tiny_bert(root / "bert", extra_words=[w for t in ("bear bird cat cow dog",)
                                               for w in t.split()])
    save_tiny_resnet(root / "resnet-tiny")
    return root


def _build(material: Path, out: Path, *extra: str) -> int:
    return main(["data", "build", str(out), "--images", str(material / "images"),
                 "--cache-dir", str(material / "cache"), *FAST, *extra])


def _manifest(out: Path) -> dict:
    return json.loads((out / "unseen.json").read_text())


def test_build_with_attributes_gives_a_checked_loadable_benchmark(material, tmp_path, capsys):
    out = tmp_path / "animals"
    assert _build(material, out, "--attributes", str(material / "attributes.csv"),
                  "--unseen", "cat,dog") == 0
    err = capsys.readouterr().err
    assert "skipped 2 unreadable image(s)" in err and "cat/truncated.png" in err

    assert sorted(p.name for p in out.iterdir()) == ["att_splits.mat", "efficientnet-lite0.mat",
                                                     "unseen.json"]
    assert not list(tmp_path.glob("*.partial-*"))
    manifest = _manifest(out)
    assert manifest["format"] == "unseen-dataset/1"
    assert manifest["features_file"] == "efficientnet-lite0.mat"
    assert manifest["feature_dim"] == 1280 and manifest["backbone"]["image_size"] == 32
    assert len(manifest["backbone"]["sha256"]) == 64
    assert manifest["class_names"] == list(CLASSES)
    assert manifest["attribute_names"] == list(ATTRIBUTES)
    assert manifest["images"] == len(CLASSES) * IMAGES_PER_CLASS
    assert sorted(manifest["skipped_images"]) == ["cat/truncated.png", "dog/not_an_image.jpg"]
    assert manifest["split"]["unseen"] == ["cat", "dog"] and manifest["split"]["seed"] == 0
    assert manifest["semantics"]["blocks"] == [{"kind": "attributes", "source": "attributes.csv",
                                                "dim": len(ATTRIBUTES)}]
    assert manifest["command"].startswith("unseen ")

    assert check_dataset(out) == []
    benchmark = load_dataset(str(out))
    assert benchmark.class_names == list(CLASSES)
    assert benchmark.features.shape == (60, 1280)
    assert benchmark.source["manifest"]["features_file"] == "efficientnet-lite0.mat"
    root = Path(benchmark.source["image_root"])
    assert all((root / name).is_file() for name in benchmark.image_files)
    assert "cat/more/03.png" in benchmark.image_files  # nested folders are read

    splits = [set(benchmark.trainval_idx), set(benchmark.test_seen_idx),
              set(benchmark.test_unseen_idx)]
    assert sum(map(len, splits)) == 60 and len(set().union(*splits)) == 60
    unseen = np.isin(benchmark.labels, [CLASSES.index("cat"), CLASSES.index("dog")])
    assert set(np.flatnonzero(unseen)) == splits[2]
    held = np.bincount(benchmark.labels[benchmark.test_seen_idx], minlength=5)
    assert held.tolist() == [2, 2, 0, 2, 0]  # floor(0.2 * 12) per seen class
    original = np.array([ATTRIBUTES[name] for name in ATTRIBUTES], float).T
    np.testing.assert_allclose(benchmark.original_semantics, original)
    np.testing.assert_allclose(np.linalg.norm(benchmark.semantics, axis=1), 1.0, rtol=1e-6)
    assert load_mat(out / "att_splits.mat")["attri_name"] == list(ATTRIBUTES)


def test_features_equal_the_backbone_on_the_decoded_image(material, tmp_path):
    out = tmp_path / "ds"
    assert _build(material, out, "--attributes", str(material / "attributes.csv"),
                  "--unseen", "bird") == 0
    benchmark = load_dataset(str(out))
    backbone = load_backbone("efficientnet-lite0", image_size=32)
    row = benchmark.image_files.index("cow/05.png")
    from PIL import Image

    with Image.open(material / "images" / "cow" / "05.png") as image:
        pixels = backbone.preprocessor([image])
    with torch.inference_mode():
        expected = backbone.model(pixels).numpy()[0]
    # A batch of 16 and a batch of one take other convolution kernels: equal to ~1e-5 relative.
    np.testing.assert_allclose(benchmark.features[row], expected, rtol=1e-4, atol=1e-5)


def test_a_killed_build_resumes_from_the_cache_and_workers_change_nothing(material, tmp_path):
    images = sorted((material / "images").rglob("*.png"))
    backbone = load_backbone("efficientnet-lite0", image_size=32)
    cache_dir = tmp_path / "cache"
    key = backbone.cache_key("float32")
    cache = FeatureCache(cache_dir / key, backbone.feature_dim)
    bad = images.index(material / "images" / "cat" / "truncated.png")
    first = extract_to_cache(images[:bad + 1], backbone, cache, torch.device("cpu"),
                             batch_size=8, progress=False)  # what a killed build had finished
    first_keys = {first.keys[i] for i in range(bad)}  # truncated.png (row `bad`) is skipped
    assert first.computed == bad and cache.keys() == first_keys
    second = extract_to_cache(images, backbone, cache, torch.device("cpu"), batch_size=8,
                              workers=2, progress=False)
    # Only images whose content was not cached go through the model (Animal-MNIST repeats
    # some silhouettes: equal files share one cache entry).
    fresh = [i for i, key in second.keys.items() if i != bad and key not in first_keys]
    assert len(fresh) >= 60 - bad and second.computed == len(fresh)
    assert cache.keys() == {key for i, key in second.keys.items() if i != bad}
    assert set(first.errors) == set(second.errors) == {bad}

    out_a, out_b = tmp_path / "a", tmp_path / "b"
    common = ["--images", str(material / "images"), "--image-size", "32", "--batch-size", "8",
              "--unseen", "bear"]
    assert main(["data", "build", str(out_a), "--cache-dir", str(cache_dir), "--workers", "0",
                 *common]) == 0
    assert main(["data", "build", str(out_b), "--cache-dir", str(tmp_path / "fresh"),
                 "--workers", "2", *common]) == 0
    a = load_mat(out_a / "efficientnet-lite0.mat")["features"]
    b = load_mat(out_b / "efficientnet-lite0.mat")["features"]
    assert a.dtype == np.float32 and a.tobytes() == b.tobytes()


def test_csv_list_and_descriptions_with_a_local_text_encoder(material, tmp_path):
    listing = tmp_path / "list.csv"
    rows = ["path,class"] + [
        f"{os.path.relpath(material / 'images' / c / f'{i:02d}.png', tmp_path)},{c}"
        for c in ("bear", "cow", "dog") for i in (0, 1, 2, 4, 5, 6)]
    listing.write_text("\n".join(rows) + "\n")
    descriptions = write_descriptions(tmp_path / "descriptions.jsonl", ("bear", "cow", "dog"))
    out = tmp_path / "ds"
    assert main(["data", "build", str(out), "--images", str(listing), "--descriptions",
                 str(descriptions), "--text-encoder", str(material / "bert"), "--unseen", "dog",
                 "--cache-dir", str(material / "cache"), *FAST]) == 0
    manifest = _manifest(out)
    assert manifest["class_names"] == ["bear", "cow", "dog"]
    assert manifest["image_root"] == str(tmp_path.resolve())
    assert manifest["semantics"]["blocks"][0]["kind"] == "descriptions"
    assert manifest["semantics"]["blocks"][0]["encoder"] == str(material / "bert")
    assert manifest["class_descriptions"]["cow"].startswith("a large farm animal")
    benchmark = load_dataset(str(out))
    assert benchmark.num_images == 18 and check_dataset(out) == []
    encoder = load_text_encoder(str(material / "bert"))[0]
    expected = encoder.encode([manifest["class_descriptions"][c] for c in ("bear", "cow", "dog")])
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(benchmark.semantics, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("suffix", [".json", ".txt"])
def test_attributes_descriptions_and_prompt_are_concatenated(material, tmp_path, suffix):
    descriptions = write_descriptions(tmp_path / f"descriptions{suffix}")
    out = tmp_path / "ds"
    assert _build(material, out, "--attributes", str(material / "attributes.csv"),
                  "--descriptions", str(descriptions), "--prompt", "a drawing of a {}",
                  "--text-encoder", str(material / "bert"), "--unseen", "cow") == 0
    manifest = _manifest(out)
    kinds = [block["kind"] for block in manifest["semantics"]["blocks"]]
    assert kinds == ["attributes", "descriptions", "prompt"]
    assert manifest["semantics"]["combine"] == "concatenate, each block L2-normalised"
    benchmark = load_dataset(str(out))
    assert benchmark.semantics.shape == (5, len(ATTRIBUTES) + 32 + 32)
    np.testing.assert_allclose(np.linalg.norm(benchmark.semantics, axis=1), np.sqrt(3), rtol=1e-5)
    prompt = benchmark.semantics[:, len(ATTRIBUTES) + 32:]
    encoder = load_text_encoder(str(material / "bert"))[0]
    expected = encoder.encode([f"a drawing of a {c}" for c in CLASSES])
    np.testing.assert_allclose(prompt, expected / np.linalg.norm(expected, axis=1, keepdims=True),
                               rtol=1e-5, atol=1e-6)
    assert manifest["attribute_names"] == list(ATTRIBUTES)


def test_default_semantics_are_the_packaged_minilm_prompt(material, tmp_path):
    out = tmp_path / "ds"
    assert _build(material, out, "--unseen-fraction", "0.4", "--seed", "3") == 0
    manifest = _manifest(out)
    assert manifest["semantics"]["blocks"] == [{"kind": "prompt", "prompt": "a photo of a {}.",
                                                "dim": 384, "encoder": "minilm",
                                                "pooling": "mean", "normalise": "l2"}]
    assert manifest["split"]["unseen"] == [CLASSES[i] for i in choose_unseen(list(CLASSES),
                                                                             None, 0.4, 3)]
    assert len(manifest["split"]["unseen"]) == 2
    assert load_dataset(str(out)).semantics.shape == (5, 384)


def test_automodel_backbones_from_a_directory(material, tmp_path):
    out = tmp_path / "ds"
    assert main(["data", "build", str(out), "--images", str(material / "images"),
                 "--backbone", str(material / "resnet-tiny"), "--attributes",
                 str(material / "attributes.csv"), "--unseen", "dog", "--workers", "0",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    manifest = _manifest(out)
    assert manifest["features_file"] == "resnet-tiny.mat"
    assert manifest["backbone"]["kind"] == "transformers" and manifest["feature_dim"] == 16
    assert manifest["backbone"]["preprocessing"]["image_mean"] == [0.485, 0.456, 0.406]
    assert len(manifest["backbone"]["sha256"]) == 64
    benchmark = load_dataset(str(out))
    assert benchmark.features.shape == (60, 16) and check_dataset(out) == []
    assert not (out / "res101.mat").exists()

    vit = save_tiny_vit(tmp_path / "vit")  # saved as a classifier: its pooler is untrained
    first, second = (load_backbone(str(vit)) for _ in range(2))
    pixels = torch.rand(2, 3, 32, 32)
    with torch.inference_mode():
        assert torch.equal(first.model(pixels), second.model(pixels))
    assert first.feature_dim == 32 and first.identity()["pooling"] != "pooler_output"


def test_eszsl_trains_above_chance_on_a_built_set(material, tmp_path):
    """All ten Animal-MNIST classes, 12 images each, attributes = class layouts."""
    from unseen.data.embedded_sources import ANIMAL_CLASSES, load_animal_mnist

    root = tmp_path / "images"
    raw = load_animal_mnist()
    rows = ["class," + ",".join(f"cell{i}" for i in range(16))]
    from PIL import Image

    for c, name in enumerate(ANIMAL_CLASSES):
        images = raw.images[raw.labels == c]
        (root / name).mkdir(parents=True)
        for i, pixels in enumerate(images[:12]):
            Image.fromarray(pixels).save(root / name / f"{i}.png")
        # The class's mean silhouette on a 4 x 4 grid, from images not in the data set.
        layout = (images[100:400] / 255.0).reshape(-1, 4, 7, 4, 7).mean(axis=(0, 2, 4))
        rows.append(name + "," + ",".join(f"{v:.4f}" for v in layout.ravel()))
    (tmp_path / "layout.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "animals"
    assert main(["data", "build", str(out), "--images", str(root), "--attributes",
                 str(tmp_path / "layout.csv"), "--unseen-fraction", "0.3",
                 "--cache-dir", str(tmp_path / "cache"), "--image-size", "64",
                 "--workers", "0"]) == 0
    run = tmp_path / "run"
    assert main(["train", "eszsl", "--dataset", str(out), "--out", str(run)]) == 0
    results = json.loads((run / "results.json").read_text())
    unseen = len(_manifest(out)["split"]["unseen"])
    # Chance is 1/3 (0.53 measured: the attributes are only 4 x 4 mean silhouettes).
    assert unseen == 3 and results["T1"] > 1.25 / unseen


def test_split_is_deterministic_and_names_small_classes():
    names = [f"c{i}" for i in range(10)]
    assert choose_unseen(names, None, 0.3, 7).tolist() == choose_unseen(names, None, 0.3, 7
                                                                         ).tolist()
    assert len(choose_unseen(names, None, 0.3, 7)) == 3
    assert {tuple(choose_unseen(names, None, 0.3, s)) for s in range(5)} != {
        tuple(choose_unseen(names, None, 0.3, 0))}
    labels = np.repeat(np.arange(3), [10, 4, 6])
    with pytest.raises(Exception, match=r"c1 \(4\)"):
        proposed_split(labels, names[:3], np.array([2]), 0.2, 0)
    trainval, test_seen, test_unseen = proposed_split(labels, names[:3], np.array([1]), 0.2, 0)
    assert (trainval.size, test_seen.size, test_unseen.size) == (13, 3, 4)
    again = proposed_split(labels, names[:3], np.array([1]), 0.2, 0)
    assert np.array_equal(again[1], test_seen)


def _bad(material: Path, tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    images = material / "images"
    empty = tmp_path / "empty_class"
    shutil.copytree(images, empty)
    (empty / "extra").mkdir()
    short = write_attributes(tmp_path / "short.csv", classes=CLASSES[:4])
    extra = tmp_path / "extra.csv"
    extra.write_text(write_attributes(tmp_path / "x.csv").read_text()
                     + "zebra,1,0,0,0,0,1\n")
    bad_cell = tmp_path / "bad_cell.csv"
    bad_cell.write_text(write_attributes(tmp_path / "y.csv").read_text().replace(
        "cow,1,0,1,1,0,0", "cow,1,0,one,1,0,0"))
    twice = tmp_path / "twice.csv"
    twice.write_text(write_attributes(tmp_path / "z.csv").read_text() + "cow,1,0,1,1,0,0\n")
    broken_model = tmp_path / "broken_model"
    broken_model.mkdir()
    (broken_model / "config.json").write_text("{}")
    (broken_model / "preprocessor_config.json").write_text("{}")
    exists = tmp_path / "exists"
    exists.mkdir()
    small = tmp_path / "small_class"
    shutil.copytree(images, small)
    for path in sorted((small / "bird").rglob("*.png"))[3:]:
        path.unlink()
    attrs = ["--attributes", str(material / "attributes.csv")]
    return {
        "empty class folder": (["--images", str(empty), *attrs], "empty class folder"),
        "class without a row": (["--images", str(images), "--attributes", str(short)],
                                "short.csv"),
        "row without a class": (["--images", str(images), "--attributes", str(extra)],
                                "zebra"),
        "non-numeric cell": (["--images", str(images), "--attributes", str(bad_cell)],
                             "four_legs'': expected a number, found 'one'"),
        "duplicate class": (["--images", str(images), "--attributes", str(twice)],
                            "not used by an earlier row"),
        "unknown unseen": (["--images", str(images), *attrs, "--unseen", "cat,lion"],
                           "unknown ['lion']"),
        "backbone that does not load": (["--images", str(images), *attrs, "--backbone",
                                         str(broken_model)], "broken_model"),
        "strict and a bad image": (["--images", str(images), *attrs, "--strict"],
                                   "truncated.png"),
        "existing output": (["--images", str(images), *attrs, "--out-dir-exists"], "exists"),
        "prompt without a slot": (["--images", str(images), "--prompt", "a photo"],
                                  "'{}'"),
        "seen class too small": (["--images", str(small), *attrs, "--unseen", "cat"],
                                 "bird (3)"),
    }


@pytest.mark.parametrize("case", ["empty class folder", "class without a row",
                                  "row without a class", "non-numeric cell", "duplicate class",
                                  "unknown unseen", "backbone that does not load",
                                  "strict and a bad image", "existing output",
                                  "prompt without a slot", "seen class too small"])
def test_bad_input_exits_2_with_one_line(material, tmp_path, capsys, case):
    arguments, expected = _bad(material, tmp_path)[case]
    out = tmp_path / "out"
    if "--out-dir-exists" in arguments:
        arguments.remove("--out-dir-exists")
        out = tmp_path / "exists"
    size = [] if "--backbone" in arguments else FAST[:2]
    code = main(["data", "build", str(out), *arguments, "--cache-dir",
                 str(material / "cache"), *size])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[-1].startswith("unseen: error:") and expected in err[-1]
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob("out.partial-*"))
