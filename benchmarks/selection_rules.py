"""Score clean-protocol selection rules against the paper protocol from finished bench runs.

    PYTHONPATH=src python benchmarks/selection_rules.py runs/bench-a [runs/bench-b ...] \
        [--decision animals APY-semi ...] [--csv rules.csv]

Reads every pair of cells `runs/METHOD-DATASET-clean` / `runs/METHOD-DATASET-paper` of the
given `unseen bench` directories, both run with `--set record_curves=true` (the clean one with
`val_folds=3`, so that fold 0 alone is the one-fold rule). Every rule (number of validation
folds, epoch window, how gamma is chosen) is applied to the recorded validation curves; the
test H of its choice is read off the paper run's recorded test curves, which are the same
training on trainval as the clean protocol's retrain (same seed, same task, same config but
the epoch count). The script checks that assumption: the rule the clean run actually used must
reproduce its reported test H (`check` column, |difference| in points).

Per rule it prints mean |H_clean - H_paper| over (method, data set) of the seed-mean paired
difference, the mean signed difference and the mean clean H, on the decision data sets and
on the others.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unseen.evaluation import SeenUnseenCurve, best_gamma
from unseen.selection import load_curves, window_mean


@dataclass(frozen=True)
class Rule:
    folds: int  # validation folds averaged (the first `folds` recorded)
    window: int  # epochs averaged when choosing the epoch
    # fold_mean: each fold's best gamma, averaged (the runner's rule); curve_mean: the argmax
    # of the folds' mean H(gamma) curve; half: fold_mean shrunk halfway to 0 (the runner's
    # `gamma_shrink=0.5`); zero: gamma 0
    # (`--set gamma=0`), the epoch and candidate chosen by their validation H at gamma 0.
    gamma: str

    @property
    def name(self) -> str:
        return f"folds={self.folds} window={self.window} gamma={self.gamma}"


RULES = [Rule(f, w, g) for g in ("fold_mean", "curve_mean", "half", "zero") for f in (1, 3)
         for w in (1, 3, 5) if not (g == "curve_mean" and f == 1)]


def h_at(curve: SeenUnseenCurve, gammas: np.ndarray) -> np.ndarray:
    """H of calibrated stacking at each of `gammas` (exact, as `SeenUnseenCurve.at`)."""
    j = np.searchsorted(curve.gammas, gammas, side="left")
    u, s = curve.unseen_accuracy[j], curve.seen_accuracy[j]
    if curve.gammas.size:
        k = np.minimum(j, curve.gammas.size - 1)
        on_break = (j < curve.gammas.size) & (curve.gammas[k] == gammas)
        u = np.where(on_break, curve.unseen_at_gammas[k], u)
        s = np.where(on_break, curve.seen_at_gammas[k], s)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(u + s == 0, 0.0, 2 * u * s / (u + s))


def midpoints(breaks: np.ndarray) -> np.ndarray:
    """One gamma inside each open interval between sorted `breaks` (as `interval_gammas`)."""
    if breaks.size == 0:
        return np.zeros(1)
    first = breaks[0] - max(1.0, abs(float(breaks[0])))
    last = breaks[-1] + max(1.0, abs(float(breaks[-1])))
    return np.concatenate([[first], breaks[:-1] + (breaks[1:] - breaks[:-1]) / 2, [last]])


def score(curves: list[SeenUnseenCurve], rule: Rule) -> tuple[float, float]:
    """(validation score, gamma) of one (epoch, candidate) over the folds' curves."""
    if rule.gamma == "zero":
        return float(np.mean([h_at(c, np.zeros(1))[0] for c in curves])), 0.0
    if rule.gamma in ("fold_mean", "half"):  # each fold's best gamma, as the runner chooses it
        best = [best_gamma(c) for c in curves]
        gamma = float(np.mean([b[0] for b in best]))
        return float(np.mean([b[3] for b in best])), gamma / 2 if rule.gamma == "half" else gamma
    grid = midpoints(np.unique(np.concatenate([c.gammas for c in curves])))
    mean_h = np.mean([h_at(c, grid) for c in curves], axis=0)
    k = int(np.nanargmax(mean_h))
    return float(mean_h[k]), float(grid[k])


def choose(folds: list[list[tuple[int, int | None, dict]]], rule: Rule
           ) -> tuple[tuple[int, int | None], str, float]:
    """((epoch, step), candidate, gamma) that `rule` picks from the folds' recorded curves,
    mirroring `SelectionMonitor` (one fold) and `selection.combine_folds` (several)."""
    used = folds[:rule.folds]
    evaluations = min(len(f) for f in used)
    tables = []
    for index in range(evaluations):
        names = [n for n in used[0][index][2] if all(n in f[index][2] for f in used)]
        tables.append({n: score([f[index][2][n] for f in used], rule) for n in names})
    best_per_epoch = [max((h for h, _ in t.values()), default=-1.0) for t in tables]
    window = max(1, min(rule.window, evaluations))
    windowed = [window_mean(best_per_epoch[:i + 1], window) for i in range(evaluations)]
    index = int(np.argmax(windowed))
    table = tables[index]
    candidate = max(table, key=lambda n: table[n][0])
    epoch, step, _ = used[0][index]
    return (epoch, step), candidate, table[candidate][1]


def test_h(test: list[tuple[int, int | None, dict]], point: tuple[int, int | None],
           candidate: str, gamma: float) -> float:
    """H on test of `candidate` at `point` and `gamma` (the clean protocol's retrain)."""
    for epoch, step, curves in test:
        if (epoch, step) == point:
            curve = curves[candidate] if candidate in curves else list(curves.values())[-1]
            return float(h_at(curve, np.array([gamma]))[0])
    raise ValueError(f"no test evaluation at {point}")


def pairs(bench_dirs: list[Path]) -> list[tuple[str, str, Path, Path]]:
    """(method, data set, clean run, paper run) of every complete pair."""
    found = []
    for bench in bench_dirs:
        for clean in sorted((bench / "runs").glob("*-clean")):
            paper = clean.with_name(clean.name[:-len("clean")] + "paper")
            if (clean / "results.json").is_file() and (paper / "results.json").is_file():
                config = json.loads((clean / "config.json").read_text())
                method = config["method"]
                label = clean.name[len(method) + 1:-len("-clean")]
                found.append((method, label, clean, paper))
    return found


def analyse(method: str, label: str, clean: Path, paper: Path) -> list[dict]:
    clean_results = json.loads((clean / "results.json").read_text())
    paper_results = json.loads((paper / "results.json").read_text())
    options = json.loads((clean / "config.json").read_text())["run_options"]
    shrink = options.get("gamma_shrink", 1.0)  # runs made before the option: 1
    used = Rule(options["val_folds"], options["selection_window"],
                {1.0: "fold_mean", 0.5: "half"}.get(shrink, "other"))
    paper_h = {r["seed"]: r["H"] for r in paper_results["per_seed"]}
    rows = []
    for result in clean_results["per_seed"]:
        seed = result["seed"]
        if seed not in paper_h:
            continue
        phases = ["validation"] + [f"validation{k}" for k in range(2, options["val_folds"] + 1)]
        folds = [load_curves(clean / "curves" / f"seed{seed}_{phase}.pt") for phase in phases]
        test = load_curves(paper / "curves" / f"seed{seed}_test.pt")
        for rule in RULES:
            if rule.folds > len(folds):
                continue
            point, candidate, gamma = choose(folds, rule)
            h = test_h(test, point, candidate, gamma)
            check = abs(h - result["H"]) * 100 if rule == used else math.nan
            rows.append({"method": method, "dataset": label, "seed": seed, "rule": rule.name,
                         "epoch": point[0], "candidate": candidate, "gamma": gamma,
                         "H_clean": h * 100, "H_paper": paper_h[seed] * 100,
                         "check": check})
    return rows


def summarise(rows: list[dict], decision: set[str]) -> None:
    cells: dict[tuple[str, str, str], list[dict]] = {}
    for row in rows:
        cells.setdefault((row["rule"], row["method"], row["dataset"]), []).append(row)
    checks = [r["check"] for r in rows if not math.isnan(r["check"])]
    print(f"check: the clean runs' own rule reproduces their test H within "
          f"{max(checks, default=math.nan):.2e} points ({len(checks)} seed runs)")
    for subset, keep in (("decision", lambda d: d in decision),
                         ("report", lambda d: d not in decision)):
        print(f"\n{subset} data sets: mean over (method, data set) of the seed-mean H, points")
        print("| rule | mean abs(clean - paper) | mean clean - paper | mean under-report | "
              "mean clean H | mean paper H | cells |")
        print("|---|---|---|---|---|---|---|")
        for rule in RULES:
            diffs, hs, ps = [], [], []
            for (name, _, dataset), seeds in cells.items():
                if name != rule.name or not keep(dataset):
                    continue
                diffs.append(np.mean([r["H_clean"] - r["H_paper"] for r in seeds]))
                hs.append(np.mean([r["H_clean"] for r in seeds]))
                ps.append(np.mean([r["H_paper"] for r in seeds]))
            if diffs:
                # under-report: how far clean H falls short of paper H (0 where it does not)
                under = np.mean(np.maximum(0.0, -np.asarray(diffs)))
                print(f"| {rule.name} | {np.mean(np.abs(diffs)):.2f} | {np.mean(diffs):+.2f} | "
                      f"{under:.2f} | {np.mean(hs):.2f} | {np.mean(ps):.2f} | {len(diffs)} |")
        methods = sorted({method for _, method, dataset in cells if keep(dataset)})
        print(f"\n{subset} data sets, per method: clean H (clean - paper), mean over data sets")
        print("| rule | " + " | ".join(methods) + " |")
        print("|---" * (len(methods) + 1) + "|")
        for rule in RULES:
            texts = []
            for method in methods:
                mine = [seeds for (name, m, dataset), seeds in cells.items()
                        if name == rule.name and m == method and keep(dataset)]
                h = np.mean([np.mean([r["H_clean"] for r in seeds]) for seeds in mine])
                d = np.mean([np.mean([r["H_clean"] - r["H_paper"] for r in seeds])
                             for seeds in mine])
                texts.append(f"{h:.1f} ({d:+.1f})" if mine else "-")
            print(f"| {rule.name} | " + " | ".join(texts) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bench_dirs", nargs="+", type=Path)
    parser.add_argument("--decision", nargs="*", default=[],
                        help="data set short names the rule is decided on")
    parser.add_argument("--csv", type=Path, help="write every (rule, cell, seed) row here")
    args = parser.parse_args()
    rows = [row for pair in pairs(args.bench_dirs) for row in analyse(*pair)]
    if args.csv:
        with args.csv.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    summarise(rows, set(args.decision))


if __name__ == "__main__":
    main()
