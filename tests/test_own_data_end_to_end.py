"""Own data end to end through the CLI, as a user runs it: a folder of real images and a line
of text per class -> `unseen data build` -> `train` -> `export` -> `predict --add-class` for a
class that did not exist at training time; and DUET on a built data set with attribute names."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from data_build_fixtures import ATTRIBUTES, write_attributes
from duet_fixtures import save_tiny_bert, save_tiny_deit
from PIL import Image

import unseen
from unseen.cli import main
from unseen.data.embedded_sources import load_animal_mnist

HELD_OUT = "elephant"  # no image or text of it exists until predict time
IMAGES_PER_CLASS = 30
ATTRIBUTE_CLASSES = ["bear", "bird", "cat", "cow", "dog"]  # the classes ATTRIBUTES describes


def _glosses() -> dict[str, str]:
    """The packaged WordNet gloss of each Animal-MNIST class (without its 'name: ' prefix)."""
    packaged = Path(unseen.__file__).parent / "data" / "embedded_descriptions.json"
    classes = json.loads(packaged.read_text())["classes"]["animals"]
    return {name: entry["text"].split(": ", 1)[1] for name, entry in classes.items()}


def _write_images(root: Path, classes: list[str]) -> None:
    raw = load_animal_mnist()
    for name in classes:
        folder = root / name
        folder.mkdir(parents=True)
        pixels = raw.images[raw.labels == raw.class_names.index(name)][:IMAGES_PER_CLASS]
        for i, image in enumerate(pixels):
            Image.fromarray(image).convert("RGB").save(folder / f"{i:02d}.png")


def _cli(capsys, *argv: str) -> str:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    """Real Animal-MNIST images in class folders, the held-out class set apart."""
    root = tmp_path_factory.mktemp("own_data")
    glosses = _glosses()
    trained = sorted(name for name in glosses if name != HELD_OUT)
    _write_images(root / "images", trained)
    _write_images(root / "new", [HELD_OUT])
    descriptions = root / "descriptions.txt"
    descriptions.write_text("".join(f"{name}: {glosses[name]}\n" for name in trained))
    return {"root": root, "images": root / "images", "descriptions": descriptions,
            "trained": trained, "gloss": glosses[HELD_OUT],
            "new_images": sorted(str(p) for p in (root / "new").rglob("*.png"))}


@pytest.fixture(scope="module")
def built(material, tmp_path_factory):
    out = material["root"] / "built"
    code = main(["data", "build", str(out), "--images", str(material["images"]),
                 "--descriptions", str(material["descriptions"]), "--unseen", "bird,horse",
                 "--image-size", "64", "--workers", "0",
                 "--cache-dir", str(material["root"] / "cache")])
    assert code == 0
    return out


def test_the_built_set_is_a_benchmark_every_command_reads(material, built, capsys):
    manifest = json.loads((built / "unseen.json").read_text())
    assert manifest["class_names"] == material["trained"]
    assert manifest["features_file"] == "efficientnet-lite0.mat"
    assert not (built / "res101.mat").exists()  # never claims a ResNet-101
    assert [block["kind"] for block in manifest["semantics"]["blocks"]] == ["descriptions"]
    assert manifest["split"]["unseen"] == ["bird", "horse"]
    out = _cli(capsys, "data", "check", str(built))
    assert "no problems found" in out
    benchmark = unseen.load_benchmark(str(built))
    assert benchmark.features.shape == (9 * IMAGES_PER_CLASS, manifest["feature_dim"])


@pytest.mark.parametrize("method, overrides", [
    ("eszsl", []),
    ("cegzsl", ["--preset", "demo", "--set", "epochs=3", "syn_num=50"]),
])
def test_a_class_added_by_text_at_predict_time_is_recognised(material, built, tmp_path, capsys,
                                                            method, overrides):
    run_dir, model_dir = tmp_path / "run", tmp_path / "model"
    _cli(capsys, "train", method, "--dataset", str(built), "--out", str(run_dir), "--quiet",
         *overrides)
    _cli(capsys, "export", str(run_dir), str(model_dir))
    config = json.loads((model_dir / "config.json").read_text())
    assert config["method"] == method and (model_dir / "model.safetensors").is_file()
    out = _cli(capsys, "predict", str(model_dir), *material["new_images"], "--json",
               "--top-k", "10", "--add-class", f"{HELD_OUT}: {material['gloss']}")
    predictions = json.loads(out)
    assert len(predictions) == len(material["new_images"])
    tops = [entry["top"][0] for entry in predictions]
    candidates = {row["class"] for row in predictions[0]["top"]}
    assert candidates == {*material["trained"], HELD_OUT}  # top-k covers all 10 candidates
    hits = sum(top["class"] == HELD_OUT for top in tops)
    assert all(row["kind"] == "added" for entry in predictions for row in entry["top"]
               if row["class"] == HELD_OUT)
    chance = 1 / len(candidates)
    assert hits / len(tops) > chance, f"{method}: {hits}/{len(tops)} {HELD_OUT} images found"


def test_duet_trains_on_a_built_set_with_attribute_names(material, tmp_path, capsys):
    out = tmp_path / "built_attributes"
    images = tmp_path / "images"
    for name in ATTRIBUTE_CLASSES:
        shutil.copytree(material["images"] / name, images / name)
    attributes = write_attributes(tmp_path / "attributes.csv", classes=ATTRIBUTE_CLASSES)
    assert main(["data", "build", str(out), "--images", str(images),
                 "--attributes", str(attributes), "--unseen", "bird", "--image-size", "64",
                 "--workers", "0", "--cache-dir", str(material["root"] / "cache")]) == 0
    deit = save_tiny_deit(tmp_path / "deit")
    bert = save_tiny_bert(tmp_path / "bert", extra_words=list(ATTRIBUTES))
    settings = {"vision_model": str(deit), "text_model": str(bert), "epochs": 1,
                "batch_size": 4, "num_workers": 0, "device": "cpu",
                "pixel_cache_dir": str(tmp_path / "pixels")}
    _cli(capsys, "train", "duet", "--dataset", str(out), "--out", str(tmp_path / "cli"),
         "--quiet", "--set", *(f"{k}={v}" for k, v in settings.items()))
    cli_results = json.loads((tmp_path / "cli" / "results.json").read_text())
    api_results = unseen.train("duet", str(out), out=str(tmp_path / "api"), overrides=settings,
                               quiet=True)
    for results in (cli_results, api_results):
        assert results["dataset"] == str(out) and 0.0 <= results["H"] <= 1.0
    assert api_results["per_seed"][0]["H"] == pytest.approx(cli_results["per_seed"][0]["H"])


def test_duet_on_a_set_built_from_descriptions_names_the_missing_attributes(built, tmp_path,
                                                                           capsys):
    code = main(["train", "duet", "--dataset", str(built), "--out", str(tmp_path / "run"),
                 "--quiet", "--set", "vision_model=efficientnet-lite0", "text_model=minilm"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--attributes" in err


def test_predict_extracts_new_images_with_a_built_sets_automodel_backbone(material, tmp_path,
                                                                         capsys):
    """A transformers backbone recorded in the manifest (hash-checked) turns image files into
    features at predict time exactly as `data build` did."""
    from data_build_fixtures import save_tiny_resnet

    backbone = save_tiny_resnet(tmp_path / "resnet-tiny")
    out = tmp_path / "built_resnet"
    assert main(["data", "build", str(out), "--images", str(material["images"]),
                 "--descriptions", str(material["descriptions"]), "--unseen", "bird,horse",
                 "--backbone", str(backbone), "--workers", "0",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    _cli(capsys, "train", "eszsl", "--dataset", str(out), "--out", str(tmp_path / "run"),
         "--quiet")
    _cli(capsys, "export", str(tmp_path / "run"), str(tmp_path / "model"))
    model = unseen.GZSLModel.from_pretrained(str(tmp_path / "model"))
    benchmark = unseen.load_benchmark(str(out))
    rows = benchmark.test_unseen_idx[:4]
    images = [str(Path(benchmark.source["image_root"]) / benchmark.image_files[r]) for r in rows]
    from_images = json.loads(_cli(capsys, "predict", str(tmp_path / "model"), *images, "--json",
                                  "--top-k", "9"))
    from_features = model.predict(benchmark.features[rows], top_k=9)
    for by_image, by_feature in zip(from_images, from_features, strict=True):
        assert [e["class"] for e in by_image["top"]] == [e["class"] for e in by_feature["top"]]
        for a, b in zip(by_image["top"], by_feature["top"], strict=True):
            assert a["score"] == pytest.approx(b["score"], abs=1e-4)


@pytest.mark.parametrize("method, overrides", [
    ("fclswgan", []),
    ("tfvaegan", ["iterations_per_epoch=10"]),
    ("free", ["iterations_per_epoch=10"]),
])
def test_generative_methods_refit_their_classifier_for_an_added_class(material, built, tmp_path,
                                                                      capsys, method, overrides):
    """f-CLSWGAN, TF-VAEGAN and FREE take added classes as CE-GZSL does (their own synthesis
    and classifier input, only the final softmax refitted, seeded). Seconds of training do not
    condition G well enough to recognise a new class's images, so this checks the refit:
    without it the model's softmax has no column for the added class and scoring fails."""
    _cli(capsys, "train", method, "--dataset", str(built), "--out", str(tmp_path / "run"),
         "--quiet", "--preset", "demo", "--set", "epochs=2", "syn_num=50", *overrides)
    _cli(capsys, "export", str(tmp_path / "run"), str(tmp_path / "model"))
    models = [unseen.GZSLModel.from_pretrained(str(tmp_path / "model")) for _ in range(2)]
    before = models[0].predict(material["new_images"][:5], top_k=20)
    assert {len(entry["top"]) for entry in before} == {9}
    for model in models:
        assert model.add_classes({HELD_OUT: material["gloss"]}) == [HELD_OUT]
        assert model.class_names[-1] == HELD_OUT and model.class_kinds[-1] == "added"
    first, second = (model.predict(material["new_images"][:5], top_k=20) for model in models)
    assert first == second  # the refit is seeded
    assert {len(entry["top"]) for entry in first} == {10}
    added = [row for entry in first for row in entry["top"] if row["class"] == HELD_OUT]
    assert len(added) == 5 and all(row["kind"] == "added" and np.isfinite(row["score"])
                                   for row in added)
    assert [entry["top"] for entry in first] != [entry["top"] for entry in before]
