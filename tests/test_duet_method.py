"""DUET end to end on a tiny image task: reports, losses, resume, scores, pools."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from duet_fixtures import ATTRIBUTE_WORDS, save_tiny_bert, save_tiny_deit, tiny_image_benchmark

from unseen.data.tasks import make_test_task
from unseen.errors import UnseenInputError
from unseen.methods.duet import DUET, DUETConfig


class RecordingMonitor:
    """Stands in for the runner: keeps reports and a copy of every epoch's checkpoint."""

    def __init__(self) -> None:
        self.reports, self.states = [], []

    def epoch_end(self, method, report) -> None:
        self.reports.append(report)
        self.states.append(copy.deepcopy(method.state_dict()))

    def progress(self, iterable, description, total=None):
        return iterable


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("duet_method")
    benchmark = tiny_image_benchmark(root / "images", images_per_class=5)
    return {"task": make_test_task(benchmark), "deit": save_tiny_deit(root / "deit"),
            "bert": save_tiny_bert(root / "bert", extra_words=ATTRIBUTE_WORDS),
            "cache": root / "cache"}


def _config(setup, **overrides) -> DUETConfig:
    values = dict(vision_model=str(setup["deit"]), text_model=str(setup["bert"]), epochs=3,
                  batch_size=4, gradient_accumulation=2, num_workers=0, lr=1e-3, max_length=64,
                  pixel_cache_dir=str(setup["cache"]), device="cpu")
    return DUETConfig(**(values | overrides))


def test_fit_reports_probabilities_and_learns(setup):
    task = setup["task"]
    monitor = RecordingMonitor()
    DUET(_config(setup, mask_probability=0.5), seed=0).fit(task, monitor)
    assert [r.epoch for r in monitor.reports] == [0, 1, 2]
    assert monitor.states[-1]["epoch"] == 3 and monitor.states[-1]["optimizer"] is not None
    n_eval, k = task.eval_idx.size, task.classes.size
    for report in monitor.reports:
        probabilities = report.gzsl_candidates["epoch"]
        assert probabilities.shape == (n_eval, k)
        torch.testing.assert_close(probabilities.sum(1), torch.ones(n_eval))
        zsl = report.zsl_candidates["epoch"]
        assert zsl.shape == (task.eval_unseen_idx.size, task.unseen_classes.size)
        assert "micro_H" not in report.losses  # reference-only reporting detail
    first, last = monitor.reports[0].losses, monitor.reports[-1].losses
    assert last["classification"] < first["classification"]
    assert 0 < first["mask_batches"] < 1  # both branches ran


def test_resume_from_state_dict_continues_exactly(setup):
    task = setup["task"]
    straight = RecordingMonitor()
    DUET(_config(setup, epochs=2), seed=1).fit(task, straight)
    resumed = DUET(_config(setup, epochs=2), seed=1)
    resumed.load_state_dict(straight.states[0])
    assert resumed.start_epoch == 1
    monitor = RecordingMonitor()
    resumed.fit(task, monitor)
    assert [r.epoch for r in monitor.reports] == [1]
    expected, found = straight.states[1]["model"], monitor.states[0]["model"]
    for name, tensor in expected.items():
        torch.testing.assert_close(found[name], tensor, atol=0, rtol=0, msg=name)
    torch.testing.assert_close(monitor.reports[0].gzsl_candidates["epoch"],
                               straight.reports[1].gzsl_candidates["epoch"], atol=0, rtol=0)


def test_reference_mode_reports_micro_accuracy_and_keeps_trailing_gradients(setup):
    task = setup["task"]
    monitor = RecordingMonitor()
    # accumulation longer than the epoch: the whole epoch is one trailing, un-stepped window
    config = _config(setup, epochs=1, replicate_reference_bugs=True, gradient_accumulation=100)
    DUET(config, seed=0).fit(task, monitor)
    losses = monitor.reports[0].losses
    assert {"micro_U", "micro_S", "micro_H"} <= set(losses)
    assert 0.0 <= losses["micro_H"] <= 1.0
    assert monitor.states[0]["pending_gradients"]  # leaks into the next epoch, as coded


def test_scores_match_the_epoch_report(setup):
    task = setup["task"]
    monitor = RecordingMonitor()
    method = DUET(_config(setup, epochs=1), seed=0)
    method.fit(task, monitor)
    pixels = method._pixel_cache.pixels(task.eval_idx)
    scores = method.scores(task, pixels)
    torch.testing.assert_close(scores, monitor.reports[0].gzsl_candidates["epoch"],
                               atol=1e-5, rtol=1e-5)


def test_contrast_pools_hold_test_seen_rows_only_when_replicating(setup):
    task = setup["task"]
    for replicate in (False, True):
        method = DUET(_config(setup, replicate_reference_bugs=replicate), seed=0)
        method._prepare(task)
        pools = method._training_batches(task).pools
        has_test_seen = np.isin(task.eval_seen_idx, pools.rows).any()
        assert has_test_seen == replicate
        assert np.isin(task.train_idx, pools.rows).all()


def test_missing_image_root_is_an_input_error(setup, tmp_path):
    task = setup["task"]
    method = DUET(_config(setup, image_root=str(tmp_path / "nowhere"), image_path_rule="relative",
                          epochs=1), seed=0)
    with pytest.raises(UnseenInputError, match="missing"):
        method.fit(task, RecordingMonitor())


def test_frozen_vision_trains_around_cached_trunk_outputs(setup):
    task = setup["task"]
    monitor = RecordingMonitor()
    method = DUET(_config(setup, epochs=2, freeze_vision=True), seed=0)
    method.fit(task, monitor)
    first, last = monitor.states[0]["model"], monitor.states[-1]["model"]
    vision = [name for name in last if name.startswith("vision.")]
    assert vision and all(torch.equal(first[name], last[name]) for name in vision)
    assert not torch.equal(first["fc_image.weight"], last["fc_image.weight"])
    table = method._trunk_table
    assert len(table) == task.benchmark.labels.size  # one trunk output per image, computed once
    # scoring pixels (the predict path) runs the frozen trunk itself: same probabilities
    scores = method.scores(task, method._pixel_cache.pixels(task.eval_idx))
    torch.testing.assert_close(scores, monitor.reports[-1].gzsl_candidates["epoch"],
                               atol=1e-5, rtol=1e-5)
