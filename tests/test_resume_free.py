"""A killed FREE run resumed with `--resume` ends with the same results.json figures as an
uninterrupted run with the same seed (CPU), under both protocols and in bug mode (the
never-cleared centre gradients travel in the checkpoint)."""

from __future__ import annotations

import pytest
from resume_check import assert_killed_run_resumes
from test_resume_cegzsl import loader, one_thread  # noqa: F401  (autouse: one torch thread)

TINY = {"epochs": "3", "batch_size": "64", "encoder_hidden": "32", "generator_hidden": "32",
        "critic_hidden": "32", "refinement_hidden": "32", "syn_num": "20",
        "classifier_epochs": "3", "iterations_per_epoch": "2", "lr": "1e-3"}


@pytest.mark.parametrize(("protocol", "kill_at", "bugs"), [("clean", ("test", 0), "false"),
                                                           ("paper", ("test", 1), "true")])
def test_killed_free_run_resumes_to_identical_results(tmp_path, monkeypatch, protocol, kill_at,
                                                      bugs):
    assert_killed_run_resumes(tmp_path, monkeypatch, loader, "free",
                              {**TINY, "replicate_reference_bugs": bugs}, protocol, kill_at)
