"""A killed CE-GZSL run resumed with `--resume` ends with the same results.json figures as an
uninterrupted run with the same seed (CPU)."""

from __future__ import annotations

import json

import pytest
import torch

from unseen.data.synthetic import synthetic_benchmark
from unseen.runner import Runner, RunSpec
from unseen.selection import SelectionMonitor

TINY = {"epochs": "3", "batch_size": "64", "generator_hidden": "32", "critic_hidden": "32",
        "embed_dim": "32", "projection_dim": "16", "comparator_hidden": "32", "syn_num": "20",
        "classifier_epochs": "3", "zsl_classifier_epochs": "3"}


def loader(spec, seed_index):
    return synthetic_benchmark(seed=seed_index, images_per_class=25)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_killed_cegzsl_run_resumes_to_identical_results(tmp_path, monkeypatch):
    def spec(name):
        return RunSpec(method="cegzsl", dataset="synthetic", seeds=[0, 1], overrides=dict(TINY),
                       out=str(tmp_path / name))

    reference = Runner(spec("reference"), load_benchmark=loader).run()

    original = SelectionMonitor.epoch_end
    calls = {"count": 0}

    def killed_after_fourth_epoch(self, method, report):
        original(self, method, report)  # the checkpoint is written first, as in a real run
        calls["count"] += 1
        if calls["count"] == 4:  # seed 0: validation epochs 0-2, then test epoch 0
            raise KeyboardInterrupt

    monkeypatch.setattr(SelectionMonitor, "epoch_end", killed_after_fourth_epoch)
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
