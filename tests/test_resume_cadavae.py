"""A killed CADA-VAE run resumed with `--resume` ends with the same results.json figures as an
uninterrupted run with the same seed (CPU), under both protocols."""

from __future__ import annotations

import json

import pytest
from test_resume_cegzsl import loader, one_thread  # noqa: F401  (autouse: one torch thread)

from unseen.runner import Runner, RunSpec
from unseen.selection import SelectionMonitor

TINY = {"epochs": "3", "batch_size": "32", "image_encoder_hidden": "32",
        "image_decoder_hidden": "32", "attribute_encoder_hidden": "16",
        "attribute_decoder_hidden": "16", "latent_size": "8", "seen_latents_per_class": "20",
        "unseen_latents_per_class": "20", "classifier_epochs": "3", "lr": "1e-3",
        "kl_end": "3", "cross_reconstruction_start": "0", "cross_reconstruction_end": "2",
        "alignment_start": "0", "alignment_end": "1", "evaluate_every": "2",
        "classifier_candidates": "all"}


@pytest.mark.parametrize(("protocol", "kill_at"), [("clean", ("test", 0)), ("paper", ("test", 1))])
def test_killed_cadavae_run_resumes_to_identical_results(tmp_path, monkeypatch, protocol,
                                                         kill_at):
    def run(name, resume=False):
        if resume:
            return Runner.resume(tmp_path / name, load_benchmark=loader).run()
        spec = RunSpec(method="cadavae", dataset="synthetic", seeds=[0, 1], protocol=protocol,
                       overrides=dict(TINY), out=str(tmp_path / name))
        return Runner(spec, load_benchmark=loader).run()

    reference = run("reference")
    report_epoch = SelectionMonitor.epoch_end

    def interrupted(monitor, method, report):
        report_epoch(monitor, method, report)  # the checkpoint is written first, as in a run
        if (monitor.task.name, report.epoch) == kill_at:  # seed 0 (clean: after validation)
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(SelectionMonitor, "epoch_end", interrupted)
        with pytest.raises(KeyboardInterrupt):
            run("killed")
    assert not (tmp_path / "killed" / "results.json").exists()

    resumed = run("killed", resume=True)
    metrics = ("U", "S", "H", "T1", "AUSUC", "gamma")
    assert {m: resumed[m] for m in metrics} == {m: reference[m] for m in metrics}
    saved = json.loads((tmp_path / "killed" / "results.json").read_text())["per_seed"]
    assert [seed["selected"] for seed in saved] == [
        seed["selected"] for seed in reference["per_seed"]]
