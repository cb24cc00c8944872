"""Epoch selection: best single epoch by default, or the best mean H over a window of epochs."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from unseen.data.synthetic import synthetic_benchmark
from unseen.data.tasks import make_test_task
from unseen.evaluation import evaluate
from unseen.methods.base import EpochReport
from unseen.selection import Selection, SelectionMonitor, combine_folds, load_curves

VALIDATION_H = [0.9, 0.1, 0.5, 0.6, 0.7, 0.65]  # a lucky first epoch, then a steady climb


@dataclass
class FakeResult:
    H: float
    U: float = 0.5
    S: float = 0.5
    T1: float = 0.5
    AUSUC: float = 0.5
    gamma: float = 0.0

    def to_dict(self, include_curve: bool = False) -> dict:
        return {"H": self.H, "gamma": self.gamma}


def _select(window: int, selection: Selection | None = None, h_values=VALIDATION_H):
    task = make_test_task(synthetic_benchmark(images_per_class=10))
    monitor = SelectionMonitor(task, 0.0, None, None, lambda row: None, selection,
                               window=window)
    scores = torch.zeros(task.eval_idx.size, len(task.classes))
    start = len(monitor.selection.history_H)
    for epoch, h in enumerate(h_values[start:], start=start):
        monitor._score_candidates = lambda report, h=h: {"only": FakeResult(H=h)}
        monitor.epoch_end(None, EpochReport(epoch, {"only": scores}))
    return monitor.selection


def test_window_one_keeps_the_best_single_epoch():
    selection = _select(window=1)
    assert (selection.epoch, selection.H, selection.score) == (0, 0.9, 0.9)


def test_window_chooses_the_best_full_window_and_reports_its_last_epoch():
    selection = _select(window=3)
    # Full windows end at epochs 2..5 with means 0.5, 0.4, 0.6, 0.65.
    assert selection.epoch == 5
    assert selection.H == 0.65
    assert selection.score == pytest.approx(0.65)
    assert selection.history_H == VALIDATION_H


def test_window_history_survives_a_checkpoint_round_trip():
    partial = _select(window=3, h_values=VALIDATION_H[:4])
    restored = Selection(**dict(partial.__dict__))
    assert _select(window=3, selection=restored).epoch == 5


def _fold(h_by_epoch: list[dict[str, float]], gamma: float, t1_by_epoch=None) -> Selection:
    """A finished validation fold with the given per-epoch candidate H (and one gamma)."""
    history = [{name: [h, gamma] for name, h in table.items()} for table in h_by_epoch]
    best = [max(table.values()) for table in h_by_epoch]
    epoch = best.index(max(best))
    return Selection(epoch=epoch, candidate=max(h_by_epoch[epoch], key=h_by_epoch[epoch].get),
                     H=best[epoch], score=best[epoch], history_H=best,
                     candidate_history=history, zsl_history=t1_by_epoch or [{}] * len(best),
                     T1=0.5)


def test_folds_are_combined_by_the_mean_h_of_each_epoch_and_candidate():
    # Fold A alone picks epoch 0, fold B alone epoch 2; on average epoch 1 is best, and at
    # epoch 1 candidate "b" (mean 0.65) beats "a" (mean 0.6) although "a" wins in fold A.
    fold_a = _fold([{"a": 0.9, "b": 0.1}, {"a": 0.8, "b": 0.7}, {"a": 0.2, "b": 0.2}], 1.0,
                   [{"z1": 0.4, "z2": 0.6}, {"z1": 0.5, "z2": 0.2}, {"z1": 0.1, "z2": 0.1}])
    fold_b = _fold([{"a": 0.1, "b": 0.1}, {"a": 0.4, "b": 0.6}, {"a": 0.7, "b": 0.3}], 3.0,
                   [{"z1": 0.9, "z2": 0.1}, {"z1": 0.3, "z2": 0.3}, {"z1": 0.2, "z2": 0.2}])
    combined = combine_folds([fold_a, fold_b])
    assert (fold_a.epoch, fold_b.epoch) == (0, 2)
    assert (combined.epoch, combined.candidate) == (1, "b")
    assert combined.H == pytest.approx(0.65)
    assert combined.result["gamma"] == pytest.approx(2.0)
    assert [f["epoch"] for f in combined.result["folds"]] == [0, 2]
    # ZSL: z1 at epoch 0 has the best mean T1, 0.65.
    assert (combined.zsl_epoch, combined.zsl_candidate) == (0, "z1")
    assert combined.T1 == pytest.approx(0.65)


def test_combined_folds_apply_the_selection_window():
    fold = _fold([{"a": h} for h in VALIDATION_H], 0.0)
    assert combine_folds([fold, fold], window=1).epoch == 0
    assert combine_folds([fold, fold], window=3).epoch == 5


def test_monitor_records_every_candidate_for_fold_combination():
    task = make_test_task(synthetic_benchmark(images_per_class=10))
    monitor = SelectionMonitor(task, None, None, None, lambda row: None)
    scores = torch.randn(task.eval_idx.size, len(task.classes))
    monitor.epoch_end(None, EpochReport(0, {"x": scores, "y": -scores}))
    table = monitor.selection.candidate_history[0]
    assert set(table) == {"x", "y"}
    assert table[monitor.selection.candidate][0] == monitor.selection.H
    assert monitor.selection.zsl_history == [{}]


def test_recorded_curves_reproduce_every_candidate_at_any_gamma_and_survive_a_resume(tmp_path):
    task = make_test_task(synthetic_benchmark(images_per_class=10))
    labels = torch.as_tensor(task.labels_of(task.eval_idx))
    is_seen = torch.as_tensor(task.is_seen_class)
    path = tmp_path / "curves.pt"
    generator = torch.Generator().manual_seed(0)
    epochs = [{"x": torch.randn(task.eval_idx.size, len(task.classes), generator=generator),
               "y": torch.randn(task.eval_idx.size, len(task.classes), generator=generator)}
              for _ in range(3)]
    monitor = SelectionMonitor(task, None, None, None, lambda row: None, curves_path=path)
    for epoch in range(3):
        monitor.epoch_end(None, EpochReport(epoch, epochs[epoch]))
    # A resumed phase that restarts at epoch 1 replaces epochs 1 and 2 instead of appending.
    resumed = SelectionMonitor(task, None, None, None, lambda row: None, curves_path=path)
    resumed.epoch_end(None, EpochReport(1, {"x": epochs[0]["x"], "y": epochs[0]["y"]}))
    recorded = load_curves(path)
    assert [(epoch, step) for epoch, step, _ in recorded] == [(0, None), (1, None)]
    for (_, _, curves), scores in zip(recorded, [epochs[0], epochs[0]], strict=True):
        assert list(curves) == ["x", "y"]
        for name, curve in curves.items():
            for gamma in (-1.5, -0.2, 0.0, 0.3, 2.0):
                expected = evaluate(scores[name], labels, is_seen, gamma=gamma)
                assert curve.at(gamma) == pytest.approx((expected.U, expected.S), abs=1e-12)
