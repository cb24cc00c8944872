"""A killed f-CLSWGAN run resumed with `--resume` ends with the same results.json figures as an
uninterrupted run with the same seed (CPU), under both protocols."""

from __future__ import annotations

import json

import pytest
import torch

from unseen.data.synthetic import synthetic_benchmark
from unseen.runner import Runner, RunSpec
from unseen.selection import SelectionMonitor

TINY = {"epochs": "3", "batch_size": "64", "generator_hidden": "32", "critic_hidden": "32",
        "syn_num": "20", "pretrain_epochs": "3", "classifier_epochs": "3",
        "zsl_classifier_epochs": "3", "lr": "1e-3"}


def loader(spec, seed_index):
    return synthetic_benchmark(seed=seed_index, images_per_class=25)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize(("protocol", "kill_at"), [("clean", 4), ("paper", 2)])
def test_killed_fclswgan_run_resumes_to_identical_results(tmp_path, monkeypatch, protocol,
                                                          kill_at):
    def spec(name):
        return RunSpec(method="fclswgan", dataset="synthetic", seeds=[0, 1], protocol=protocol,
                       overrides=dict(TINY), out=str(tmp_path / name))

    reference = Runner(spec("reference"), load_benchmark=loader).run()

    original = SelectionMonitor.epoch_end
    calls = {"count": 0}

    def killed(self, method, report):
        original(self, method, report)  # the checkpoint is written first, as in a real run
        calls["count"] += 1
        if calls["count"] == kill_at:  # clean: after test epoch 0; paper: after epoch 1
            raise KeyboardInterrupt

    monkeypatch.setattr(SelectionMonitor, "epoch_end", killed)
    with pytest.raises(KeyboardInterrupt):
        Runner(spec("killed"), load_benchmark=loader).run()
    monkeypatch.setattr(SelectionMonitor, "epoch_end", original)
    assert not (tmp_path / "killed" / "results.json").exists()

    resumed = Runner.resume(tmp_path / "killed", load_benchmark=loader).run()
    for metric in ("U", "S", "H", "T1", "AUSUC", "gamma"):
        assert resumed[metric] == reference[metric], metric
    on_disk = json.loads((tmp_path / "killed" / "results.json").read_text())
    assert [r["selected"] for r in on_disk["per_seed"]] == [
        r["selected"] for r in reference["per_seed"]]
