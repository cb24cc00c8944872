"""`unseen predict` for a feature method on the embedded benchmark: the run records the
backbone, new image files go through the same EfficientNet-Lite0 features and scaling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from portable_fixtures import animals

from unseen.data.embedded import load_embedded_images
from unseen.errors import UnseenInputError
from unseen.predict import format_predictions, predict
from unseen.runner import Runner, RunSpec


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    benchmark = animals(0)
    out = tmp_path_factory.mktemp("predict-run") / "run"
    spec = RunSpec(method="eszsl", dataset="animals", protocol="paper", out=str(out))
    Runner(spec, load_benchmark=lambda spec, index: benchmark).run()
    return out, benchmark, tmp_path_factory.mktemp("images")


def test_predict_scores_new_image_files_with_the_runs_backbone(trained_run, monkeypatch):
    out, benchmark, image_dir = trained_run
    monkeypatch.setattr("unseen.data.loading.load_dataset",
                        lambda name, data_root=None, partition=0: benchmark)
    images = load_embedded_images(benchmark)
    rows = benchmark.trainval_idx[:: max(benchmark.trainval_idx.size // 40, 1)]
    paths = []
    for row in rows:
        path = Path(image_dir) / f"{row}.png"
        Image.fromarray(np.asarray(images[row])).save(path)
        paths.append(str(path))
    predictions = predict(out, paths, top_k=3)
    assert len(predictions) == len(paths) and all(len(p["top"]) == 3 for p in predictions)
    names = [benchmark.class_names[c] for c in benchmark.labels[rows]]
    top1 = [p["top"][0]["class"] for p in predictions]
    accuracy = np.mean([a == b for a, b in zip(top1, names, strict=True)])
    assert accuracy > 0.5  # training images of seen classes; chance is 0.1
    unseen_names = {benchmark.class_names[c] for c in benchmark.unseen_classes}
    flags = {e["class"]: e["seen"] for p in predictions for e in p["top"]}
    assert all(flags[name] == (name not in unseen_names) for name in flags)
    assert "[unseen]" in format_predictions(predictions) or all(flags.values())


def test_predict_refuses_a_missing_image(trained_run):
    out, _, _ = trained_run
    with pytest.raises(UnseenInputError, match="no such file"):
        predict(out, ["/nonexistent/image.png"])
