"""A killed CADA-VAE run resumed with `--resume` ends with the same results.json figures as an
uninterrupted run with the same seed (CPU), under both protocols."""

from __future__ import annotations

import pytest
from resume_check import assert_killed_run_resumes
from test_resume_cegzsl import loader, one_thread  # noqa: F401  (autouse: one torch thread)

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
    assert_killed_run_resumes(tmp_path, monkeypatch, loader, "cadavae", TINY, protocol, kill_at)
