"""PNG plots of a seen-unseen curve and of per-epoch training curves (matplotlib, Agg, no GUI).

Figures are built with `matplotlib.figure.Figure` directly (no pyplot global state) and written
atomically, so a run directory never holds a half-written image.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from unseen.evaluation.curve import SeenUnseenCurve, ausuc
from unseen.io import atomic_write

DPI = 100
METRIC_KEYS = ("H", "U", "S", "T1")
NON_LOSS_KEYS = {"seed", "phase", "epoch", "candidate", "gamma", "AUSUC", "split", *METRIC_KEYS}


def plot_seen_unseen_curve(curve: SeenUnseenCurve, path: str | os.PathLike, title: str,
                           marker: tuple[float, float] | None = None,
                           size: tuple[float, float] = (5.0, 5.0)) -> Path:
    """Plot S (y) against U (x) over all gammas, with AUSUC in the legend and an optional
    (U, S) marker for the operating point; `size` is in inches at 100 dpi."""
    figure = _figure(size)
    axes = figure.add_subplot()
    area = ausuc(curve)
    label = f"AUSUC = {area:.4f}" if not math.isnan(area) else "AUSUC undefined"
    axes.plot(curve.unseen_accuracy, curve.seen_accuracy, color="tab:blue", linewidth=1.5,
              label=label)
    if marker is not None:
        unseen, seen = marker
        axes.plot([unseen], [seen], marker="o", color="tab:red", linestyle="none",
                  label=f"U = {unseen:.3f}, S = {seen:.3f}")
    axes.set_xlim(0.0, 1.0)
    axes.set_ylim(0.0, 1.0)
    axes.set_xlabel("U: unseen-class accuracy")
    axes.set_ylabel("S: seen-class accuracy")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(loc="upper right")
    return _save(figure, path)


def plot_training_curves(rows: Sequence[dict[str, Any]], path: str | os.PathLike,
                         title: str = "training", size: tuple[float, float] = (10.0, 4.0),
                         series: str = "candidate") -> Path:
    """Plot metric columns (H, U, S, T1) per value of the `series` column, and losses, against
    epoch.

    `rows` are the runner's per-epoch CSV rows: keys epoch, candidate, U, S, H, T1, gamma and
    loss names; values may be numbers or strings (as read back from CSV), empty means missing.
    Losses are drawn in a second panel, once per epoch, on a log scale when all are positive.
    """
    if not rows:
        raise ValueError("rows: expected at least one per-epoch row, found none")
    metric_keys = [key for key in METRIC_KEYS if any(_number(row.get(key)) is not None
                                                      for row in rows)]
    loss_keys = sorted({key for row in rows for key in row if key not in NON_LOSS_KEYS
                        and _number(row[key]) is not None})
    figure = _figure(size)
    panels = figure.subplots(1, 2 if loss_keys else 1, squeeze=False)[0]
    groups = list(dict.fromkeys(str(row.get(series, "")) for row in rows))
    styles = {"H": "-", "U": "--", "S": ":", "T1": "-."}
    colors = [f"C{i % 10}" for i in range(len(groups))]
    for group, color in zip(groups, colors, strict=True):
        mine = [row for row in rows if str(row.get(series, "")) == group]
        for key in metric_keys:
            epochs, values = _series(mine, key)
            name = f"{key} {group}".strip() if len(groups) > 1 else key
            panels[0].plot(epochs, values, linestyle=styles[key], color=color, label=name)
    panels[0].set_xlabel("epoch")
    panels[0].set_ylabel("accuracy")
    panels[0].set_ylim(0.0, 1.0)
    panels[0].set_title(title)
    panels[0].grid(alpha=0.3)
    if metric_keys:
        panels[0].legend(fontsize="small")
    if loss_keys:
        by_epoch = {_number(row.get("epoch")): row for row in rows}  # losses are per epoch
        ordered = [by_epoch[epoch] for epoch in sorted(by_epoch, key=_sort_key)]
        positive = True
        for key in loss_keys:
            epochs, values = _series(ordered, key)
            positive &= all(v > 0 for v in values if not math.isnan(v))
            panels[1].plot(epochs, values, label=key)
        if positive:
            panels[1].set_yscale("log")
        panels[1].set_xlabel("epoch")
        panels[1].set_ylabel("loss")
        panels[1].grid(alpha=0.3)
        panels[1].legend(fontsize="small")
    return _save(figure, path)


def _series(rows: Sequence[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    pairs = sorted(((_number(row.get("epoch")), _number(row.get(key))) for row in rows
                    if _number(row.get("epoch")) is not None), key=lambda pair: pair[0])
    return ([float(epoch) for epoch, _ in pairs],
            [math.nan if value is None else value for _, value in pairs])


def _sort_key(epoch: float | None) -> float:
    return -math.inf if epoch is None else epoch


def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _figure(size: tuple[float, float]) -> Figure:
    figure = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: str | os.PathLike) -> Path:
    return atomic_write(path, lambda handle: figure.savefig(handle, format="png", dpi=DPI))
