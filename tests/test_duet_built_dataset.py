"""DUET on a data set in the `unseen data build` layout (MANIFEST_SCHEMA.md): features file
named for its backbone, att_splits.mat, unseen.json, PNG images under the manifest's image
root. The loader side is faked minimally (`_load_built`): what the build helper's loader puts
into `Benchmark.source` ("manifest", "image_root")."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from duet_fixtures import IMAGE_SIZE, save_tiny_bert, save_tiny_deit
from PIL import Image

from unseen.data.synthetic import synthetic_benchmark
from unseen.data.xlsa17 import load_xlsa17, write_xlsa17
from unseen.errors import UnseenInputError
from unseen.runner import Runner, RunSpec

NAMES = ["red", "green", "blue", "round", "square", "striped", "spotted", "large"]


def _build(root: Path, attribute_names: list[str] | None) -> Path:
    """OUT_DIR of `unseen data build`: efficientnet-lite0.mat, att_splits.mat, unseen.json."""
    benchmark = synthetic_benchmark(num_classes=6, num_unseen=2, images_per_class=6,
                                    feature_dim=16, semantic_dim=len(NAMES), seed=1)
    images = root / "photos"
    colours = np.random.default_rng(0).integers(0, 256, (6, 3))
    files = []
    for row, label in enumerate(benchmark.labels):
        relative = f"{benchmark.class_names[label]}/{row:03d}.png"
        target = images / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        noise = np.random.default_rng(row).integers(-30, 30, (IMAGE_SIZE, IMAGE_SIZE, 3))
        Image.fromarray(np.clip(colours[label] + noise, 0, 255).astype(np.uint8)).save(target)
        files.append(relative)
    benchmark.image_files = files
    benchmark.attribute_names = None
    out = root / "built"
    write_xlsa17(benchmark, out)
    (out / "res101.mat").rename(out / "efficientnet-lite0.mat")
    manifest = {
        "format": "unseen-dataset/1", "features_file": "efficientnet-lite0.mat",
        "feature_dim": 16, "attribute_names": attribute_names,
        "class_names": list(benchmark.class_names), "image_root": str(images),
        "images": len(files), "semantics": {"blocks": [{"kind": "attributes", "dim": 8}]},
    }
    (out / "unseen.json").write_text(json.dumps(manifest))
    return out


def _load_built(directory: Path):
    """The loader's contract, minimally: read the features file the manifest names."""
    manifest = json.loads((directory / "unseen.json").read_text())
    view = directory / "xlsa17_view"
    view.mkdir(exist_ok=True)
    for name, target in (("res101.mat", manifest["features_file"]),
                         ("att_splits.mat", "att_splits.mat")):
        if not (view / name).exists():
            os.symlink(directory / target, view / name)
    benchmark = load_xlsa17(view, name=directory.name)
    benchmark.attribute_names = None
    benchmark.source.update(manifest=manifest, image_root=manifest["image_root"])
    return benchmark


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("duet_built_models")
    return {"deit": save_tiny_deit(root / "deit"),
            "bert": save_tiny_bert(root / "bert", extra_words=NAMES)}


def _spec(directory: Path, models, out: Path) -> RunSpec:
    return RunSpec(method="duet", dataset=str(directory), protocol="clean", seeds=[0],
                   out=str(out), overrides={
                       "vision_model": str(models["deit"]), "text_model": str(models["bert"]),
                       "epochs": "1", "batch_size": "4", "num_workers": "0", "device": "cpu",
                       "pixel_cache_dir": str(out.parent / "pixels")})


def test_duet_trains_on_a_built_data_set_from_its_manifest(tmp_path, models):
    directory = _build(tmp_path, NAMES)
    benchmark = _load_built(directory)
    runner = Runner(_spec(directory, models, tmp_path / "run"),
                    load_benchmark=lambda spec, index: benchmark)
    results = runner.run()
    method = runner._last_method
    assert method._builder.vocab.words == NAMES  # one attribute per manifest name
    assert method._builder.vocab.group_order == ["attributes"]  # no groups unless given
    images = Path(benchmark.source["image_root"])
    assert method._pixel_cache is not None and images.is_dir()
    per_seed = results["per_seed"][0]
    assert 0.0 <= per_seed["H"] <= 1.0 and per_seed["selected"]["on"] == "validation"


def test_built_from_descriptions_only_says_duet_needs_attributes(tmp_path, models, capsys):
    directory = _build(tmp_path, None)
    benchmark = _load_built(directory)
    runner = Runner(_spec(directory, models, tmp_path / "run"),
                    load_benchmark=lambda spec, index: benchmark)
    with pytest.raises(UnseenInputError, match=r"--attributes") as error:
        runner.run()
    assert "\n" not in str(error.value) and "attribute_names" in str(error.value)
    shutil.rmtree(tmp_path / "run", ignore_errors=True)
