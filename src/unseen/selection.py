"""Model selection under a protocol: which epoch, which classifier candidate, which gamma.

The monitor receives every `EpochReport`, evaluates each candidate on the task's evaluation
rows, keeps the best so far and writes the checkpoint. What "evaluation rows" are decides
the protocol: validation rows under `clean`, test rows under `paper` (the references'
test-set selection, labelled as such in every output).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unseen.data.tasks import GZSLTask
from unseen.errors import TrainingDivergedError
from unseen.evaluation import EvaluationResult, SeenUnseenCurve, evaluate, zsl_accuracy
from unseen.io import atomic_torch_save
from unseen.methods.base import EpochReport, GZSLMethod
from unseen.parallel import is_main_process
from unseen.progress import Console


@dataclass
class Selection:
    """The best (epoch, candidate) so far and its evaluation on the selection rows."""

    epoch: int = -1
    candidate: str = ""
    H: float = -1.0
    step: int | None = None  # a mid-epoch evaluation point of `epoch` (None: its end)
    result: dict[str, Any] = field(default_factory=dict)  # EvaluationResult.to_dict()
    zsl_epoch: int = -1
    zsl_candidate: str = ""
    T1: float = -1.0
    score: float = -1.0  # what the epoch is chosen by: H, or its mean over the window
    history_H: list[float] = field(default_factory=list)  # best H of every epoch so far
    # Per epoch, every candidate's [H, gamma] and every ZSL candidate's T1: what combining
    # several validation folds needs (`combine_folds`).
    candidate_history: list[dict[str, list[float]]] = field(default_factory=list)
    zsl_history: list[dict[str, float]] = field(default_factory=list)
    # (epoch, step) of every evaluation, when some were mid-epoch (history index -> point)
    points: list[list] = field(default_factory=list)


class SelectionMonitor:
    """Implements `TrainingMonitor` for the runner: evaluate, select, log, checkpoint.

    `gamma=None` chooses the calibrated-stacking gamma per candidate on these rows (clean
    protocol, validation rows); a float applies that gamma (paper protocol, or a fixed gamma).
    `only_candidate`, when set, restricts evaluation to that candidate (the clean protocol's
    final test phase, where the choice was already made on validation). `window` > 1 chooses
    the epoch by the mean H of the last `window` epochs (only full windows count), so a single
    lucky epoch on a small validation task is not picked; the candidate and gamma are then
    those of the window's last epoch. `curves_path`, when set, receives the exact seen-unseen
    curve of every candidate at every evaluation (`load_curves`), from which other selection
    rules can be scored without retraining (benchmarks/selection_rules.py).
    """

    def __init__(self, task: GZSLTask, gamma: float | None, checkpoint_path: Path | None,
                 save_checkpoint, log_row, selection: Selection | None = None,
                 only_candidate: str | None = None, only_zsl_candidate: str | None = None,
                 scores: dict[str, torch.Tensor | None] | None = None,
                 window: int = 1, console: Console | None = None,
                 curves_path: Path | None = None) -> None:
        self.task = task
        self.curves_path = curves_path
        self.curves: list[dict[str, Any]] = []  # recorded evaluations (`curves_path`)
        if curves_path is not None and curves_path.is_file():
            self.curves = torch.load(curves_path, map_location="cpu",
                                     weights_only=True)["evaluations"]
        self.console = console or Console()
        self.window = window
        self.gamma = gamma
        self.checkpoint_path = checkpoint_path
        self.save_checkpoint = save_checkpoint
        self.log_row = log_row
        self.selection = selection or Selection()
        self.only_candidate = only_candidate
        self.only_zsl_candidate = only_zsl_candidate
        self.labels = torch.as_tensor(task.labels_of(task.eval_idx))
        self.is_seen = torch.as_tensor(task.is_seen_class)
        # Score matrices kept for the final evaluation and `unseen eval`: those of the selected
        # (epoch, candidate) and those of the latest epoch's best candidate; in the checkpoint too.
        self.scores: dict[str, torch.Tensor | None] = {
            "best": None, "best_zsl": None, "last": None, "last_zsl": None}
        if scores:
            self.scores.update(scores)
        unseen_global = task.benchmark.labels[task.eval_unseen_idx]
        self.zsl_labels = torch.as_tensor(np.searchsorted(task.unseen_classes, unseen_global))

    # -- TrainingMonitor ---------------------------------------------------------------------------
    def progress(self, iterable: Any, description: str, total: int | None = None) -> Any:
        return self.console.bar(iterable, description, total)

    def epoch_end(self, method: GZSLMethod, report: EpochReport) -> None:
        self._check_finite(report)
        results = self._score_candidates(report)
        best_name = max(results, key=lambda name: results[name].H)  # first of equals
        best = results[best_name]
        zsl_scored = self._score_zsl(report)
        zsl_name = max(zsl_scored, key=zsl_scored.get) if zsl_scored else ""
        t1 = float(zsl_scored[zsl_name]) if zsl_scored else best.T1
        self.scores["last"] = report.gzsl_candidates[best_name].float().cpu()
        self.scores["last_zsl"] = (report.zsl_candidates[zsl_name].float().cpu()
                                   if report.zsl_candidates else None)
        self.selection.history_H.append(best.H)
        self.selection.candidate_history.append(
            {name: [float(r.H), float(r.gamma)] for name, r in results.items()})
        self.selection.zsl_history.append({name: float(v) for name, v in zsl_scored.items()})
        self.selection.points.append([report.epoch, report.step])
        score = window_mean(self.selection.history_H, self.window)
        if score > self.selection.score:
            self.selection.epoch, self.selection.candidate = report.epoch, best_name
            self.selection.step = report.step
            self.selection.H, self.selection.result = best.H, best.to_dict(include_curve=False)
            self.selection.score = score
            self.scores["best"] = self.scores["last"]
        if t1 > self.selection.T1:
            self.selection.zsl_epoch, self.selection.zsl_candidate = report.epoch, zsl_name
            self.selection.T1 = t1
            self.scores["best_zsl"] = self.scores["last_zsl"]
        row = {"epoch": report.epoch, **({"step": report.step} if report.step else {}),
               "candidate": best_name, "U": best.U, "S": best.S,
               "H": best.H, "T1": t1, "AUSUC": best.AUSUC, "gamma": best.gamma,
               **{f"loss_{k}": v for k, v in report.losses.items()}}
        self.log_row(row)
        if self.curves_path is not None:
            self._record_curves(report, results)
        if self.checkpoint_path is not None:
            self.save_checkpoint(self.checkpoint_path, {
                "method_state": method.state_dict(), "selection": self.selection.__dict__,
                "scores": self.scores, "epoch": report.epoch})

    # -- helpers ---------------------------------------------------------------------------------
    def _record_curves(self, report: EpochReport, results: dict[str, EvaluationResult]) -> None:
        """Append this evaluation's curves to `curves_path` (rewritten whole, atomically)."""
        point = [report.epoch, -1 if report.step is None else report.step]
        # A resumed phase evaluates again from its checkpoint: drop what was recorded after it.
        self.curves = [e for e in self.curves if _point_order(e["point"]) < _point_order(point)]
        self.curves.append({"point": point,
                            "curves": {name: r.curve for name, r in results.items()}})
        if is_main_process():
            atomic_torch_save(self.curves_path, {"evaluations": self.curves})

    def evaluate_candidate(self, scores: torch.Tensor, gamma: float | None) -> EvaluationResult:
        return evaluate(scores.float().cpu(), self.labels, self.is_seen, gamma=gamma)

    def _score_candidates(self, report: EpochReport) -> dict[str, EvaluationResult]:
        """Every GZSL candidate of the epoch evaluated (only the chosen one in a test phase)."""
        candidates = report.gzsl_candidates
        if self.only_candidate is not None:
            name = (self.only_candidate if self.only_candidate in candidates
                    else list(candidates)[-1])
            candidates = {name: candidates[name]}
        # A few dozen candidates at most per epoch.
        return {name: self.evaluate_candidate(scores, self.gamma)
                for name, scores in candidates.items()}

    def _score_zsl(self, report: EpochReport) -> dict[str, float]:
        """T1 of every ZSL candidate of the epoch; empty when the method has none."""
        if not report.zsl_candidates:
            return {}
        candidates = report.zsl_candidates
        if self.only_zsl_candidate in candidates:
            candidates = {self.only_zsl_candidate: candidates[self.only_zsl_candidate]}
        no_seen = torch.zeros(len(self.task.unseen_classes), dtype=torch.bool)
        return {name: float(zsl_accuracy(s.float().cpu(), self.zsl_labels, no_seen))
                for name, s in candidates.items()}

    def _check_finite(self, report: EpochReport) -> None:
        for name, value in report.losses.items():
            if isinstance(value, float) and not math.isfinite(value):
                where = self.checkpoint_path or "no checkpoint"
                raise TrainingDivergedError(
                    f"loss '{name}' is {value} at epoch {report.epoch}; training stopped. The last "
                    f"good checkpoint is {where}; lower the learning rate or raise the batch size")


def load_curves(path: Path) -> list[tuple[int, int | None, dict[str, SeenUnseenCurve]]]:
    """(epoch, step, {candidate: curve}) of every evaluation a `curves_path` recorded."""
    evaluations = torch.load(path, map_location="cpu", weights_only=True)["evaluations"]
    loaded = []
    for entry in evaluations:
        epoch, step = (int(v) for v in entry["point"])
        curves = {name: SeenUnseenCurve(**{k: np.asarray(v) for k, v in fields.items()})
                  for name, fields in entry["curves"].items()}
        loaded.append((epoch, None if step < 0 else step, curves))
    return loaded


def _point_order(point: list[int]) -> tuple[int, float]:
    """(epoch, step) in training order; step -1 (the epoch's end) after every mid-epoch step."""
    return int(point[0]), math.inf if point[1] < 0 else float(point[1])


def window_mean(history: list[float], window: int) -> float:
    """Mean of the last `window` values, or -1 while fewer than `window` exist (a window
    that is not full never wins)."""
    return sum(history[-window:]) / window if len(history) >= window else -1.0


def combine_folds(selections: list[Selection], window: int = 1) -> Selection:
    """One choice from several validation folds (class splits) of the same run.

    Each (epoch, candidate) is scored by its H averaged over the folds; the epoch is chosen by
    the best such H, averaged over `window` consecutive epochs as `SelectionMonitor` does, the
    candidate is the best one at that epoch and gamma the folds' mean gamma for it. The ZSL
    candidate is the (epoch, candidate) with the best mean T1. Averaging over folds is what
    makes the choice less noisy when each fold has only a few pseudo-unseen classes.
    """
    epochs = min(len(s.candidate_history) for s in selections)
    if epochs == 0:
        raise ValueError("combine_folds: every fold needs a per-epoch candidate history")
    mean_h = [_mean_over_folds([{name: h for name, (h, _) in s.candidate_history[e].items()}
                                for s in selections]) for e in range(epochs)]
    best_per_epoch = [max(table.values(), default=-1.0) for table in mean_h]
    window = max(1, min(window, epochs))
    scores = [window_mean(best_per_epoch[:e + 1], window) for e in range(epochs)]
    epoch = int(np.argmax(scores))  # the first of equal scores, as the monitor keeps it
    candidate = max(mean_h[epoch], key=mean_h[epoch].get)
    gamma = float(np.mean([s.candidate_history[epoch][candidate][1] for s in selections]))
    folds = [{"epoch": s.epoch, "candidate": s.candidate, "H": s.H} for s in selections]
    index, step = epoch, None  # evaluation index -> (epoch, step) when some were mid-epoch
    if len(selections[0].points) > index:
        epoch, step = selections[0].points[index]
    combined = Selection(epoch=epoch, candidate=candidate, H=mean_h[index][candidate],
                         result={"H": mean_h[index][candidate], "gamma": gamma, "folds": folds},
                         score=scores[index], history_H=best_per_epoch, step=step)
    combined.zsl_epoch, combined.zsl_candidate, combined.T1 = _best_mean_zsl(selections, epochs)
    return combined


def _mean_over_folds(tables: list[dict[str, float]]) -> dict[str, float]:
    """Each name present in every fold's table, with its value averaged over the folds."""
    return {name: float(np.mean([table[name] for table in tables])) for name in tables[0]
            if all(name in table for table in tables)}


def _best_mean_zsl(selections: list[Selection], epochs: int) -> tuple[int, str, float]:
    """(epoch, ZSL candidate, T1) with the best T1 averaged over the folds."""
    best = (-1, "", -1.0)
    for epoch in range(epochs):
        tables = [s.zsl_history[epoch] if epoch < len(s.zsl_history) else {} for s in selections]
        for name, t1 in _mean_over_folds(tables).items():
            if t1 > best[2]:
                best = (epoch, name, t1)
    if best[0] < 0:  # no separate ZSL classifier: T1 comes with the GZSL candidate
        return -1, "", float(np.mean([s.T1 for s in selections]))
    return best
