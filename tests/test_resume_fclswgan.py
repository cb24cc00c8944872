"""A killed f-CLSWGAN run resumed with `--resume` ends with the same results.json figures as an
uninterrupted run with the same seed (CPU), under both protocols."""

from __future__ import annotations

import pytest
from resume_check import assert_killed_run_resumes
from test_resume_cegzsl import loader, one_thread  # noqa: F401  (autouse: one torch thread)

TINY = {"epochs": "3", "batch_size": "64", "generator_hidden": "32", "critic_hidden": "32",
        "syn_num": "20", "pretrain_epochs": "3", "classifier_epochs": "3",
        "zsl_classifier_epochs": "3", "lr": "1e-3"}


@pytest.mark.parametrize(("protocol", "kill_at"), [("clean", ("test", 0)), ("paper", ("test", 1))])
def test_killed_fclswgan_run_resumes_to_identical_results(tmp_path, monkeypatch, protocol,
                                                          kill_at):
    assert_killed_run_resumes(tmp_path, monkeypatch, loader, "fclswgan", TINY, protocol, kill_at)
