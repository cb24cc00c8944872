"""Epoch selection: best single epoch by default, or the best mean H over a window of epochs."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from unseen.data.synthetic import synthetic_benchmark
from unseen.data.tasks import make_test_task
from unseen.methods.base import EpochReport
from unseen.selection import Selection, SelectionMonitor

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
        monitor._best_gzsl = lambda report, h=h: ("only", FakeResult(H=h))
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


def test_selection_saved_before_score_existed_keeps_its_best():
    old = Selection(epoch=2, candidate="c", H=0.7)
    assert old.score == 0.7 and old.history_H == []
