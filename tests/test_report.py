"""report.md: written by every run (and after every seed), with the settings, the results.json
figures and the plots that exist; the demo reuses it."""

from __future__ import annotations

import json

import pytest

import unseen
from unseen.data.loading import load_dataset
from unseen.runner import Runner, RunSpec


def _seed_row(seed: dict) -> str:
    cells = [f"{seed[m] * 100:.1f}" for m in ("U", "S", "H", "T1", "AUSUC")]
    return f"| seed {seed['seed']} | " + " | ".join(cells) + f" | {seed['gamma']:.3g} |"


def test_report_holds_the_results_the_settings_and_existing_plots(xlsa17_dir, tmp_path):
    out = tmp_path / "run"
    unseen.train("eszsl", str(xlsa17_dir), seeds=[0, 1], out=str(out), quiet=True,
                 overrides={"feature_regularisation": "0.1,1", "val_split_seed": 3})
    results = json.loads((out / "results.json").read_text())
    report = (out / "report.md").read_text()
    assert report.startswith(f"# eszsl on {xlsa17_dir}, clean protocol\n")
    h = results["aggregate"]["H"]
    assert f"| {h['mean'] * 100:.1f} ± {h['std'] * 100:.1f} |" in report
    for seed in results["per_seed"]:
        assert _seed_row(seed) + "\n" in report
        choice = f"| {seed['partition']} | 1 | `{seed['selected']['candidate']}` | - | - |"
        assert f"| {seed['seed']} {choice}" in report  # no separate ZSL classifier
    assert ("| feature_regularisation | `0.1, 1.0` | `0.001, 0.01, 0.1, 1.0, 10.0, 100.0, "
            "1000.0` | --set |") in report
    assert "| val_split_seed | `3` | `0` |" in report
    assert "- seeds: 0, 1;" in report and "- preset: none" in report
    assert "![Seen-unseen curve (first seed, test)](seen_unseen_curve.png)" in report
    # ESZSL has one epoch: no training curves to draw, none referenced.
    assert not (out / "training_curves.png").exists() and "training_curves" not in report
    assert "Unfinished" not in report and "TEST set" not in report


def test_a_killed_run_keeps_a_report_of_its_finished_seeds(xlsa17_dir, tmp_path):
    killed = []

    def loader(spec, seed_index):
        if seed_index == 1 and not killed:
            killed.append(seed_index)
            raise KeyboardInterrupt  # killed before the second seed trains
        return load_dataset(spec.dataset)

    spec = RunSpec(method="eszsl", dataset=str(xlsa17_dir), seeds=[4, 7], out=str(tmp_path))
    with pytest.raises(KeyboardInterrupt):
        Runner(spec, load_benchmark=loader, quiet=True).run()
    report = (tmp_path / "report.md").read_text()
    assert "Unfinished: 1 of 2 seeds done (done: 4; to do: 7)" in report
    assert "| seed 4 |" in report and "| seed 7 |" not in report
    assert not (tmp_path / "results.json").exists()
    Runner.resume(str(tmp_path), load_benchmark=loader, quiet=True).run()  # same data identity
    report = (tmp_path / "report.md").read_text()
    assert "Unfinished" not in report and "| seed 7 |" in report


def test_report_of_a_trained_method_shows_its_curves_preset_and_protocol(xlsa17_dir, tmp_path):
    out = tmp_path / "run"
    results = unseen.train("cegzsl", str(xlsa17_dir), protocol="paper", preset="demo",
                           out=str(out), quiet=True,
                           overrides={"epochs": 2, "classifier_epochs": 2,
                                      "zsl_classifier_epochs": 2, "syn_num": 20})
    report = (out / "report.md").read_text()
    assert "![Training curves](training_curves.png)" in report
    assert (out / "training_curves.png").stat().st_size > 5_000
    assert "| batch_size | `512` | `2048` | preset demo |" in report
    assert "| epochs | `2` | `2000` | --set |" in report
    assert "- preset: `demo`" in report
    assert "selected on the TEST set" in report and "| test |" in report
    assert _seed_row(results["per_seed"][0]) in report


def test_demo_report_links_each_seed_report(tmp_path, monkeypatch):
    from unseen import demo

    monkeypatch.setattr(demo, "DEMO_RUNS", (demo.DemoRun("eszsl", "ESZSL"),))
    (results,) = demo.run_demo(tmp_path, [0, 1], workers=1)
    report = (tmp_path / "report.md").read_text()
    u = results["aggregate"]["U"]
    assert report.startswith("# unseen demo report\n")
    assert f"| ESZSL | {u['mean'] * 100:.1f} ± {u['std'] * 100:.1f} |" in report
    for seed in (0, 1):
        assert f"[eszsl/seed-{seed}/report.md](eszsl/seed-{seed}/report.md)" in report
        seed_report = (tmp_path / "eszsl" / f"seed-{seed}" / "report.md").read_text()
        assert "eszsl on animals, paper protocol" in seed_report
