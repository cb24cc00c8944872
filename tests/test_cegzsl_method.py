"""CE-GZSL end to end on a tiny synthetic benchmark: reports, bug mode, divergence, resume."""

from __future__ import annotations

import copy
import io

import numpy as np
import pytest
import torch

from unseen.data.synthetic import synthetic_benchmark
from unseen.data.tasks import make_test_task
from unseen.errors import TrainingDivergedError, UnseenInputError
from unseen.methods.base import EpochReport
from unseen.methods.cegzsl import CEGZSL, CEGZSLConfig
from unseen.methods.generative.classifier import CarryOverBatches

TINY = {"epochs": 4, "batch_size": 64, "generator_hidden": 64, "critic_hidden": 64,
        "embed_dim": 32, "projection_dim": 16, "comparator_hidden": 32, "syn_num": 40,
        "lr": 1e-3, "classifier_epochs": 6, "zsl_classifier_epochs": 4, "device": "cpu"}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads only add contention
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def task():
    return make_test_task(synthetic_benchmark())


class RecordingMonitor:
    def __init__(self, on_epoch_end=None) -> None:
        self.reports: list[EpochReport] = []
        self.on_epoch_end = on_epoch_end

    def epoch_end(self, method, report: EpochReport) -> None:
        self.reports.append(report)
        torch.rand(3)  # a monitor may use the RNG; training must not depend on it
        if self.on_epoch_end is not None:
            self.on_epoch_end(method, report)

    def progress(self, iterable, description, total=None):
        return iterable


def _config(**overrides) -> CEGZSLConfig:
    return CEGZSLConfig().updated({**TINY, **overrides})


def _harmonic_mean(task, scores: torch.Tensor) -> float:
    labels = task.labels_of(task.eval_idx)
    predicted = scores.argmax(1).numpy()
    classes = np.unique(labels)
    accuracy = np.array([(predicted[labels == c] == c).mean() for c in classes])
    seen = task.is_seen_class[classes]
    s, u = accuracy[seen].mean(), accuracy[~seen].mean()
    return 0.0 if s + u == 0 else 2 * s * u / (s + u)


def test_fit_reports_well_formed_candidates_that_beat_chance(task):
    monitor = RecordingMonitor()
    CEGZSL(_config(epochs=8, batch_size=32), seed=1).fit(task, monitor)
    assert [r.epoch for r in monitor.reports] == list(range(8))
    n_eval, k = task.eval_idx.size, task.classes.size
    n_unseen, k_unseen = task.eval_unseen_idx.size, task.unseen_classes.size
    best = 0.0
    for report in monitor.reports:
        assert list(report.gzsl_candidates) == [f"classifier_epoch={i}" for i in range(1, 7)]
        assert list(report.zsl_candidates) == [f"zsl_epoch={i}" for i in range(1, 5)]
        for scores in report.gzsl_candidates.values():
            assert scores.shape == (n_eval, k)
            assert torch.allclose(scores.exp().sum(1), torch.ones(n_eval), atol=1e-5)
            best = max(best, _harmonic_mean(task, scores))
        for scores in report.zsl_candidates.values():
            assert scores.shape == (n_unseen, k_unseen)
            assert torch.allclose(scores.exp().sum(1), torch.ones(n_unseen), atol=1e-5)
        assert all(np.isfinite(v) for v in report.losses.values())
        assert {"critic_loss", "generator_loss", "gradient_penalty", "real_class",
                "fake_contrastive"} <= set(report.losses)
    chance = 1.0 / k  # H of uniform guessing
    assert best > 3 * chance, best  # 0.36..0.63 over seeds 0..4 when written


def test_scores_reproduce_the_reported_candidates(task):
    monitor = RecordingMonitor()
    method = CEGZSL(_config(epochs=1), seed=1)
    method.fit(task, monitor)
    report = monitor.reports[-1]
    inputs = torch.from_numpy(task.features[task.eval_idx])
    for name in ("classifier_epoch=3", None):
        expected = report.gzsl_candidates[name or "classifier_epoch=6"]
        assert torch.allclose(method.scores(task, inputs, name), expected, atol=1e-6)
    zsl = method.scores(task, inputs, "zsl_epoch=2")
    assert torch.isinf(zsl[:, task.is_seen_class]).all()
    unseen_rows = slice(task.eval_seen_idx.size, None)
    assert torch.allclose(zsl[unseen_rows][:, ~task.is_seen_class],
                          report.zsl_candidates["zsl_epoch=2"], atol=1e-6)
    with pytest.raises(UnseenInputError, match="classifier_epoch=99"):
        method.scores(task, inputs, "classifier_epoch=99")


def _record_comparator_gradients(method: CEGZSL):
    """Per critic step: F's fresh gradient (via hooks) and its .grad when Adam steps."""
    fresh: list[list[torch.Tensor]] = []
    at_step: list[list[torch.Tensor]] = []
    parameters = list(method.comparator.parameters())
    pending: dict[int, torch.Tensor] = {}
    for index, parameter in enumerate(parameters):
        parameter.register_hook(lambda grad, index=index: pending.__setitem__(index, grad.clone()))
    original_step = method.optimizer_d.step

    def step(*args, **kwargs):
        fresh.append([pending[i] for i in range(len(parameters))])
        at_step.append([p.grad.clone() for p in parameters])
        return original_step(*args, **kwargs)

    method.optimizer_d.step = step
    return fresh, at_step


@pytest.mark.parametrize("replicate", [True, False])
def test_comparator_gradient_accumulates_only_in_bug_mode(task, replicate):
    config = _config(epochs=1, batch_size=128, replicate_reference_bugs=replicate,
                     classifier_epochs=1, zsl_classifier=False)
    method = CEGZSL(config, seed=2)
    recorded = {}

    def build_and_hook(architecture, build=method._build):
        build(architecture)
        recorded["grads"] = _record_comparator_gradients(method)

    method._build = build_and_hook
    method.fit(task, RecordingMonitor())
    fresh, at_step = recorded["grads"]
    steps = config.critic_iterations * -(-task.train_idx.size // 128)
    assert len(fresh) == steps > 5
    running = [torch.zeros_like(g) for g in fresh[0]]
    for fresh_step, grads in zip(fresh, at_step, strict=True):
        running = [r + f for r, f in zip(running, fresh_step, strict=True)]
        expected = running if replicate else fresh_step
        for g, e in zip(grads, expected, strict=True):
            assert torch.allclose(g, e, rtol=1e-5, atol=1e-7)
    # F's gradient is cleared at the end of the epoch, as in the reference
    assert all(p.grad is None for p in method.comparator.parameters()) == replicate


def test_bug_mode_changes_the_comparator_weights(task):
    weights = {}
    for replicate in (True, False):
        method = CEGZSL(_config(epochs=1, replicate_reference_bugs=replicate,
                                classifier_epochs=1, zsl_classifier=False), seed=3)
        method.fit(task, RecordingMonitor())
        weights[replicate] = method.comparator.fc1.weight.detach().clone()
    assert not torch.allclose(weights[True], weights[False], atol=1e-6)


def test_non_finite_loss_raises_training_diverged(task):
    def poison(method, report):
        with torch.no_grad():
            method.generator.fc2.weight[0, 0] = float("nan")

    monitor = RecordingMonitor(on_epoch_end=poison)
    method = CEGZSL(_config(epochs=3, classifier_epochs=1, zsl_classifier=False), seed=4)
    with pytest.raises(TrainingDivergedError, match=r"epoch 2, generator iteration 1"):
        method.fit(task, monitor)
    assert len(monitor.reports) == 1


def _serialised(state):
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


@pytest.mark.parametrize("replicate", [False, True])
def test_resume_is_bit_identical(task, replicate):
    # batch_size > training rows: clamped to the training rows (one batch per iteration)
    settings = {"classifier_epochs": 2, "zsl_classifier_epochs": 2, "lr_decay_epoch": 1,
                "batch_size": 10_000, "replicate_reference_bugs": replicate}
    unbroken = RecordingMonitor()
    reference = CEGZSL(_config(epochs=3, **settings), seed=5)
    reference.fit(task, unbroken)

    first = CEGZSL(_config(epochs=2, **settings), seed=5)
    first.fit(task, RecordingMonitor())
    state = _serialised(copy.deepcopy(first.state_dict()))
    resumed = CEGZSL(_config(epochs=3, **settings), seed=5)
    resumed.load_state_dict(state)
    assert resumed.start_epoch == 2
    torch.manual_seed(123)  # whatever happens between load and fit must not matter
    monitor = RecordingMonitor()
    resumed.fit(task, monitor)

    assert [r.epoch for r in monitor.reports] == [2]
    expected, got = unbroken.reports[2], monitor.reports[0]
    assert expected.losses == got.losses
    for name, scores in expected.gzsl_candidates.items():
        assert torch.equal(scores, got.gzsl_candidates[name])
    for name, scores in expected.zsl_candidates.items():
        assert torch.equal(scores, got.zsl_candidates[name])
    for net in ("generator", "critic", "embedding", "comparator"):
        for a, b in zip(getattr(reference, net).parameters(), getattr(resumed, net).parameters(),
                        strict=True):
            assert torch.equal(a, b)
    assert reference.optimizer_g.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.99**3)
    assert resumed.optimizer_g.param_groups[0]["lr"] == reference.optimizer_g.param_groups[0]["lr"]


def test_same_seed_same_run_different_seed_different_run(task):
    runs = []
    for seed in (6, 6, 7):
        monitor = RecordingMonitor()
        CEGZSL(_config(epochs=1, classifier_epochs=1, zsl_classifier=False), seed=seed).fit(
            task, monitor)
        runs.append(monitor.reports[0].gzsl_candidates["classifier_epoch=1"])
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def test_carry_over_batches_follow_the_reference_iterator():
    def reference_batches(n, batch_size, count):  # classifier_embed_contras.next_batch
        data, index, epochs_completed, out = torch.arange(n), 0, 0, []
        for _ in range(count):
            start = index
            if epochs_completed == 0 and start == 0:
                data = data[torch.randperm(n)]
            if start + batch_size > n:
                epochs_completed += 1
                rest = data[start:n]
                data = data[torch.randperm(n)]
                index = batch_size - rest.numel()
                out.append(torch.cat([rest, data[:index]]))
            else:
                index += batch_size
                out.append(data[start:index])
        return out

    torch.manual_seed(0)
    expected = reference_batches(23, 5, 12)
    torch.manual_seed(0)
    batches = CarryOverBatches(23)
    got = [batches.next(5) for _ in range(12)]
    assert all(torch.equal(a, b) for a, b in zip(expected, got, strict=True))
    assert sorted(torch.cat(got[:4]).tolist() + got[4][:3].tolist()) == list(range(23))


def test_presets_are_valid_config_overrides_and_set_values_coerce():
    assert CEGZSL.name == "cegzsl" and CEGZSL.input_kind == "features"
    for name in ("AWA1", "AWA2", "CUB", "CUB-sent", "FLO", "SUN", "APY", "animals", "fashion",
                 "demo", "semi-real"):
        config = CEGZSLConfig().updated(CEGZSL.presets[name])
        assert config.epochs >= 1
    config = CEGZSLConfig().updated({"batch_size": "64", "zsl_classifier": "false",
                                     "lr": "5e-5"})
    assert (config.batch_size, config.zsl_classifier, config.lr) == (64, False, 5e-5)
    assert CEGZSLConfig().updated(CEGZSL.presets["SUN"]).comparator_hidden == 1024
    with pytest.raises(UnseenInputError):
        CEGZSLConfig().updated({"batch_size": "many"})


@pytest.mark.parametrize("iterations_per_epoch", [0, 3])
def test_iterations_per_epoch_sets_generator_steps(task, iterations_per_epoch):
    method = CEGZSL(_config(epochs=2, iterations_per_epoch=iterations_per_epoch), seed=0)
    steps: list[int] = []
    original = method._generator_step

    def counting_step(*args, **kwargs):
        steps.append(1)
        return original(*args, **kwargs)

    method._generator_step = counting_step
    method.fit(task, RecordingMonitor())
    from_data = -(-task.train_idx.size // TINY["batch_size"])
    assert from_data != 3  # so the fixed count is distinguishable from the reference's
    assert len(steps) == 2 * (iterations_per_epoch or from_data)


def test_negative_iterations_per_epoch_is_rejected(task):
    with pytest.raises(UnseenInputError, match="iterations_per_epoch"):
        CEGZSL(_config(iterations_per_epoch=-1), seed=0).fit(task, RecordingMonitor())


def test_cosine_classifier_sees_h_on_a_sphere_and_scores_match(task, monkeypatch):
    import unseen.methods.generative.trainer as cegzsl_method

    seen_inputs = []
    original = cegzsl_method.train_classifier

    def recording(train_embedding, labels, eval_embedding, *args, **kwargs):
        seen_inputs.append((train_embedding, eval_embedding))
        return original(train_embedding, labels, eval_embedding, *args, **kwargs)

    monkeypatch.setattr(cegzsl_method, "train_classifier", recording)
    monitor = RecordingMonitor()
    method = CEGZSL(_config(epochs=1, classifier_cosine_scale=7.0), seed=1)
    method.fit(task, monitor)
    assert len(seen_inputs) == 2  # the GZSL and the ZSL classifier
    for train_embedding, eval_embedding in seen_inputs:
        for rows in (train_embedding, eval_embedding):
            assert torch.allclose(rows.norm(dim=1), torch.full((rows.shape[0],), 7.0), atol=1e-4)
    inputs = torch.from_numpy(task.features[task.eval_idx])
    assert torch.allclose(method.scores(task, inputs), monitor.reports[-1].gzsl_candidates[
        "classifier_epoch=6"], atol=1e-6)
    linear = RecordingMonitor()
    CEGZSL(_config(epochs=1), seed=1).fit(task, linear)
    assert not torch.allclose(linear.reports[-1].gzsl_candidates["classifier_epoch=6"],
                              monitor.reports[-1].gzsl_candidates["classifier_epoch=6"])


def test_negative_cosine_scale_is_rejected(task):
    with pytest.raises(UnseenInputError, match="classifier_cosine_scale"):
        CEGZSL(_config(classifier_cosine_scale=-1.0), seed=0).fit(task, RecordingMonitor())
