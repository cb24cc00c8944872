"""results.json: per-seed and aggregated figures, and the plots that go with them.

Schema (version 1; all accuracies are fractions in [0, 1]):

    {
      "schema_version": 1,
      "method": "cegzsl", "dataset": "AWA2", "protocol": "clean" | "paper",
      "protocol_description": "...", "preset": "AWA2" | null,
      "seeds": [0, 1, 2],
      "U": 0.61, "S": 0.74, "H": 0.67, "T1": 0.69, "AUSUC": 0.52, "gamma": 0.3,   # means
      "aggregate": {"U": {"mean": ..., "std": ..., "values": [...]}, ...},
      "per_seed": [{"seed": 0, "partition": 0, "U": ..., "S": ..., "H": ..., "T1": ...,
                    "AUSUC": ..., "gamma": ..., "per_class_accuracy": [...],
                    "selected": {"epoch": 12, "candidate": "classifier_epoch=20",
                                 "zsl_epoch": 12, "zsl_candidate": "...",
                                 "on": "validation" | "test"},
                    "seconds": 81.2}, ...]
    }

`gamma` is in the units of the method's scores (log-probabilities for CE-GZSL, probabilities
for DUET); `std` is the sample standard deviation over seeds (0 for one seed).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

METRICS = ("U", "S", "H", "T1", "AUSUC", "gamma")
SCHEMA_VERSION = 1


def aggregate_results(config: dict[str, Any], per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """Combine per-seed results into the results.json document."""
    aggregate = {}
    for metric in METRICS:
        values = [float(r[metric]) for r in per_seed if r.get(metric) is not None]
        if values:
            aggregate[metric] = {"mean": float(np.mean(values)),
                                 "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                                 "values": values}
    return {
        "schema_version": SCHEMA_VERSION,
        "method": config["method"],
        "dataset": config["dataset"],
        "protocol": config["protocol"],
        "protocol_description": config["protocol_description"],
        "preset": config.get("preset"),
        "seeds": [r["seed"] for r in per_seed],
        **{metric: aggregate[metric]["mean"] for metric in aggregate},
        "aggregate": aggregate,
        "per_seed": per_seed,
    }


def format_table(results: dict[str, Any]) -> str:
    """A plain-text results table (percentages, mean +- std over seeds)."""
    aggregate = results["aggregate"]
    header = (f"{results['method']} on {results['dataset']} | protocol: {results['protocol']}"
              f" | seeds: {', '.join(str(s) for s in results['seeds'])}")
    cells = []
    for metric in ("U", "S", "H", "T1", "AUSUC"):
        if metric in aggregate:
            mean, std = aggregate[metric]["mean"] * 100, aggregate[metric]["std"] * 100
            cells.append(f"{metric} {mean:5.1f} ± {std:4.1f}")
    if "gamma" in aggregate:
        cells.append(f"gamma {aggregate['gamma']['mean']:.3g}")
    lines = [header, "  ".join(cells)]
    if results["protocol"] == "paper":
        lines.append("note: paper protocol = epoch and classifier selected on the TEST set "
                     "(as the reference code does); not an honest estimate")
    return "\n".join(lines)


def write_plots(run_dir, results: dict[str, Any], rows: list[dict[str, Any]],
                loss_keys: Sequence[str] | None = None) -> list[Path]:
    """The seen-unseen curve of the first seed's final test scores, and the per-epoch H and
    losses of every phase and seed (no training_curves.png when no phase has two epochs);
    returns the files written. `loss_keys`: the method's losses (None: every loss_* column)."""

    from unseen.evaluation import seen_unseen_curve
    from unseen.evaluation.plots import plot_seen_unseen_curve, plot_training_curves

    written = []
    first = results["per_seed"][0] if results["per_seed"] else None
    if first is not None and run_dir.scores_path(first["seed"]).is_file():
        saved = run_dir.load_checkpoint(run_dir.scores_path(first["seed"]))
        curve = seen_unseen_curve(saved["scores"], saved["labels"], saved["is_seen_class"])
        written.append(plot_seen_unseen_curve(
            curve, run_dir.root / "seen_unseen_curve.png",
            title=f"{results['method']} on {results['dataset']} ({results['protocol']}), "
                  f"seed {first['seed']}: AUSUC {first['AUSUC'] * 100:.1f}",
            marker=(first["U"], first["S"])))
    seeds = ", ".join(str(seed) for seed in dict.fromkeys(row.get("seed") for row in rows))
    curves = run_dir.root / "training_curves.png"
    path = plot_training_curves(rows, curves, loss_keys=loss_keys,
                                title=f"{results['method']} on {results['dataset']} "
                                      f"({results['protocol']}), seeds {seeds}") if rows else None
    if path is None:
        curves.unlink(missing_ok=True)  # a stale plot of an earlier run would mislead
    else:
        written.append(path)
    return written
