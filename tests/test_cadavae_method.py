"""CADA-VAE end to end: what a step updates, the candidates per epoch, evaluations that leave
the VAE's random stream alone, presets, bad options, scores, and a short run that beats
chance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_cegzsl_method import (  # the same monitor and metric as CE-GZSL's tests
    RecordingMonitor,
    _harmonic_mean,
    _one_thread,  # noqa: F401  (autouse: one torch thread)
)

from unseen.data.semi_real import semi_real_benchmark
from unseen.data.synthetic import synthetic_benchmark
from unseen.data.tasks import make_test_task
from unseen.errors import UnseenInputError
from unseen.evaluation import evaluate
from unseen.methods import onednn
from unseen.methods.cadavae import CADAVAE, PRESETS, CADAVAEConfig
from unseen.methods.generative.data import task_tensors as _task_tensors
from unseen.methods.registry import get_method

TINY = {"epochs": 3, "batch_size": 32, "image_encoder_hidden": 32, "image_decoder_hidden": 32,
        "attribute_encoder_hidden": 16, "attribute_decoder_hidden": 16, "latent_size": 8,
        "seen_latents_per_class": 20, "unseen_latents_per_class": 20, "classifier_epochs": 3,
        "classifier_batch_size": 64, "lr": 1e-3, "kl_end": 3, "cross_reconstruction_start": 0,
        "cross_reconstruction_end": 2, "alignment_start": 0, "alignment_end": 1,
        "device": "cpu"}


@pytest.fixture(scope="module")
def task():
    return make_test_task(synthetic_benchmark())


def _config(**overrides) -> CADAVAEConfig:
    return CADAVAEConfig().updated({**TINY, **overrides})


def test_one_step_updates_all_four_networks_with_one_amsgrad_adam(task):
    method = CADAVAE(_config(epochs=1, batch_size=10**6), seed=0)  # one step: B clamps to N
    data = _task_tensors(task, method.device)
    method._start(data)
    before = {name: p.detach().clone() for name, p in method.vaes.named_parameters()}
    method._train_epoch(data, 5, RecordingMonitor())  # epoch 5: every weight > 0
    moved = {name for name, p in method.vaes.named_parameters()
             if not torch.equal(before[name], p)}
    assert moved == set(before)  # every layer of the four nets, heads included
    assert {name.split(".")[0] for name in moved} == {
        "image_encoder", "attribute_encoder", "image_decoder", "attribute_decoder"}
    (group,) = method.optimizer.param_groups
    assert group["amsgrad"] and group["lr"] == 1e-3 and group["betas"] == (0.9, 0.999)
    assert len(group["params"]) == len(before)


def _two_steps(task, optimizer=None, **overrides) -> dict[str, torch.Tensor]:
    method = CADAVAE(_config(epochs=1, batch_size=40, **overrides), seed=0)
    data = _task_tensors(task, method.device)
    method._start(data)
    if optimizer is not None:
        method.optimizer = optimizer(method.vaes.parameters())
    method._train_epoch(data, 8, RecordingMonitor())
    return {name: p.detach().clone() for name, p in method.vaes.named_parameters()}


def test_speed_options_default_to_the_reference_update_bit_for_bit(task):
    """The default for-each Adam gives the bits of PyTorch's per-tensor Adam (the one the
    reference calls); the fused Adam and oneDNN options only move the last bits."""
    def per_tensor(params):
        return torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, amsgrad=True,
                                foreach=False, fused=False)

    reference = _two_steps(task, per_tensor)
    assert all(torch.equal(p, reference[name]) for name, p in _two_steps(task).items())
    options = ["fused_adam"] + (["onednn_matmul"] if onednn.available() else [])
    for option in options:
        moved = _two_steps(task, **{option: True})
        assert all(torch.allclose(p, reference[name], atol=1e-5) for name, p in moved.items())
    method = CADAVAE(_config(fused_adam=True, onednn_matmul=onednn.available()), seed=0)
    method._build_networks(method._architecture_for(_task_tensors(task, method.device)))
    assert method.optimizer.defaults["fused"]
    assert all(type(m) is not torch.nn.Linear for m in method.vaes.modules()) or not (
        onednn.available())


def test_candidates_uniform_before_the_last_epoch_then_the_final_classifier(task):
    monitor = RecordingMonitor()
    method = CADAVAE(_config(), seed=1)
    method.fit(task, monitor)
    n_eval, k = task.eval_idx.size, task.classes.size
    assert [r.epoch for r in monitor.reports] == [0, 1, 2]
    labels, is_seen = task.labels_of(task.eval_idx), task.is_seen_class
    for report in monitor.reports[:2]:
        (scores,) = report.gzsl_candidates.values()
        assert list(report.gzsl_candidates) == ["uniform"] and scores.shape == (n_eval, k)
        # H = 0 whatever gamma: the runner never prefers it to an evaluated epoch
        assert evaluate(scores, labels, is_seen, gamma=None).H == 0
        assert evaluate(scores, labels, is_seen, gamma=0.0).H == 0
    last = monitor.reports[-1]
    assert list(last.gzsl_candidates) == ["classifier_epoch=3"]
    assert {"loss", "reconstruction", "cross_reconstruction", "kl",
            "distribution_alignment", "beta", "gamma", "delta"} <= set(last.losses)
    assert last.losses["gamma"] == 2.37  # epoch 2 is past the (tiny) warm-up
    scores = last.gzsl_candidates["classifier_epoch=3"]
    assert torch.allclose(scores.exp().sum(1), torch.ones(n_eval), atol=1e-5)
    inputs = torch.from_numpy(task.features[task.eval_idx])
    assert torch.allclose(method.scores(task, inputs), scores, atol=1e-5)
    with pytest.raises(UnseenInputError, match="classifier_epoch=9"):
        method.scores(task, inputs, "classifier_epoch=9")


def test_evaluating_every_epoch_leaves_the_vae_training_unchanged(task):
    every, once = CADAVAE(_config(evaluate_every=1, classifier_candidates="all"), seed=2), \
        CADAVAE(_config(), seed=2)
    monitor = RecordingMonitor()
    every.fit(task, monitor)
    once.fit(task, RecordingMonitor())
    assert all(list(r.gzsl_candidates) == [f"classifier_epoch={i}" for i in (1, 2, 3)]
               for r in monitor.reports)
    for p, q in zip(every.vaes.parameters(), once.vaes.parameters(), strict=True):
        assert torch.equal(p, q)


def test_presets_and_registry():
    assert get_method("CADA-VAE") is CADAVAE
    steps = {"CUB": 23, "SUN": 21, "AWA1": 33, "AWA2": 29}  # cls_train_steps, GZSL
    for name, values in PRESETS.items():
        config = CADAVAEConfig().updated(values)
        if name in steps:
            assert config.classifier_epochs == steps[name]
            assert (config.epochs, config.batch_size, config.lr) == (100, 50, 1.5e-4)
    default = CADAVAEConfig()
    assert default.replicate_reference_bugs is True and default.reference_classifier is True
    assert (default.image_encoder_hidden, default.image_decoder_hidden,
            default.attribute_encoder_hidden, default.attribute_decoder_hidden,
            default.latent_size) == (1560, 1660, 1450, 665, 64)


@pytest.mark.parametrize(("overrides", "match"), [
    ({"classifier_candidates": "best"}, "classifier_candidates"),
    ({"kl_end": 0}, "kl_end"),
    ({"lr": 0.0}, "'lr'"),
    ({"seen_latents_per_class": 0}, "seen_latents_per_class"),
])
def test_bad_options_are_named(task, overrides, match):
    with pytest.raises(UnseenInputError, match=match):
        CADAVAE(_config(**overrides), seed=0).fit(task, RecordingMonitor())


def test_short_run_on_semi_real_apy_beats_chance(shared_data):
    # Real APY attribute geometry (32 classes, 12 unseen) with generated 512-d features, 10 %
    # of the real images; the `semi-real` preset with fewer latents per class.
    benchmark = semi_real_benchmark(shared_data / "xlsa17" / "APY" / "att_splits.mat",
                                    images_scale=0.1)
    apy = make_test_task(benchmark)
    monitor = RecordingMonitor()
    config = CADAVAEConfig().updated({**PRESETS["semi-real"], "device": "cpu", "batch_size": 32,
                                      "seen_latents_per_class": 100,
                                      "unseen_latents_per_class": 100, "classifier_epochs": 5})
    CADAVAE(config, seed=2).fit(apy, monitor)
    final = _harmonic_mean(apy, monitor.reports[-1].gzsl_candidates["classifier_epoch=5"])
    chance = 1.0 / apy.classes.size
    assert final > 5 * chance, final
    assert np.isfinite(list(monitor.reports[-1].losses.values())).all()
