"""`unseen export` and `GZSLModel`: a finished run becomes a self-contained model directory that
predicts exactly like the run, and a damaged or pickle-bearing directory is refused (exit 2,
one line naming the file)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from portable_fixtures import animals, write_pngs

import unseen.data.loading
from unseen import GZSLModel
from unseen.cli import main
from unseen.export import WEIGHTS_FILE
from unseen.model_dir.tensor_tree import flatten, unflatten
from unseen.runner import Runner, RunSpec


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    benchmark = animals(0)
    root = tmp_path_factory.mktemp("export")
    spec = RunSpec(method="eszsl", dataset="animals", protocol="clean", out=str(root / "run"))
    Runner(spec, load_benchmark=lambda spec, index: benchmark).run()
    patch = pytest.MonkeyPatch()
    patch.setattr(unseen.data.loading, "load_dataset",
                  lambda name, data_root=None, partition=0: benchmark)
    assert main(["export", str(root / "run"), str(root / "model")]) == 0
    patch.undo()
    rows = np.concatenate([benchmark.test_seen_idx[::6], benchmark.test_unseen_idx[::6]])
    images = write_pngs(benchmark, rows, root / "images")
    return {"benchmark": benchmark, "run": root / "run", "model": root / "model",
            "images": images, "rows": rows}


def _copy_model(exported, tmp_path) -> Path:
    import shutil

    target = tmp_path / "model"
    shutil.copytree(exported["model"], target)
    return target


def test_model_directory_records_what_prediction_needs(exported):
    benchmark = exported["benchmark"]
    config = json.loads((exported["model"] / "config.json").read_text())
    assert config["format"] == "unseen-model/1" and config["method"] == "eszsl"
    assert config["class_names"] == benchmark.class_names
    unseen_names = {benchmark.class_names[c] for c in benchmark.unseen_classes}
    assert [k == "unseen" for k in config["class_kinds"]] == [
        n in unseen_names for n in config["class_names"]]
    assert config["backbone"] == {"name": "efficientnet-lite0", "kind": "efficientnet-lite0",
                                  "image_size": benchmark.source["backbone_resolution"],
                                  "pipeline": "embedded-efficientnet-lite0"}
    block = config["semantics_recipe"]["blocks"][0]
    assert block["kind"] == "descriptions" and block["encoder"] == "minilm"
    assert block["dim"] == 384
    results = json.loads((exported["run"] / "results.json").read_text())
    assert config["gamma"] == pytest.approx(results["per_seed"][0]["gamma"])
    assert config["candidate"] == results["per_seed"][0]["selected"]["candidate"]
    from safetensors.torch import load_file

    tensors = load_file(exported["model"] / WEIGHTS_FILE)
    np.testing.assert_allclose(tensors["class_semantics"].numpy(), benchmark.semantics)
    assert tensors["minmax_low"].shape == (benchmark.features.shape[1],)
    low = benchmark.features[benchmark.trainval_idx].min(axis=0)
    np.testing.assert_allclose(tensors["minmax_low"].numpy(), low)


def test_model_directory_predicts_like_the_run_without_the_data(exported, monkeypatch):
    def no_data(*args, **kwargs):
        raise AssertionError("the model directory must not load the data set")

    benchmark = exported["benchmark"]
    from_run = GZSLModel.from_run(exported["run"], load_benchmark=lambda spec, p: benchmark)
    monkeypatch.setattr(unseen.data.loading, "load_dataset", no_data)
    from_dir = GZSLModel.from_pretrained(exported["model"])
    images = exported["images"]
    torch.testing.assert_close(from_dir.scores(images), from_run.scores(images))
    # the PNG files give the pictures the stored features were made from: same predictions
    features = benchmark.features[exported["rows"]]
    from_features = [p["top"][0]["class"] for p in from_dir.predict(features, top_k=1)]
    from_images = [p["top"][0]["class"] for p in from_dir.predict(images, top_k=1)]
    assert np.mean([a == b for a, b in zip(from_features, from_images, strict=True)]) >= 0.8
    truth = [benchmark.class_names[c] for c in benchmark.labels[exported["rows"]]]
    accuracy = np.mean([p == t for p, t in zip(from_images, truth, strict=True)])
    assert accuracy > 0.1  # 10 classes, seen and unseen images: chance is 0.1


def test_cli_predict_json_on_a_model_directory(exported, capsys):
    images = exported["images"]
    assert main(["predict", str(exported["model"]), *images, "--top-k", "3", "--json"]) == 0
    output = json.loads(capsys.readouterr().out)
    assert [item["image"] for item in output] == images
    assert all(len(item["top"]) == 3 for item in output)
    assert all(a["score"] >= b["score"] for item in output
               for a, b in zip(item["top"], item["top"][1:], strict=False))
    kinds = {entry["class"]: entry["kind"] for item in output for entry in item["top"]}
    config = json.loads((exported["model"] / "config.json").read_text())
    expected = dict(zip(config["class_names"], config["class_kinds"], strict=True))
    assert kinds == {name: expected[name] for name in kinds}
    assert main(["predict", str(exported["model"]), images[0], "--top-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == images[0] and len(lines) == 3
    assert lines[1].split()[-1] in ("[seen]", "[unseen]")


def test_save_pretrained_round_trips(exported, tmp_path):
    model = GZSLModel.from_pretrained(exported["model"])
    model.save_pretrained(tmp_path / "again")
    again = GZSLModel.from_pretrained(tmp_path / "again")
    for key, value in model.state["factors"].items():
        assert torch.equal(again.state["factors"][key], value)
    assert again.class_names == model.class_names and again.gamma == model.gamma


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def test_truncated_weights_exit_2_naming_the_file(exported, tmp_path, capsys):
    model = _copy_model(exported, tmp_path)
    weights = model / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:1000])
    assert main(["predict", str(model), exported["images"][0]]) == 2
    assert str(weights) in _error_line(capsys)


def test_tampered_weights_exit_2(exported, tmp_path, capsys):
    model = _copy_model(exported, tmp_path)
    weights = model / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert main(["predict", str(model), exported["images"][0]]) == 2
    line = _error_line(capsys)
    assert str(weights) in line and "altered" in line


class _Marker:
    def __reduce__(self):
        return (Path.touch, (Path(_Marker.path),))


def test_pickle_bearing_weights_are_refused_without_unpickling(exported, tmp_path, capsys):
    model = _copy_model(exported, tmp_path)
    _Marker.path = str(tmp_path / "unpickled")
    weights = model / WEIGHTS_FILE
    weights.write_bytes(pickle.dumps({"weights": _Marker()}))
    config = json.loads((model / "config.json").read_text())
    import hashlib

    config["weights_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    (model / "config.json").write_text(json.dumps(config))
    assert main(["predict", str(model), exported["images"][0]]) == 2
    assert str(weights) in _error_line(capsys)
    assert not Path(_Marker.path).exists()


def test_bad_config_exit_2(exported, tmp_path, capsys):
    model = _copy_model(exported, tmp_path)
    config = json.loads((model / "config.json").read_text())
    config["format"] = "unseen-model/99"
    (model / "config.json").write_text(json.dumps(config))
    assert main(["predict", str(model), exported["images"][0]]) == 2
    assert "format" in _error_line(capsys)
    del config["gamma"]
    config["format"] = "unseen-model/1"
    (model / "config.json").write_text(json.dumps(config))
    assert main(["predict", str(model), exported["images"][0]]) == 2
    assert "gamma" in _error_line(capsys)


def test_truncated_run_checkpoint_exit_2(exported, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(exported["run"], run)
    checkpoint = run / "checkpoints" / "seed0_final.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:500])
    assert main(["export", str(run), str(tmp_path / "model")]) == 2
    assert str(checkpoint) in _error_line(capsys)
    assert not (tmp_path / "model").exists()


def test_tensor_tree_round_trips_nested_state():
    state = {"a": torch.arange(3), "b": [1, 2.5, "x", None, (torch.ones(2), 7)],
             "c": {0: {"m": torch.zeros(2, 2)}, 1: "y"}, "d": np.arange(4, dtype=np.float32)}
    tensors: dict[str, torch.Tensor] = {}
    skeleton = json.loads(json.dumps(flatten(state, tensors)))
    back = unflatten(skeleton, tensors)
    assert torch.equal(back["a"], state["a"]) and back["b"][:4] == [1, 2.5, "x", None]
    assert isinstance(back["b"][4], tuple) and torch.equal(back["b"][4][0], torch.ones(2))
    assert set(back["c"]) == {0, 1} and torch.equal(back["c"][0]["m"], torch.zeros(2, 2))
    np.testing.assert_array_equal(back["d"], state["d"])


def test_a_built_data_sets_backbone_extracts_features_as_the_build_did(tmp_path, monkeypatch):
    """Manifest backbones go through `unseen.backbones.auto` (processor -> uint8 -> normalise
    -> pooled output); weights that differ from the recorded hash are refused."""
    import sys
    import types

    from PIL import Image

    from unseen.backbones.image_processing import ImagePreprocessor
    from unseen.errors import UnseenInputError
    from unseen.export import extract_backbone_features

    preprocessor = ImagePreprocessor.for_efficientnet_lite0(32)

    class ChannelMeans(torch.nn.Module):
        def forward(self, pixels):
            return pixels.mean(dim=(2, 3))

    fake = types.ModuleType("unseen.backbones.auto")
    fake.load_backbone = lambda name, image_size=None: types.SimpleNamespace(
        model=ChannelMeans(), preprocessor=preprocessor, sha256="abc")
    monkeypatch.setitem(sys.modules, "unseen.backbones.auto", fake)
    paths = []
    for i, size in enumerate((40, 32, 64)):
        pixels = np.random.default_rng(i).integers(0, 256, (size, size, 3), dtype=np.uint8)
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(pixels).save(paths[-1])
    reference = {"name": "efficientnet-lite0", "kind": "efficientnet-lite0", "sha256": "abc",
                 "image_size": 32, "pipeline": "backbones.auto"}
    features = extract_backbone_features(reference, paths)
    expected = [preprocessor.normalise(preprocessor.to_uint8(Image.open(p))).mean(dim=(2, 3))
                for p in paths]
    np.testing.assert_allclose(features, torch.cat(expected).numpy(), rtol=1e-6)
    with pytest.raises(UnseenInputError, match="sha256"):
        extract_backbone_features({**reference, "sha256": "def"}, paths)


def test_shapes_model_extracts_descriptors_from_image_files(tmp_path):
    """The rendered `shapes` set records its image-descriptor pipeline: a model directory
    trained on it scores the PNG files exactly as it scores their stored features."""
    from unseen.data.rendered import load_rendered

    benchmark = load_rendered(0, cache_dir=tmp_path / "data", images_per_class=6,
                              progress=False)
    spec = RunSpec(method="eszsl", dataset="shapes", protocol="paper", out=str(tmp_path / "run"))
    Runner(spec, load_benchmark=lambda spec, index: benchmark).run()
    GZSLModel.from_run(tmp_path / "run", load_benchmark=lambda spec, p: benchmark
                       ).save_pretrained(tmp_path / "model")
    model = GZSLModel.from_pretrained(tmp_path / "model")
    assert model.backbone["pipeline"] == "image-descriptor"
    rows = benchmark.test_unseen_idx[:4]
    root = Path(benchmark.source["image_root"])
    paths = [root / benchmark.image_files[row] for row in rows]
    torch.testing.assert_close(model.scores(paths), model.scores(benchmark.features[rows]))
