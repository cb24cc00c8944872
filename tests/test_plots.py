"""Plots are real PNGs of the requested size, written atomically."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from unseen.evaluation import seen_unseen_curve
from unseen.evaluation.plots import plot_seen_unseen_curve, plot_training_curves


def _curve():
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(200, 10, generator=generator)
    labels = torch.randint(0, 10, (200,), generator=generator)
    scores[torch.arange(200), labels] += 1.5
    return seen_unseen_curve(scores, labels, torch.arange(10) < 6)


def _pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def test_seen_unseen_curve_png(tmp_path):
    path = plot_seen_unseen_curve(_curve(), tmp_path / "plots" / "curve.png", "test split",
                                  marker=(0.4, 0.6))
    assert path == tmp_path / "plots" / "curve.png"
    assert path.stat().st_size > 5_000
    pixels = _pixels(path)
    assert pixels.shape == (500, 500, 3)  # 5 x 5 inches at 100 dpi
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20  # lines and text, not a blank
    red = (pixels[..., 0] > 180) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
    assert red.sum() > 10  # the operating-point marker is drawn
    assert [p.name for p in path.parent.iterdir()] == ["curve.png"]  # no temporary left behind


def test_training_curves_png_from_csv_like_rows(tmp_path):
    rows = []
    for epoch in range(6):
        for candidate in ("classifier", "embedding"):
            rows.append({"epoch": str(epoch), "candidate": candidate, "U": f"{0.1 * epoch:.2f}",
                         "S": "0.7", "H": "", "T1": 0.3 + 0.05 * epoch, "gamma": "0.1",
                         "loss_d": 2.0 / (epoch + 1), "loss_g": "1.5"})
    path = plot_training_curves(rows, tmp_path / "training.png")
    assert path.stat().st_size > 5_000
    assert _pixels(path).shape == (400, 1000, 3)
    single = plot_training_curves([{"epoch": 0, "candidate": "c", "H": 0.5, "U": 0.4, "S": 0.6}],
                                  tmp_path / "single.png", size=(4.0, 3.0))
    assert _pixels(single).shape == (300, 400, 3)
    with pytest.raises(ValueError, match="at least one"):
        plot_training_curves([], tmp_path / "empty.png")
