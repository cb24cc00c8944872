"""Plots are real PNGs of the requested size, written atomically; training curves keep phases
and seeds apart and draw only losses and H."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from unseen.evaluation import seen_unseen_curve
from unseen.evaluation.plots import (
    plot_seen_unseen_curve,
    plot_training_curves,
    training_curves_figure,
)


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


def _rows(phases=(("validation", 4), ("test", 3)), seeds=(0, 1)):
    """CSV-like metrics rows: loss `a` is epoch + 10 * seed, loss `b` phase-dependent, and a
    counter that must never be drawn."""
    rows = []
    for seed in seeds:
        for phase, epochs in phases:
            for epoch in range(epochs):
                rows.append({"seed": str(seed), "phase": phase, "epoch": str(epoch),
                             "candidate": f"c{epoch}", "U": "0.5", "S": "0.6",
                             "H": str(0.1 * epoch + 0.1 * seed), "gamma": "0.1",
                             "loss_a": str(epoch + 10 * seed),
                             "loss_b": 100.0 if phase == "test" else 1.0,
                             "loss_batches_without_positives": "3"})
    return rows


def _panels(figure):
    """{phase: {axes title: axes}} of a training-curves figure."""
    return {subfigure.get_suptitle().removeprefix("phase: "):
            {axes.get_title(): axes for axes in subfigure.axes if axes.get_visible()}
            for subfigure in figure.subfigs}


def test_training_curves_one_panel_per_phase_mean_and_band_over_seeds():
    figure = training_curves_figure(_rows(), loss_keys=("a", "b"), title="tiny")
    panels = _panels(figure)
    assert list(panels) == ["validation", "test"]
    assert list(panels["validation"]) == ["validation H (%)", "a", "b"]
    assert list(panels["test"]) == ["test H (%)", "a", "b"]  # counters are not drawn
    for phase, epochs in (("validation", [1, 2, 3, 4]), ("test", [1, 2, 3])):
        for axes in panels[phase].values():
            (line,) = axes.get_lines()  # one series per axes: phases are never spliced
            assert list(line.get_xdata()) == epochs
    mean_a = panels["validation"]["a"].get_lines()[0].get_ydata()
    assert list(mean_a) == pytest.approx([5.0, 6.0, 7.0, 8.0])  # mean of seeds 0 and 1
    assert set(panels["test"]["b"].get_lines()[0].get_ydata()) == {100.0}
    assert set(panels["validation"]["b"].get_lines()[0].get_ydata()) == {1.0}
    h = panels["validation"]["validation H (%)"].get_lines()[0].get_ydata()
    assert list(h) == pytest.approx([5.0, 15.0, 25.0, 35.0])  # percent
    band = panels["validation"]["a"].collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(0.0) and band.max() == pytest.approx(13.0)  # min-max


def test_training_curves_without_declared_losses_draw_every_loss_column():
    panels = _panels(training_curves_figure(_rows(seeds=(0,))))
    assert list(panels["validation"]) == ["validation H (%)", "a", "b",
                                          "batches_without_positives"]
    assert not panels["validation"]["a"].collections  # one seed: no band


def test_training_curves_leave_out_one_epoch_phases_and_write_nothing_for_one_epoch_runs(
        tmp_path):
    figure = training_curves_figure(_rows(phases=(("validation", 3), ("test", 1))), ("a",))
    assert list(_panels(figure)) == ["validation"]
    one_epoch = _rows(phases=(("validation", 1), ("test", 1)))  # ESZSL
    assert training_curves_figure(one_epoch, ("a",)) is None
    assert plot_training_curves(one_epoch, tmp_path / "curves.png", loss_keys=("a",)) is None
    assert not (tmp_path / "curves.png").exists()
    assert plot_training_curves([], tmp_path / "curves.png") is None


def test_training_curves_png(tmp_path):
    path = plot_training_curves(_rows(), tmp_path / "out" / "training.png", "tiny", ("a", "b"))
    assert path == tmp_path / "out" / "training.png"
    assert path.stat().st_size > 5_000
    pixels = _pixels(path)
    assert pixels.shape[1] == 3 * 320  # three axes of 3.2 inches at 100 dpi
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20
    assert [p.name for p in path.parent.iterdir()] == ["training.png"]
