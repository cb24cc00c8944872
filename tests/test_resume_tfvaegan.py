"""A killed TF-VAEGAN run resumed with `--resume` ends with the same results.json figures as an
uninterrupted run with the same seed (CPU), under both protocols."""

from __future__ import annotations

import pytest
from resume_check import assert_killed_run_resumes
from test_resume_cegzsl import loader, one_thread  # noqa: F401  (autouse: one torch thread)

TINY = {"epochs": "3", "batch_size": "64", "encoder_hidden": "32", "generator_hidden": "32",
        "critic_hidden": "32", "syn_num": "20", "classifier_epochs": "3",
        "zsl_classifier_epochs": "3", "lr": "1e-3", "iterations_per_epoch": "2"}


@pytest.mark.parametrize(("protocol", "kill_at"), [("clean", ("test", 0)), ("paper", ("test", 1))])
def test_killed_tfvaegan_run_resumes_to_identical_results(tmp_path, monkeypatch, protocol,
                                                          kill_at):
    assert_killed_run_resumes(tmp_path, monkeypatch, loader, "tfvaegan", TINY, protocol, kill_at)
