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

from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from unseen.evaluation.curve import SeenUnseenCurve, ausuc
from unseen.io import atomic_write

DPI = 100


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
                         title: str = "training", loss_keys: Sequence[str] | None = None
                         ) -> Path | None:
    """Write `training_curves_figure(rows, loss_keys, title)` as a PNG; None (and no file)
    when there is nothing to draw."""
    figure = training_curves_figure(rows, loss_keys, title)
    return None if figure is None else _save(figure, path)


def training_curves_figure(rows: Sequence[dict[str, Any]], loss_keys: Sequence[str] | None = None,
                           title: str = "training") -> Figure | None:
    """Small multiples of the per-epoch H and losses: one panel per phase (validation,
    validation2, ..., test), one axes per quantity, each line the mean over seeds with a
    min-max band, so that phases are never joined and scales never crush each other.

    `rows` are the runner's metrics rows (seed, phase, 0-based epoch, H, `loss_<name>`...;
    numbers or CSV strings, empty means missing). `loss_keys` names the losses to draw (None:
    every `loss_*` column); other columns (counters, U, S, candidates) are not drawn. Phases
    with fewer than two epochs are left out; None when no phase is left (a one-epoch method).
    """
    columns = _drawn_columns(rows, loss_keys)
    panels = {}
    for phase in dict.fromkeys(str(row.get("phase", "")) for row in rows):
        mine = [row for row in rows if str(row.get("phase", "")) == phase]
        epochs = {_number(row.get("epoch")) for row in mine} - {None}
        if len(epochs) >= 2:
            panels[phase] = {column: band for column in columns
                             if (band := _seed_band(mine, column)) is not None}
    panels = {phase: bands for phase, bands in panels.items() if bands}
    if not panels:
        return None
    width = math.ceil(len(columns) / math.ceil(len(columns) / _MAX_COLUMNS))
    grid_rows = {phase: math.ceil(len(bands) / width) for phase, bands in panels.items()}
    figure = _figure((_CELL_SIZE[0] * width,
                      sum(_CELL_SIZE[1] * n + 0.4 for n in grid_rows.values()) + 0.6))
    colors = _colors(columns)
    seeds = len({str(row.get("seed", "")) for row in rows})
    subfigures = figure.subfigures(len(panels), 1, squeeze=False)[:, 0]
    for subfigure, (phase, bands) in zip(subfigures, panels.items(), strict=True):
        subfigure.suptitle(f"phase: {phase}", fontsize="medium", fontweight="bold")
        grid = subfigure.subplots(grid_rows[phase], width, squeeze=False)
        cells = list(grid.flat)
        for axes, (column, (epochs, mean, low, high)) in zip(cells, bands.items(), strict=False):
            axes.plot(epochs, mean, color=colors[column], linewidth=1.6)
            if seeds > 1:
                axes.fill_between(epochs, low, high, color=colors[column], alpha=0.25,
                                  linewidth=0)
            axes.set_title(_column_title(column, phase), fontsize="medium")
            axes.set_xlabel("epoch", fontsize="small")
            axes.tick_params(labelsize="small")
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
            axes.ticklabel_format(axis="y", useOffset=False)
            axes.grid(alpha=0.3)
        for axes in cells[len(bands):]:
            axes.set_visible(False)
    handles = [Line2D([], [], color="0.3", linewidth=1.6,
                      label=f"mean over {seeds} seed{'s' if seeds > 1 else ''}")]
    if seeds > 1:
        handles.append(Patch(color="0.3", alpha=0.25, label="min-max over seeds"))
    figure.suptitle(title, fontweight="bold")
    figure.legend(handles=handles, loc="outside upper right", ncols=len(handles),
                  fontsize="small", frameon=False)
    return figure


_MAX_COLUMNS = 5  # axes per row of a phase panel (rows are filled evenly)
_CELL_SIZE = (3.2, 2.4)  # inches per axes


def _drawn_columns(rows: Sequence[dict[str, Any]], loss_keys: Sequence[str] | None
                   ) -> list[str]:
    """H first, then the loss columns in the declared order; only those with a number."""
    present = list(dict.fromkeys(key for row in rows for key in row
                                 if _number(row.get(key)) is not None))
    losses = ([key for key in present if key.startswith("loss_")] if loss_keys is None
              else [f"loss_{name}" for name in loss_keys if f"loss_{name}" in present])
    return (["H"] if "H" in present else []) + losses


def _seed_band(rows: Sequence[dict[str, Any]], column: str
               ) -> tuple[list[float], list[float], list[float], list[float]] | None:
    """(1-based epochs, mean, min, max) of `column` over the seeds of `rows`, per epoch;
    H in percent."""
    scale = 100.0 if column == "H" else 1.0
    by_epoch: dict[float, list[float]] = {}
    for row in rows:
        epoch, value = _number(row.get("epoch")), _number(row.get(column))
        if epoch is not None and value is not None:
            by_epoch.setdefault(epoch, []).append(value * scale)
    if not by_epoch:
        return None
    epochs = sorted(by_epoch)
    return ([e + 1 for e in epochs], [sum(by_epoch[e]) / len(by_epoch[e]) for e in epochs],
            [min(by_epoch[e]) for e in epochs], [max(by_epoch[e]) for e in epochs])


def _column_title(column: str, phase: str) -> str:
    if column == "H":
        return f"{'validation' if phase.startswith('validation') else 'test'} H (%)"
    return column.removeprefix("loss_")


def _colors(columns: Sequence[str]) -> dict[str, Any]:
    """H in black; losses in distinct colours of a qualitative map (tab10 without its grey,
    which the legend's band uses; tab20 beyond nine losses)."""
    losses = [column for column in columns if column != "H"]
    palette = ([colormaps["tab10"](i) for i in range(10) if i != 7] if len(losses) <= 9
               else [colormaps["tab20"](i) for i in range(20)])
    return {"H": "black", **{column: palette[i % len(palette)]
                             for i, column in enumerate(losses)}}


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
