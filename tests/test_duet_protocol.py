"""DUET's training protocol as the reference runs it (issue #13): pool popping, the image
contrast's gate, the mid-epoch evaluation schedule, eval-mode sticking, patience, stopping at
a chosen point and resuming from a mid-epoch checkpoint."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from duet_fixtures import ATTRIBUTE_WORDS, save_tiny_bert, save_tiny_deit, tiny_image_benchmark

from unseen.data.tasks import make_test_task
from unseen.methods.duet import DUET, DUETConfig
from unseen.methods.duet.config import PRESETS
from unseen.methods.duet.data import ReferencePools
from unseen.methods.duet.schedule import EvaluationSchedule


class Monitor:
    """The runner's side: records reports, model mode and checkpoints; `history_H` feeds
    patience like the runner's SelectionMonitor."""

    def __init__(self, h_values=None) -> None:
        self.reports, self.states, self.modes = [], [], []
        self.h_values = list(h_values or [])
        self.selection = SimpleNamespace(history_H=[])

    def epoch_end(self, method, report) -> None:
        self.reports.append(report)
        self.modes.append(method.model.training)
        self.states.append(copy.deepcopy(method.state_dict()))
        self.selection.history_H.append(self.h_values[len(self.reports) - 1]
                                        if self.h_values else 0.5)

    def progress(self, iterable, description, total=None):
        return iterable


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("duet_protocol")
    benchmark = tiny_image_benchmark(root / "images", images_per_class=6)
    return {"task": make_test_task(benchmark), "deit": save_tiny_deit(root / "deit"),
            "bert": save_tiny_bert(root / "bert", extra_words=ATTRIBUTE_WORDS),
            "cache": root / "cache"}


def _config(setup, **overrides) -> DUETConfig:
    values = dict(vision_model=str(setup["deit"]), text_model=str(setup["bert"]), epochs=1,
                  batch_size=3, gradient_accumulation=1, num_workers=0, lr=1e-3, max_length=64,
                  pixel_cache_dir=str(setup["cache"]), device="cpu")
    return DUETConfig(**(values | overrides))


def _recording(method, task):
    """Prepare `method` and record, per training forward, the model's mode and the calls."""
    method._prepare(task)
    calls = []
    objective = method._objective
    original = objective.forward

    model_forward = objective.model.forward
    counts = {"model": 0}

    def counted(*args, **kwargs):
        counts["model"] += 1
        return model_forward(*args, **kwargs)

    def forward(batch):
        before = counts["model"]
        out = original(batch)
        calls.append({"training": method.model.training, "masked": batch.masked,
                      "views": batch.view_pixels is not None,
                      "model_calls": counts["model"] - before})
        return out

    objective.forward = forward
    objective.model.forward = counted
    return calls, counts


# -- pools -----------------------------------------------------------------------------------

def test_reference_pools_pop_from_the_end_then_refill_shuffled():
    pools = ReferencePools(np.array([9, 2, 5, 7, 4]), np.array([0, 1, 0, 0, 1]), 2, seed=0)
    assert pools.take([0, 0, 1]).tolist() == [9, 7, 4]  # ascending lists popped from the end
    saved = pools.state_dict()
    assert pools.take([0, 1]).tolist() == [5, 2]
    refill = pools.take([0, 0, 0]).tolist()  # empty: refilled from the original, shuffled
    assert sorted(refill) == [5, 7, 9]
    pools.load_state_dict(saved)  # checkpointed state replays exactly
    assert pools.take([0, 1]).tolist() == [5, 2]
    assert pools.take([0, 0, 0]).tolist() == refill
    with pytest.raises(ValueError, match="empty image pool"):
        ReferencePools(np.array([1]), np.array([0]), 2, seed=0).take([1])


def test_reference_mode_pops_every_request_in_batch_order(setup):
    task = setup["task"]
    method = DUET(_config(setup, replicate_reference_bugs=True, mask_probability=0.0), seed=0)
    method._prepare(task)
    data = method._training_batches(task)
    pools = data.pools
    assert isinstance(pools, ReferencePools)
    expected = copy.deepcopy(pools.remaining)
    for index in range(len(data)):
        batch = data[(0, index)]
        pending = batch.pending_pool
        assert pending.classes.tolist() == batch.labels.tolist()  # one view per sample
        full = batch.size == data.batch_size
        data.attach_pool_images(batch)
        for c in pending.classes.tolist():  # popped from the end, also for a partial batch
            expected[c].pop()
        assert pools.remaining == expected
        assert (batch.view_pixels is not None) == full


# -- the image contrast's gate ---------------------------------------------------------------

@pytest.mark.parametrize("replicate", [False, True])
def test_contrast_weight_zero_switches_the_image_contrast_off(setup, replicate):
    task = setup["task"]
    on = DUET(_config(setup, mask_probability=0.0, replicate_reference_bugs=replicate), seed=0)
    on_calls, on_counts = _recording(on, task)
    on.fit(task, Monitor())
    off = DUET(_config(setup, mask_probability=0.0, contrast_weight=0.0,
                       replicate_reference_bugs=replicate), seed=0)
    off_calls, off_counts = _recording(off, task)
    monitor = Monitor()
    off.fit(task, monitor)
    assert any(c["views"] for c in on_calls) and not any(c["views"] for c in off_calls)
    # with the gate open a full template batch costs a second forward (the views); closed, one
    assert max(c["model_calls"] for c in on_calls) == 2
    assert all(c["model_calls"] == 1 for c in off_calls)
    assert monitor.reports[0].losses["image_contrast"] == 0.0
    if not replicate:  # nothing drawn, nothing popped
        assert off._training_batches(task).build_contrast is False


# -- the evaluation schedule -----------------------------------------------------------------

def _mid_epoch_points(config: dict, epoch: int, batches: int, accumulation: int) -> list[int]:
    schedule = EvaluationSchedule(config.get("eval_every_steps", 0),
                                  config.get("eval_start_step", 0),
                                  config.get("eval_at_step", 0), config.get("eval_from_epoch", 0))
    return [done for done in range(1, batches + 1)
            if schedule.mid_epoch(epoch, done, batches, done % accumulation == 0)]


def test_presets_reproduce_the_reference_evaluation_points():
    awa2 = PRESETS["AWA2"]
    first = _mid_epoch_points(awa2, 0, 2353, 5)
    assert first[0] == 1000 and len(first) == 14  # + the epoch end: 15 evaluations
    assert len(_mid_epoch_points(awa2, 1, 2353, 5)) == 23  # + the epoch end: 24
    sun = PRESETS["SUN"]
    assert _mid_epoch_points(sun, 4, 1290, 7) == []
    assert _mid_epoch_points(sun, 5, 1290, 7) == [644]
    assert _mid_epoch_points(PRESETS["CUB"], 7, 1009, 10) == []
    assert (awa2["patience"], sun["patience"], PRESETS["CUB"]["patience"]) == (15, 7, 7)


@pytest.mark.parametrize("replicate", [False, True])
def test_mid_epoch_evaluations_and_eval_mode_sticking(setup, replicate):
    task = setup["task"]
    method = DUET(_config(setup, epochs=2, eval_every_steps=2, mask_probability=0.5,
                          replicate_reference_bugs=replicate), seed=0)
    calls, _ = _recording(method, task)
    monitor = Monitor()
    method.fit(task, monitor)
    batches = len(calls) // 2
    per_epoch = [(r.epoch, r.step) for r in monitor.reports]
    mids = [s for s in range(2, batches, 2)]
    assert per_epoch == [(0, s) for s in mids] + [(0, None)] + [(1, s) for s in mids] + \
        [(1, None)]
    modes = [c["training"] for c in calls]
    for epoch in range(2):
        epoch_modes = modes[epoch * batches:(epoch + 1) * batches]
        assert epoch_modes[:2] == [True, True]  # train() at every epoch start
        # reference: after the first mid-epoch evaluation dropout stays off for the epoch
        assert all(mode != replicate for mode in epoch_modes[2:])


def test_patience_ends_training_after_that_many_worse_evaluations(setup):
    task = setup["task"]
    method = DUET(_config(setup, epochs=8, patience=2), seed=0)
    monitor = Monitor(h_values=[0.5, 0.4, 0.5, 0.3, 0.2, 0.1, 0.6, 0.7])
    method.fit(task, monitor)
    # 0.5 best; 0.4 (1); 0.5 >= best resets; 0.3 (1), 0.2 (2), 0.1 (3 > 2): stop
    assert [r.epoch for r in monitor.reports] == [0, 1, 2, 3, 4, 5]
    assert method.start_epoch == 6


def test_retrain_stops_at_the_chosen_step_without_evaluating_before(setup):
    task = setup["task"]
    method = DUET(_config(setup, epochs=2, eval_every_steps=1, stop_after_steps=3), seed=0)
    calls, _ = _recording(method, task)
    monitor = Monitor()
    method.fit(task, monitor)
    batches = -(-task.train_idx.size // 3)
    assert len(calls) == batches + 3
    assert [(r.epoch, r.step) for r in monitor.reports] == [(0, None), (1, 3)]
    assert monitor.states[-1]["epoch"] == 2  # finished: a resume does not train on


def test_resume_from_a_mid_epoch_checkpoint_continues_exactly(setup):
    task = setup["task"]
    overrides = dict(epochs=2, eval_every_steps=2, mask_probability=0.5,
                     replicate_reference_bugs=True)
    straight = Monitor()
    DUET(_config(setup, **overrides), seed=3).fit(task, straight)
    middle = next(k for k, r in enumerate(straight.reports) if r.epoch == 1 and r.step)
    resumed = DUET(_config(setup, **overrides), seed=3)
    resumed.load_state_dict(straight.states[middle])
    monitor = Monitor()
    resumed.fit(task, monitor)
    assert [(r.epoch, r.step) for r in monitor.reports] == [
        (r.epoch, r.step) for r in straight.reports[middle + 1:]]
    for name, tensor in straight.states[-1]["model"].items():
        torch.testing.assert_close(monitor.states[-1]["model"][name], tensor, atol=0, rtol=0,
                                   msg=name)


def test_cpu_threads_follow_the_load_unless_chosen(monkeypatch):
    import os

    from unseen.methods.duet import method as duet_method

    before = torch.get_num_threads()
    try:
        for key in ("UNSEEN_THREADS", "OMP_NUM_THREADS"):
            monkeypatch.delenv(key, raising=False)
        monkeypatch.setattr(os, "cpu_count", lambda: 4)
        monkeypatch.setattr(os, "getloadavg", lambda: (3.2, 3.0, 3.0))
        torch.set_num_threads(4)
        monkeypatch.setattr(duet_method, "_DEFAULT_THREADS", 4)
        assert duet_method.choose_cpu_threads(0) == 1  # 4 cores, load 3: one is free
        torch.set_num_threads(4)
        monkeypatch.setattr(os, "getloadavg", lambda: (0.3, 0.3, 0.3))
        assert duet_method.choose_cpu_threads(0) == 4  # idle: torch's default stays
        monkeypatch.setattr(os, "getloadavg", lambda: (9.0, 9.0, 9.0))
        monkeypatch.setenv("UNSEEN_THREADS", "4")
        assert duet_method.choose_cpu_threads(0) == 4  # the user's --threads is kept
        assert duet_method.choose_cpu_threads(3) == 3  # cpu_threads=3
    finally:
        torch.set_num_threads(before)


def test_clean_protocol_selects_among_mid_epoch_points_and_retrains_to_it(setup, tmp_path):
    from unseen.runner import Runner, RunSpec

    benchmark = setup["task"].benchmark
    spec = RunSpec(method="duet", dataset="tiny", protocol="clean", seeds=[0],
                   out=str(tmp_path / "run"), overrides={
                       "vision_model": str(setup["deit"]), "text_model": str(setup["bert"]),
                       "epochs": "2", "batch_size": "3", "num_workers": "0", "device": "cpu",
                       "eval_every_steps": "1", "gradient_accumulation": "1",
                       "pixel_cache_dir": str(setup["cache"]),
                       "val_seen_fraction": "0.3", "val_folds": "1", "selection_window": "1"})
    runner = Runner(spec, load_benchmark=lambda spec, index: benchmark)
    results = runner.run()
    selected = results["per_seed"][0]["selected"]
    rows = [r for r in runner.rows if r["phase"] == "validation"]
    assert any(r.get("step") for r in rows)  # mid-epoch evaluations on the validation task
    tests = [r for r in runner.rows if r["phase"] == "test"]
    assert len(tests) == 1  # the retraining evaluates once, at the chosen point
    assert tests[0]["epoch"] == selected["epoch"]
    assert (tests[0].get("step") or None) == selected["step"]
