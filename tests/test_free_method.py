"""FREE end to end: construction order, what each step updates and in which order, the three
bug switches against their fixed forms, candidates, presets, bad options, resume, and a short
run that beats chance."""

from __future__ import annotations

import copy

import pytest
import torch
from test_cegzsl_method import (  # the same monitor, metric and helpers as CE-GZSL's tests
    RecordingMonitor,
    _harmonic_mean,
    _one_thread,  # noqa: F401  (autouse: one torch thread)
    _serialised,
)

from unseen.data.semi_real import semi_real_benchmark
from unseen.data.synthetic import synthetic_benchmark
from unseen.data.tasks import make_test_task
from unseen.errors import TrainingDivergedError, UnseenInputError
from unseen.methods import base
from unseen.methods.free import FREE, FREEConfig
from unseen.methods.generative.data import task_tensors
from unseen.methods.registry import get_method

TINY = {"epochs": 2, "batch_size": 32, "encoder_hidden": 32, "generator_hidden": 32,
        "critic_hidden": 32, "refinement_hidden": 24, "syn_num": 20, "lr": 1e-3,
        "refinement_lr": 1e-3, "classifier_epochs": 3, "iterations_per_epoch": 2,
        "device": "cpu"}
PARTS = ("encoder", "generator", "critic", "refinement", "centers")


@pytest.fixture(scope="module")
def task():
    return make_test_task(synthetic_benchmark())


def _config(**overrides) -> FREEConfig:
    return FREEConfig().updated({**TINY, **overrides})


def _parameters(method: FREE, part: str) -> list[torch.Tensor]:
    if part == "centers":
        return [method.centers]
    return list(getattr(method, part).parameters())


def _snapshot(method: FREE) -> dict[str, list[torch.Tensor]]:
    return {part: [p.detach().clone() for p in _parameters(method, part)] for part in PARTS}


def _moved(before: dict[str, list[torch.Tensor]], method: FREE) -> set[str]:
    return {part for part in PARTS
            if any(not torch.equal(b, p) for b, p in zip(before[part], _parameters(method, part),
                                                          strict=True))}


def _record_steps(method: FREE) -> list[tuple[str, set[str]]]:
    """Wrap the two steps: which parts each one moved."""
    events: list[tuple[str, set[str]]] = []
    for kind in ("critic", "generator"):
        step = getattr(method, f"_{kind}_step")

        def wrapped(*args, _step=step, _kind=kind):
            before = _snapshot(method)
            result = _step(*args)
            events.append((_kind, _moved(before, method)))
            return result

        setattr(method, f"_{kind}_step", wrapped)
    return events


def test_centres_are_built_first_then_e_g_d_fr(task):
    probe = FREE(_config(), seed=7)
    architecture = probe._architecture_for(task_tensors(task, torch.device("cpu")))
    base.seed_everything(7)
    probe._build(architecture)
    base.seed_everything(7)
    centers = torch.randn(task.seen_classes.size, task.semantics.shape[1])  # N(0, 1), first
    encoder = type(probe.encoder)(64, 16, 32, 16)  # then E, from the draws that follow
    generator = type(probe.generator)(16, 16, 32, 64, output="sigmoid")  # then G
    assert torch.equal(probe.centers.detach(), centers)
    assert torch.equal(encoder.fc1.weight, probe.encoder.fc1.weight)
    assert torch.equal(generator.fc2.weight, probe.generator.fc2.weight)


@pytest.mark.parametrize(("freeze", "replicate", "fr_in_generator_step"),
                         [(False, False, True), (True, False, False), (True, True, True)])
def test_each_step_moves_exactly_its_parts(task, freeze, replicate, fr_in_generator_step):
    method = FREE(_config(epochs=1, critic_iterations=3, classifier_epochs=1,
                          freeze_refinement=freeze, replicate_reference_bugs=replicate), seed=0)
    events = _record_steps(method)
    method.fit(task, RecordingMonitor())
    critic = ("critic", {"critic", "refinement", "centers"})
    generator = ("generator", {"encoder", "generator"} | (
        {"refinement"} if fr_in_generator_step else set()))
    # two passes x 2 iterations x (3 critic steps, then 1 generator step); the centres only
    # move in critic steps, D never in generator steps
    assert events == ([critic] * 3 + [generator]) * 4


def test_update_order_inside_the_steps(task):
    method = FREE(_config(epochs=1, critic_iterations=2, iterations_per_epoch=1,
                          classifier_epochs=1), seed=1)
    order: list[str] = []
    original_build = method._build

    def build_then_wrap(architecture):
        original_build(architecture)
        for name in ("e", "g", "d", "fr", "centers"):
            optimizer = getattr(method, f"optimizer_{name}")
            step = optimizer.step

            def recording(*args, _step=step, _name=name, **kwargs):
                order.append(_name)
                return _step(*args, **kwargs)

            optimizer.step = recording

    method._build = build_then_wrap
    method.fit(task, RecordingMonitor())
    critic_step = ["fr", "centers", "d"]  # FR and centres before D
    generator_step = ["e", "g", "fr"]
    assert order == (critic_step * 2 + generator_step) * 2  # two identical passes


def test_generator_step_reuses_the_last_critic_batch(task):
    method = FREE(_config(epochs=1, critic_iterations=2, iterations_per_epoch=1,
                          classifier_epochs=1), seed=2)
    batches = []
    critic_step, generator_step = method._critic_step, method._generator_step

    def critic(*args):
        result = critic_step(*args)
        batches.append(result[0])
        return result

    def generator(batch, *args):
        batches.append(batch)
        return generator_step(batch, *args)

    method._critic_step, method._generator_step = critic, generator
    method.fit(task, RecordingMonitor())
    assert batches[2] is batches[1] and batches[1] is not batches[0]


@pytest.mark.parametrize("replicate", [False, True])
def test_centre_gradients_accumulate_only_in_bug_mode(task, replicate):
    method = FREE(_config(epochs=1, critic_iterations=2, classifier_epochs=1,
                          replicate_reference_bugs=replicate), seed=3)
    fresh: list[torch.Tensor] = []
    after_step: list[torch.Tensor] = []
    original_build = method._build

    def build_then_watch(architecture):
        original_build(architecture)
        method.centers.register_hook(lambda grad: fresh.append(grad.clone()))
        step = method.optimizer_centers.step

        def recording(*args, **kwargs):
            after_step.append(method.centers.grad.clone())
            return step(*args, **kwargs)

        method.optimizer_centers.step = recording

    method._build = build_then_watch
    method.fit(task, RecordingMonitor())
    assert len(fresh) == len(after_step) == 8
    for k, grad in enumerate(after_step):
        expected = torch.stack(fresh[:k + 1]).sum(0) if replicate else fresh[k]
        assert torch.allclose(grad, expected, atol=1e-6)
    assert torch.allclose(after_step[-1], fresh[-1]) is not replicate


@pytest.mark.parametrize("replicate", [False, True])
def test_frozen_fr_takes_a_zero_gradient_adam_step_only_in_bug_mode(task, replicate):
    method = FREE(_config(epochs=1, iterations_per_epoch=1, passes_per_epoch=1,
                          classifier_epochs=1, freeze_refinement=True,
                          replicate_reference_bugs=replicate), seed=4)
    seen = {}
    generator_step = method._generator_step

    def generator(batch, *args):
        state = method.optimizer_fr.state[method.refinement.fc1.weight]
        moments = (state["exp_avg"].clone(), state["exp_avg_sq"].clone())
        weight = method.refinement.fc1.weight.detach().clone()
        result = generator_step(batch, *args)
        seen.update(moments=moments, weight=weight, state=state)
        return result

    method._generator_step = generator
    method.fit(task, RecordingMonitor())
    state, (m, v) = seen["state"], seen["moments"]
    lr, (beta1, beta2) = 1e-3, (0.5, 0.999)
    if replicate:  # Adam on a zero gradient: m and v decay, and the weight still moves by m
        assert float(state["step"]) == 2
        assert torch.allclose(state["exp_avg"], beta1 * m)
        assert torch.allclose(state["exp_avg_sq"], beta2 * v)
        step = lr * (beta1 * m / (1 - beta1 ** 2)) / (
            (beta2 * v / (1 - beta2 ** 2)).sqrt() + 1e-8)
        assert torch.allclose(method.refinement.fc1.weight, seen["weight"] - step, atol=1e-7)
    else:
        assert float(state["step"]) == 1
        assert torch.equal(method.refinement.fc1.weight, seen["weight"])
    # the unused heads never get a gradient, in either mode
    assert method.refinement.classifier.weight.grad is None


@pytest.mark.parametrize("replicate", [False, True])
def test_classifier_features_are_noisy_only_in_bug_mode(task, replicate):
    monitor = RecordingMonitor()
    method = FREE(_config(epochs=1, replicate_reference_bugs=replicate), seed=5)
    method.fit(task, monitor)
    inputs = torch.from_numpy(task.features[task.eval_idx])
    first, second = (method._classifier_inputs(inputs) for _ in range(2))
    width = 64 + 24 + 16  # [x ; FR hidden ; FR reconstruction]
    assert first.shape == (inputs.shape[0], width)
    assert torch.equal(first[:, :64 + 24], second[:, :64 + 24])
    assert torch.equal(first, second) is not replicate
    hidden, mu, _ = method.refinement.encode(inputs)
    if not replicate:
        assert torch.allclose(first[:, 64 + 24:], torch.sigmoid(mu))
    # scores() reproduces the fixed-mode candidates
    candidates = monitor.reports[-1].gzsl_candidates
    scores = method.scores(task, inputs)
    if not replicate:
        assert torch.allclose(scores, candidates["classifier_epoch=3"], atol=1e-5)


def test_candidates_and_losses_are_well_formed(task):
    monitor = RecordingMonitor()
    FREE(_config(epochs=1), seed=6).fit(task, monitor)
    report = monitor.reports[-1]
    assert list(report.gzsl_candidates) == [f"classifier_epoch={k}" for k in (1, 2, 3)]
    assert report.zsl_candidates is None  # the reference has no ZSL classifier
    n_eval, k = task.eval_idx.size, task.classes.size
    for scores in report.gzsl_candidates.values():
        assert scores.shape == (n_eval, k)
        assert torch.allclose(scores.exp().sum(1), torch.ones(n_eval), atol=1e-5)
    assert set(FREE.loss_keys) <= set(report.losses)


def test_semantics_are_l2_normalised(task):
    data = task_tensors(task, torch.device("cpu"))
    FREE(_config(), seed=0)._on_start(data, fresh=True)
    assert torch.allclose(data.seen_semantics.norm(dim=1), torch.ones(task.seen_classes.size))
    raw = task_tensors(task, torch.device("cpu"))
    FREE(_config(l2_semantics=False), seed=0)._on_start(raw, fresh=True)
    scale = raw.unseen_semantics.norm(dim=1, keepdim=True)
    assert torch.allclose(data.unseen_semantics * scale, raw.unseen_semantics, atol=1e-6)


@pytest.mark.parametrize("replicate", [False, True])
def test_resume_is_bit_identical(task, replicate):
    settings = {"batch_size": 10_000, "replicate_reference_bugs": replicate}  # B clamped to N

    def trained(epochs: int, checkpoint: dict | None = None) -> tuple[FREE, list]:
        method = FREE(_config(epochs=epochs, **settings), seed=8)
        if checkpoint is not None:
            method.load_state_dict(_serialised(copy.deepcopy(checkpoint)))
            torch.manual_seed(123)  # whatever happens between load and fit must not matter
        monitor = RecordingMonitor()
        method.fit(task, monitor)
        return method, monitor.reports

    unbroken, unbroken_reports = trained(3)
    first, _ = trained(2)
    resumed, resumed_reports = trained(3, first.state_dict())
    assert [r.epoch for r in resumed_reports] == [2]
    assert unbroken_reports[2].losses == resumed_reports[0].losses
    for name, scores in unbroken_reports[2].gzsl_candidates.items():
        assert torch.equal(scores, resumed_reports[0].gzsl_candidates[name])
    for part in PARTS:
        assert all(torch.equal(a, b) for a, b in zip(_parameters(unbroken, part),
                                                     _parameters(resumed, part), strict=True))
    assert unbroken.penalty.weight == resumed.penalty.weight


def test_same_seed_same_run_different_seed_different_run(task):
    runs = []
    for seed in (6, 6, 7):
        monitor = RecordingMonitor()
        FREE(_config(epochs=1), seed=seed).fit(task, monitor)
        runs.append(monitor.reports[0].gzsl_candidates["classifier_epoch=3"])
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def test_non_finite_loss_raises_training_diverged(task):
    def poison(method, report):
        with torch.no_grad():
            method.generator.fc2.weight[0, 0] = float("nan")

    monitor = RecordingMonitor(on_epoch_end=poison)
    with pytest.raises(TrainingDivergedError, match="reconstruction is not finite"):
        FREE(_config(epochs=3), seed=4).fit(task, monitor)
    assert len(monitor.reports) == 1


@pytest.mark.parametrize(("key", "value"), [("syn_num", 0), ("critic_iterations", 0),
                                            ("lr", 0.0), ("incenter_weight", 1.5),
                                            ("samc_negative", "farthest"),
                                            ("passes_per_epoch", 0)])
def test_bad_options_are_rejected_with_their_name(task, key, value):
    with pytest.raises(UnseenInputError, match=f"option '{key}'"):
        FREE(_config(**{key: value}), seed=0).fit(task, RecordingMonitor())


def test_presets_are_valid_and_registered():
    assert get_method("free") is FREE and get_method("FREE") is FREE
    for name in ("AWA1", "AWA2", "CUB", "FLO", "SUN", "APY", "demo", "semi-real"):
        config = FREEConfig().updated(FREE.presets[name])
        FREE(config, seed=0)._check_config()
    awa1 = FREEConfig().updated(FREE.presets["AWA1"])
    assert (awa1.syn_num, awa1.incenter_weight, awa1.samc_negative, awa1.freeze_refinement,
            awa1.epochs) == (4600, 0.1, "nearest", True, 301)  # the repaired run_awa1.py
    flo = FREEConfig().updated(FREE.presets["FLO"])
    assert (flo.syn_num, flo.critic_iterations, flo.batch_size, flo.encoded_noise) == (
        2400, 5, 256, False)  # the repaired run_flo.py
    sun = FREEConfig().updated(FREE.presets["SUN"])
    assert (sun.gamma_d, sun.gamma_g, sun.recons_weight, sun.classifier_lr, sun.center_margin
            ) == (1.0, 1.0, 0.1, 5e-4, 120.0)


def test_short_run_on_semi_real_apy_beats_chance(shared_data):
    # Real APY attribute geometry (32 classes, 12 unseen) with generated 512-d features, 10 %
    # of the real images.
    benchmark = semi_real_benchmark(shared_data / "xlsa17" / "APY" / "att_splits.mat",
                                    images_scale=0.1)
    apy = make_test_task(benchmark)
    monitor = RecordingMonitor()
    config = _config(epochs=6, batch_size=64, encoder_hidden=128, generator_hidden=128,
                     critic_hidden=128, refinement_hidden=128, syn_num=100,
                     iterations_per_epoch=10, classifier_epochs=5)
    FREE(config, seed=0).fit(apy, monitor)
    final = _harmonic_mean(apy, monitor.reports[-1].gzsl_candidates["classifier_epoch=5"])
    chance = 1.0 / apy.classes.size
    assert final > 4 * chance, final
