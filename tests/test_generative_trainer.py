"""`GenerativeMethod`'s loop beyond f-CLSWGAN's and CE-GZSL's settings: two passes per epoch
and the adaptive gradient penalty (TF-VAEGAN, FREE), its state and an exact resume."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch
from test_cegzsl_method import (
    RecordingMonitor,
    _one_thread,  # noqa: F401  (autouse: one torch thread)
    _serialised,
)
from test_fclswgan_method import _config

from unseen.data.synthetic import synthetic_benchmark
from unseen.data.tasks import make_test_task
from unseen.methods.base import MethodConfig, option
from unseen.methods.fclswgan import FCLSWGAN, FCLSWGANConfig


@dataclass
class _TwoPassConfig(FCLSWGANConfig):
    passes_per_epoch: int = option(2, "generator-iteration passes per epoch")
    adaptive_gp: bool = option(True, "adapt lambda after every generator iteration")


class _TwoPass(FCLSWGAN):
    config_class: ClassVar[type[MethodConfig]] = _TwoPassConfig


@pytest.fixture(scope="module")
def task():
    return make_test_task(synthetic_benchmark())


def test_two_passes_of_iterations_and_lambda_adapted_after_each(task):
    method = _TwoPass(_config(epochs=1, iterations_per_epoch=3, critic_iterations=2,
                              classifier_epochs=1, zsl_classifier=False), seed=0)
    events: list[tuple[str, int]] = []
    updates: list[tuple[float, float, float]] = []
    critic_step, generator_step = method._critic_step, method._generator_step
    update = method.penalty.update

    def critic(data, batch_size, pass_index):
        events.append(("critic", pass_index))
        return critic_step(data, batch_size, pass_index)

    def generator(batch, pass_index):
        events.append(("generator", pass_index))
        return generator_step(batch, pass_index)

    def recorded_update():
        before = method.penalty.weight
        mean = update()
        updates.append((mean, before, method.penalty.weight))
        return mean

    method._critic_step, method._generator_step = critic, generator
    method.penalty.update = recorded_update
    method.fit(task, RecordingMonitor())
    assert [kind for kind, _ in events] == (["critic"] * 2 + ["generator"]) * 6
    assert [p for _, p in events] == [0] * 9 + [1] * 9  # 3 iterations per pass
    assert len(updates) == 6  # once per generator iteration, between critic and G steps
    for mean, before, after in updates:
        expected = (before * 1.1 if mean > 1.05 else before / 1.1 if mean < 1.001 else before)
        assert after == pytest.approx(expected, rel=1e-12)
    assert method.penalty.weight != 10.0  # it did adapt
    assert method.state_dict()["gradient_penalty"] == {"weight": method.penalty.weight}
    fixed = FCLSWGAN(_config(epochs=1, classifier_epochs=1, zsl_classifier=False), seed=0)
    fixed.fit(task, RecordingMonitor())
    assert "gradient_penalty" not in fixed.state_dict() and fixed.penalty.weight == 10.0


def test_resume_restores_the_adapted_lambda_exactly(task):
    def trained(epochs: int, checkpoint: dict | None = None):
        method = _TwoPass(_config(epochs=epochs, iterations_per_epoch=2, classifier_epochs=1,
                                  zsl_classifier=False), seed=3)
        if checkpoint is not None:
            method.load_state_dict(_serialised(copy.deepcopy(checkpoint)))
        monitor = RecordingMonitor()
        method.fit(task, monitor)
        return method, monitor.reports

    unbroken, unbroken_reports = trained(3)
    first, _ = trained(2)
    assert first.penalty.weight != unbroken.penalty.weight  # lambda moved in epoch 3
    resumed, resumed_reports = trained(3, first.state_dict())
    assert resumed.penalty.weight == unbroken.penalty.weight
    assert resumed_reports[0].losses == unbroken_reports[2].losses
    assert all(torch.equal(a, b) for a, b in zip(unbroken.generator.parameters(),
                                                 resumed.generator.parameters(), strict=True))
