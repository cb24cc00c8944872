"""f-CLSWGAN end to end: update order, frozen seen classifier, candidates, ZSL classifier,
presets, bad options, divergence, resume, and a short run that beats chance."""

from __future__ import annotations

import copy

import numpy as np
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
from unseen.methods.fclswgan import FCLSWGAN, FCLSWGANConfig
from unseen.methods.registry import get_method

TINY = {"epochs": 2, "batch_size": 32, "generator_hidden": 32, "critic_hidden": 32,
        "syn_num": 20, "lr": 1e-3, "pretrain_epochs": 3, "classifier_epochs": 3,
        "zsl_classifier_epochs": 2, "device": "cpu"}


@pytest.fixture(scope="module")
def task():
    return make_test_task(synthetic_benchmark())


def _config(**overrides) -> FCLSWGANConfig:
    return FCLSWGANConfig().updated({**TINY, **overrides})


def _snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _changed(before: list[torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(b, p) for b, p in zip(before, module.parameters(), strict=True))


def test_critic_steps_move_only_d_and_the_generator_step_only_g(task):
    method = FCLSWGAN(_config(epochs=1, iterations_per_epoch=2, critic_iterations=3,
                              classifier_epochs=1, zsl_classifier=False), seed=0)
    events: list[tuple[str, bool, bool]] = []
    batches: list[object] = []
    critic_step, generator_step = method._critic_step, method._generator_step

    def recording(kind, step):
        def wrapped(*args):
            g, d = _snapshot(method.generator), _snapshot(method.critic)
            seen = (method.seen_classifier.weight.clone(), method.seen_classifier.bias.clone())
            result = step(*args)
            events.append((kind, _changed(g, method.generator), _changed(d, method.critic)))
            assert torch.equal(seen[0], method.seen_classifier.weight)
            assert torch.equal(seen[1], method.seen_classifier.bias)
            batches.append(result[0] if kind == "critic" else args[0])
            return result
        return wrapped

    method._critic_step = recording("critic", critic_step)
    method._generator_step = recording("generator", generator_step)
    method.fit(task, RecordingMonitor())
    # per iteration: 3 critic steps (D moves, G does not), then 1 generator step (G only)
    assert events == ([("critic", False, True)] * 3 + [("generator", True, False)]) * 2
    # the generator step re-uses the last critic batch, not a fresh one
    assert batches[3] is batches[2] and batches[7] is batches[6]
    assert batches[2] is not batches[1]
    assert all(p.requires_grad is False for p in method.critic.parameters())


def test_seen_classifier_is_trained_first_and_never_changes(task):
    method = FCLSWGAN(_config(epochs=1, pretrain_epochs=20, zsl_classifier=False), seed=1)
    captured = {}
    original = method._train_epoch

    def capture_then_train(*args):
        captured.setdefault("weight", method.seen_classifier.weight.clone())
        return original(*args)

    method._train_epoch = capture_then_train
    method.fit(task, RecordingMonitor())
    assert torch.equal(captured["weight"], method.seen_classifier.weight)
    # it learned the seen classes: well above chance on the real training rows
    data = torch.from_numpy(task.features[task.train_idx])
    labels = np.searchsorted(task.seen_classes, task.labels_of(task.train_idx))
    accuracy = (method.seen_classifier.logits(data).argmax(1).numpy() == labels).mean()
    assert accuracy > 3.0 / task.seen_classes.size


def test_candidates_are_well_formed_and_scores_reproduce_them(task):
    monitor = RecordingMonitor()
    method = FCLSWGAN(_config(epochs=1), seed=2)
    method.fit(task, monitor)
    report = monitor.reports[-1]
    n_eval, k = task.eval_idx.size, task.classes.size
    assert list(report.gzsl_candidates) == ["classifier_epoch=1", "classifier_epoch=2",
                                            "classifier_epoch=3"]
    assert list(report.zsl_candidates) == ["zsl_epoch=1", "zsl_epoch=2"]
    for scores in report.gzsl_candidates.values():
        assert scores.shape == (n_eval, k)
        assert torch.allclose(scores.exp().sum(1), torch.ones(n_eval), atol=1e-5)
    assert {"critic_loss", "gradient_penalty", "generator_loss", "fake_class",
            "wasserstein_distance"} <= set(report.losses)
    inputs = torch.from_numpy(task.features[task.eval_idx])
    default = {None: report.gzsl_candidates["classifier_epoch=3"]}  # the last classifier epoch
    assert all(torch.allclose(method.scores(task, inputs, name), scores, atol=1e-6)
               for name, scores in {**report.gzsl_candidates, **default}.items())
    for name, scores in report.zsl_candidates.items():  # -inf on seen classes, else the same
        full = method.scores(task, inputs, name)
        assert torch.isinf(full[:, task.is_seen_class]).all()
        unseen_part = full[task.eval_seen_idx.size:][:, ~task.is_seen_class]
        assert torch.allclose(unseen_part, scores, atol=1e-6)
    with pytest.raises(UnseenInputError, match="classifier_epoch=9"):
        method.scores(task, inputs, "classifier_epoch=9")


def test_zsl_classifier_uses_its_own_settings_and_leaves_the_gan_stream_alone(task, monkeypatch):
    import unseen.methods.generative.trainer as fclswgan_method

    calls = []
    original = fclswgan_method.train_classifier

    def recording(train_x, train_y, eval_x, num_classes, epochs, batch, lr, betas, **kwargs):
        calls.append((train_x.shape[0], num_classes, epochs, batch, lr))
        return original(train_x, train_y, eval_x, num_classes, epochs, batch, lr, betas,
                        **kwargs)

    monkeypatch.setattr(fclswgan_method, "train_classifier", recording)
    runs = {}
    for zsl in (True, False):
        monitor = RecordingMonitor()
        FCLSWGAN(_config(zsl_classifier=zsl, syn_num=30, zsl_syn_num=12, zsl_classifier_lr=5e-4),
                 seed=3).fit(task, monitor)
        runs[zsl] = monitor.reports
    n_train, unseen, k = task.train_idx.size, task.unseen_classes.size, task.classes.size
    # with the ZSL classifier: per epoch, GZSL (train + 30 per class) then ZSL (12 per class)
    assert calls[:2] == [(n_train + 30 * unseen, k, 3, 30, 1e-3),
                         (12 * unseen, unseen, 2, 12, 5e-4)]
    assert len(calls) == 4 + 2
    # the GAN's random stream (hence every GZSL candidate) is the same with or without it
    for with_zsl, without in zip(runs[True], runs[False], strict=True):
        assert with_zsl.losses == without.losses
        for name, scores in with_zsl.gzsl_candidates.items():
            assert torch.equal(scores, without.gzsl_candidates[name])
    assert runs[False][0].zsl_candidates is None


def test_resume_is_bit_identical(task):
    def trained(epochs: int, checkpoint: dict | None = None) -> tuple[FCLSWGAN, list]:
        method = FCLSWGAN(_config(epochs=epochs, batch_size=10_000), seed=5)  # B clamped to N
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
    expected, got = unbroken_reports[2], resumed_reports[0]
    assert expected.losses == got.losses
    pairs = [*zip(expected.gzsl_candidates.values(), got.gzsl_candidates.values(), strict=True),
             *zip(expected.zsl_candidates.values(), got.zsl_candidates.values(), strict=True),
             *zip(unbroken.generator.parameters(), resumed.generator.parameters(), strict=True),
             *zip(unbroken.critic.parameters(), resumed.critic.parameters(), strict=True),
             (unbroken.seen_classifier.weight, resumed.seen_classifier.weight)]
    assert all(torch.equal(a, b) for a, b in pairs)


def test_same_seed_same_run_different_seed_different_run(task):
    runs = []
    for seed in (6, 6, 7):
        monitor = RecordingMonitor()
        FCLSWGAN(_config(epochs=1, zsl_classifier=False), seed=seed).fit(task, monitor)
        runs.append(monitor.reports[0].gzsl_candidates["classifier_epoch=3"])
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def test_non_finite_loss_raises_training_diverged(task):
    def poison(method, report):
        with torch.no_grad():
            method.generator.fc2.weight[0, 0] = float("nan")

    monitor = RecordingMonitor(on_epoch_end=poison)
    method = FCLSWGAN(_config(epochs=3, zsl_classifier=False), seed=4)
    with pytest.raises(TrainingDivergedError, match=r"epoch 2, generator iteration 1"):
        method.fit(task, monitor)
    assert len(monitor.reports) == 1


@pytest.mark.parametrize(("key", "value"), [("syn_num", 0), ("critic_iterations", 0),
                                            ("lr", 0.0), ("zsl_syn_num", -1),
                                            ("iterations_per_epoch", -2)])
def test_bad_options_are_rejected_with_their_name(task, key, value):
    with pytest.raises(UnseenInputError, match=f"option '{key}'"):
        FCLSWGAN(_config(**{key: value}), seed=0).fit(task, RecordingMonitor())


def test_presets_are_valid_and_registered():
    assert get_method("fclswgan") is FCLSWGAN and get_method("f-CLSWGAN") is FCLSWGAN
    for name in ("AWA1", "AWA2", "CUB", "FLO", "SUN", "APY", "animals", "fashion", "demo",
                 "semi-real"):
        config = FCLSWGANConfig().updated(FCLSWGAN.presets[name])
        assert config.epochs >= 1 and config.syn_num >= 1
    sun = FCLSWGANConfig().updated(FCLSWGAN.presets["SUN"])
    assert (sun.lr, sun.syn_num, sun.zsl_syn_num, sun.zsl_classifier_lr) == (2e-4, 400, 100, 5e-4)
    flo = FCLSWGANConfig().updated(FCLSWGAN.presets["FLO"])
    assert (flo.cls_weight, flo.critic_hidden, flo.batch_size) == (0.1, 4096, 64)


def test_short_run_on_semi_real_apy_beats_chance(shared_data):
    # Real APY attribute geometry (32 classes, 12 unseen) with generated 512-d features, 10 % of
    # the real images. (On the embedded `animals` a run of seconds does not: f-CLSWGAN needs
    # thousands of generator steps there; see docs/methods/fclswgan.md, Implementation.)
    benchmark = semi_real_benchmark(shared_data / "xlsa17" / "APY" / "att_splits.mat",
                                    images_scale=0.1)
    apy = make_test_task(benchmark)
    monitor = RecordingMonitor()
    config = _config(epochs=8, batch_size=64, generator_hidden=128, critic_hidden=128,
                     syn_num=100, iterations_per_epoch=20, pretrain_epochs=50,
                     classifier_epochs=5, zsl_classifier=False)
    FCLSWGAN(config, seed=0).fit(apy, monitor)
    final = _harmonic_mean(apy, monitor.reports[-1].gzsl_candidates["classifier_epoch=5"])
    chance = 1.0 / apy.classes.size
    assert final > 5 * chance, final  # 0.35, 0.33, 0.34 for seeds 0, 1, 2 when written


def _fit_weights(task, **overrides) -> tuple[FCLSWGAN, dict[str, torch.Tensor]]:
    method = FCLSWGAN(_config(epochs=1, iterations_per_epoch=3, classifier_epochs=1,
                              zsl_classifier=False, **overrides), seed=5)
    method.fit(task, RecordingMonitor())
    weights = {f"{name}.{key}": value.detach().clone()
               for name, net in (("G", method.generator), ("D", method.critic))
               for key, value in net.state_dict().items()}
    return method, weights


def test_speed_options_of_the_shared_trainer(task, monkeypatch):
    """retain_freed_memory asks glibc to keep freed memory (spied here: it is process-wide;
    tests/test_onednn.py applies it in a child process); onednn_matmul puts every Linear of
    G and D (and the closed-form penalty) on oneDNN and moves the weights by float rounding
    only."""
    from unseen.methods import onednn

    calls: list[bool] = []
    monkeypatch.setattr(onednn, "retain_freed_memory", lambda: calls.append(True) or True)
    _, reference = _fit_weights(task)
    assert not calls
    _fit_weights(task, retain_freed_memory=True)
    assert calls
    if not onednn.available():
        return
    method, moved = _fit_weights(task, onednn_matmul=True)
    layers = [m for net in (method.generator, method.critic) for m in net.modules()
              if isinstance(m, torch.nn.Linear)]
    assert layers and all(type(m) is onednn.OneDNNLinear for m in layers)
    assert all(torch.allclose(value, reference[key], atol=1e-4) for key, value in moved.items())
