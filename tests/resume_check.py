"""The kill-and-resume check shared by the generative methods' resume tests: a run killed
right after the checkpoint of `kill_at` = (phase, epoch) of seed 0, then resumed with
`--resume`, ends with the same results.json figures and choices as an uninterrupted run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unseen.runner import Runner, RunSpec
from unseen.selection import SelectionMonitor


def assert_killed_run_resumes(tmp_path: Path, monkeypatch, loader, method: str,
                              overrides: dict[str, str], protocol: str,
                              kill_at: tuple[str, int]) -> None:
    def run(name, resume=False):
        if resume:
            return Runner.resume(tmp_path / name, load_benchmark=loader).run()
        spec = RunSpec(method=method, dataset="synthetic", seeds=[0, 1], protocol=protocol,
                       overrides=dict(overrides), out=str(tmp_path / name))
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
