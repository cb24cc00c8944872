"""The leaderboard of `unseen bench`: leaderboard.md, leaderboard.csv and one seen-unseen curve
plot per data set, from the grid's run directories (results.json and saved test scores).

Figures are percent, mean ± sample std over seeds, exactly the `aggregate` of each run's
results.json. With both protocols, "clean − paper" is H(clean) − H(paper), averaged over the
seeds that both runs have (the same seed is the same partition and initialisation in both):
how much the optimistic paper protocol's H moves when every choice is made on validation.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from unseen.io import atomic_write, atomic_write_text

if TYPE_CHECKING:
    from unseen.bench import CellOutcome

METRICS = ("U", "S", "H", "T1", "AUSUC")
PROTOCOL_TITLES = {
    "clean": "clean (epoch, classifier candidate and calibrated-stacking gamma chosen on a "
             "validation split of trainval; test used once)",
    "paper": "paper (epoch and classifier candidate chosen on the TEST set, published gamma; "
             "optimistic, as the reference code does)",
}


def write_leaderboard(out: str | os.PathLike, outcomes: list[CellOutcome],
                      protocols: tuple[str, ...], seeds: list[int]) -> list[Path]:
    """Write OUT/leaderboard.md, OUT/leaderboard.csv and OUT/curves-DATASET.png (atomically);
    returns their paths in that order."""
    out = Path(out)
    plots = []
    for label in dict.fromkeys(outcome.cell.label for outcome in outcomes):
        mine = [outcome for outcome in outcomes if outcome.cell.label == label]
        path = plot_dataset_curves(mine, out / curve_file(label), label)
        if path is not None:
            plots.append(path)
    return [atomic_write_text(out / "leaderboard.md",
                              leaderboard_markdown(outcomes, protocols, seeds, out)),
            atomic_write_text(out / "leaderboard.csv", leaderboard_csv(outcomes, out)), *plots]


def curve_file(label: str) -> str:
    return f"curves-{label}.png"


# -- markdown ------------------------------------------------------------------------------------
def leaderboard_markdown(outcomes: list[CellOutcome], protocols: tuple[str, ...],
                         seeds: list[int], out: Path) -> str:
    both = len(protocols) > 1
    if both:
        title = "# `unseen bench` — protocols: paper and clean, side by side"
        lines = [title, "", *(f"- {PROTOCOL_TITLES[p]}" for p in protocols), "",
                 "Per data set, the cost of honesty: H(clean) − H(paper), the change in H when "
                 "no choice is made on the test set.", ""]
    else:
        lines = [f"# `unseen bench` — protocol: {PROTOCOL_TITLES[protocols[0]]}", ""]
    lines += [f"Seeds {', '.join(str(s) for s in seeds)}. Percent, mean ± sample std over "
              "seeds; s/seed: mean training seconds per seed; bold: the best H per data set"
              + (" and protocol" if both else "") + ". Each run's report.md has the choices per "
              "seed and the settings.", ""]
    for label in dict.fromkeys(outcome.cell.label for outcome in outcomes):
        mine = [outcome for outcome in outcomes if outcome.cell.label == label]
        lines += [f"## {label}", ""]
        if mine[0].cell.dataset != label:
            lines += [f"Data set: `{mine[0].cell.dataset}`", ""]
        lines += _results_table(mine, both, out)
        failed = [outcome for outcome in mine if outcome.results is None]
        if failed:
            lines += ["", "Failed cells:", ""] + [f"- {o.cell.name}: {o.error}" for o in failed]
        if both:
            lines += ["", "Cost of honesty:", "", *_cost_table(mine)]
        if (out / curve_file(label)).is_file():
            lines += ["", f"![Seen-unseen curves on {label}]({curve_file(label)})"]
        lines.append("")
    return "\n".join(lines) + "\n"


def _results_table(outcomes: list[CellOutcome], both: bool, out: Path) -> list[str]:
    best = {}
    for outcome in outcomes:
        h = _mean(outcome, "H")
        if h is not None and h > best.get(outcome.cell.protocol, -math.inf):
            best[outcome.cell.protocol] = h
    head = ["method", *(["protocol"] if both else []), *METRICS, "seeds", "s/seed", "run"]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for outcome in outcomes:
        cell = outcome.cell
        report = Path(os.path.relpath(cell.run_dir, out)).as_posix() + "/report.md"
        first = [cell.method, *([cell.protocol] if both else [])]
        if outcome.results is None:
            cells = ["failed", *[""] * (len(METRICS) - 1), "", "", f"[log or report]({report})"]
        else:
            aggregate = outcome.results["aggregate"]
            cells = []
            for metric in METRICS:
                text = _mean_std(aggregate.get(metric))
                if metric == "H" and _mean(outcome, "H") == best.get(cell.protocol):
                    text = f"**{text}**"
                cells.append(text)
            seconds = seconds_per_seed(outcome.results)
            cells += [", ".join(str(s) for s in outcome.results["seeds"]),
                      "-" if seconds is None else f"{seconds:.1f}", f"[report]({report})"]
        lines.append("| " + " | ".join(first + cells) + " |")
    return lines


def _cost_table(outcomes: list[CellOutcome]) -> list[str]:
    lines = ["| method | H paper | H clean | clean − paper |", "|---|---|---|---|"]
    for method in dict.fromkeys(outcome.cell.method for outcome in outcomes):
        pair = {o.cell.protocol: o for o in outcomes if o.cell.method == method}
        paper, clean = pair.get("paper"), pair.get("clean")
        cells = [_mean_std(_aggregate(o, "H")) if o and o.results else "failed"
                 for o in (paper, clean)]
        difference = honesty_cost(paper.results if paper else None,
                                  clean.results if clean else None)
        cells.append("-" if difference is None else
                     f"{difference[0] * 100:+.1f} ± {difference[1] * 100:.1f}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def honesty_cost(paper: dict[str, Any] | None, clean: dict[str, Any] | None
                 ) -> tuple[float, float] | None:
    """(mean, sample std) over shared seeds of H(clean) − H(paper), as fractions; None when
    the two runs share no seed."""
    if paper is None or clean is None:
        return None
    paper_h = {r["seed"]: r["H"] for r in paper["per_seed"] if r.get("H") is not None}
    values = [r["H"] - paper_h[r["seed"]] for r in clean["per_seed"]
              if r.get("H") is not None and r["seed"] in paper_h]
    if not values:
        return None
    return (float(np.mean(values)),
            float(np.std(values, ddof=1)) if len(values) > 1 else 0.0)


# -- csv -------------------------------------------------------------------------------------------
CSV_COLUMNS = ("dataset", "dataset_source", "method", "protocol", "status", "seeds",
               *(f"{m}_{s}_pct" for m in METRICS for s in ("mean", "std")),
               "seconds_per_seed", "H_clean_minus_paper_mean_pct", "H_clean_minus_paper_std_pct",
               "run_dir", "error")


def leaderboard_csv(outcomes: list[CellOutcome], out: Path) -> str:
    """One row per (data set, method, protocol); accuracies in percent (column suffix `_pct`)
    unrounded; the clean − paper columns are on both rows of a pair, empty with one protocol."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, restval="", lineterminator="\n")
    writer.writeheader()
    for outcome in outcomes:
        cell = outcome.cell
        row: dict[str, Any] = {
            "dataset": cell.label, "dataset_source": cell.dataset, "method": cell.method,
            "protocol": cell.protocol, "status": outcome.status,
            "run_dir": Path(os.path.relpath(cell.run_dir, out)).as_posix(),
            "error": outcome.error or ""}
        if outcome.results is not None:
            row["seeds"] = " ".join(str(s) for s in outcome.results["seeds"])
            for metric in METRICS:
                stats = outcome.results["aggregate"].get(metric)
                if stats is not None:
                    row[f"{metric}_mean_pct"] = repr(stats["mean"] * 100)
                    row[f"{metric}_std_pct"] = repr(stats["std"] * 100)
            seconds = seconds_per_seed(outcome.results)
            row["seconds_per_seed"] = "" if seconds is None else f"{seconds:.2f}"
        pair = {o.cell.protocol: o.results for o in outcomes
                if o.cell.method == cell.method and o.cell.label == cell.label}
        difference = honesty_cost(pair.get("paper"), pair.get("clean"))
        if difference is not None:
            row["H_clean_minus_paper_mean_pct"] = repr(difference[0] * 100)
            row["H_clean_minus_paper_std_pct"] = repr(difference[1] * 100)
        writer.writerow(row)
    return buffer.getvalue()


# -- curves ----------------------------------------------------------------------------------------
def plot_dataset_curves(outcomes: list[CellOutcome], path: Path, label: str) -> Path | None:
    """Every finished cell's seen-unseen curve on one data set (its first seed's test scores),
    a colour per method, solid for clean and dashed for paper, a dot at the reported (U, S).
    None (and an old plot removed) when no cell has scores."""
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from unseen.evaluation import ausuc, seen_unseen_curve
    from unseen.rundir import RunDirectory

    figure = Figure(figsize=(6.0, 6.0), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    methods = list(dict.fromkeys(outcome.cell.method for outcome in outcomes))
    palette = colormaps["tab10"]
    drawn, seeds = 0, set()
    for outcome in outcomes:
        if outcome.results is None or not outcome.results["per_seed"]:
            continue
        first = outcome.results["per_seed"][0]
        run_dir = RunDirectory(outcome.cell.run_dir)
        if not run_dir.scores_path(first["seed"]).is_file():
            continue
        saved = run_dir.load_checkpoint(run_dir.scores_path(first["seed"]))
        curve = seen_unseen_curve(saved["scores"], saved["labels"], saved["is_seen_class"])
        color = palette(methods.index(outcome.cell.method) % 10)
        style = "--" if outcome.cell.protocol == "paper" else "-"
        axes.plot(curve.unseen_accuracy, curve.seen_accuracy, style, color=color, linewidth=1.5,
                  label=f"{outcome.cell.method} ({outcome.cell.protocol}): AUSUC "
                        f"{ausuc(curve) * 100:.1f}, H {first['H'] * 100:.1f}")
        axes.plot([first["U"]], [first["S"]], "o", color=color)
        drawn += 1
        seeds.add(first["seed"])
    if not drawn:
        path.unlink(missing_ok=True)  # a stale plot of an earlier grid would mislead
        return None
    axes.set_xlim(0.0, 1.0)
    axes.set_ylim(0.0, 1.0)
    axes.set_xlabel("U: unseen-class accuracy")
    axes.set_ylabel("S: seen-class accuracy")
    axes.set_title(f"{label}: seen-unseen curves (test, seed "
                   f"{', '.join(str(s) for s in sorted(seeds))})\ndot: reported (U, S)",
                   fontsize="medium")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left", fontsize="small")
    return atomic_write(path, lambda handle: figure.savefig(handle, format="png"))


# -- helpers ---------------------------------------------------------------------------------------
def seconds_per_seed(results: dict[str, Any]) -> float | None:
    values = [r["seconds"] for r in results["per_seed"] if r.get("seconds") is not None]
    return float(np.mean(values)) if values else None


def _aggregate(outcome: CellOutcome, metric: str) -> dict[str, Any] | None:
    return None if outcome.results is None else outcome.results["aggregate"].get(metric)


def _mean(outcome: CellOutcome, metric: str) -> float | None:
    stats = _aggregate(outcome, metric)
    return None if stats is None else stats["mean"]


def _mean_std(stats: dict[str, Any] | None) -> str:
    return "-" if stats is None else f"{stats['mean'] * 100:.1f} ± {stats['std'] * 100:.1f}"
