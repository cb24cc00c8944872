"""`unseen bench`: a tiny grid end to end, resumed after an interrupt, failures, bad input."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from unseen.bench import dataset_label
from unseen.cli import main
from unseen.methods.registry import method_names
from unseen.runner import Runner

TINY_CEGZSL = ["--preset", "cegzsl=demo", "--set", "cegzsl.epochs=2", "cegzsl.classifier_epochs=2",
               "cegzsl.zsl_classifier_epochs=2", "cegzsl.syn_num=20"]


def bench(out: Path, dataset: Path, *extra: str, methods=("eszsl", "cegzsl"),
          seeds=("0", "1")) -> int:
    return main(["bench", "--methods", *methods, "--datasets", str(dataset), "--seeds", *seeds,
                 "--out", str(out), "--quiet", *extra])


def results_of(out: Path, cell: str) -> dict:
    return json.loads((out / "runs" / cell / "results.json").read_text())


def csv_rows(out: Path) -> dict[tuple[str, str], dict[str, str]]:
    with (out / "leaderboard.csv").open(newline="") as handle:
        return {(row["method"], row["protocol"]): row for row in csv.DictReader(handle)}


def percent(results: dict, metric: str) -> str:
    stats = results["aggregate"][metric]
    return f"{stats['mean'] * 100:.1f} ± {stats['std'] * 100:.1f}"


def test_grid_end_to_end_leaderboard_holds_the_runs_figures(tmp_path, xlsa17_dir, capsys):
    out = tmp_path / "bench"
    assert bench(out, xlsa17_dir, *TINY_CEGZSL) == 0
    rows = csv_rows(out)
    markdown = (out / "leaderboard.md").read_text()
    assert markdown.startswith("# `unseen bench` — protocol: clean (")
    assert set(rows) == {("eszsl", "clean"), ("cegzsl", "clean")}
    h_means = {}
    for method in ("eszsl", "cegzsl"):
        results = results_of(out, f"{method}-SYNTH-clean")
        row = rows[(method, "clean")]
        assert row["status"] == "trained" and row["seeds"] == "0 1" and row["dataset"] == "SYNTH"
        for metric in ("U", "S", "H", "T1", "AUSUC"):
            stats = results["aggregate"][metric]
            assert float(row[f"{metric}_mean_pct"]) == pytest.approx(stats["mean"] * 100)
            assert float(row[f"{metric}_std_pct"]) == pytest.approx(stats["std"] * 100)
        seconds = np.mean([seed["seconds"] for seed in results["per_seed"]])
        assert float(row["seconds_per_seed"]) == pytest.approx(seconds, abs=0.01)
        assert row["H_clean_minus_paper_mean_pct"] == ""  # one protocol: no difference
        line = next(line for line in markdown.splitlines() if line.startswith(f"| {method} |"))
        assert percent(results, "U") in line and percent(results, "AUSUC") in line
        assert f"[report](runs/{method}-SYNTH-clean/report.md)" in line
        assert (out / "runs" / f"{method}-SYNTH-clean" / "report.md").is_file()
        h_means[method] = results["aggregate"]["H"]["mean"]
    best = max(h_means, key=h_means.get)
    best_line = next(line for line in markdown.splitlines() if line.startswith(f"| {best} |"))
    assert f"**{percent(results_of(out, f'{best}-SYNTH-clean'), 'H')}**" in best_line
    assert markdown.count("**") == 2  # only the best H is bold
    curve = out / "curves-SYNTH.png"
    assert curve.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![Seen-unseen curves on SYNTH](curves-SYNTH.png)" in markdown
    assert "[2/2] cegzsl-SYNTH-clean: trained" in capsys.readouterr().out


def test_interrupted_grid_resumes_reusing_finished_work(tmp_path, xlsa17_dir, monkeypatch,
                                                        capsys):
    """Killed in the second cell, seed 1, after its validation phase: the rerun reads the first
    cell, keeps the second cell's seed 0 and seed 1's validation phase, and trains only the
    rest."""
    out = tmp_path / "bench"
    original = Runner._fit
    calls = []

    def interrupting(self, seed, phase, *args, **kwargs):
        if self.spec.method == "cegzsl" and seed == 1 and phase == "test":
            raise KeyboardInterrupt
        return original(self, seed, phase, *args, **kwargs)

    monkeypatch.setattr(Runner, "_fit", interrupting)
    assert bench(out, xlsa17_dir, *TINY_CEGZSL) == 130
    assert "rerun the same `unseen bench` command" in capsys.readouterr().err
    assert not (out / "leaderboard.md").exists()
    eszsl_results = out / "runs" / "eszsl-SYNTH-clean" / "results.json"
    written = eszsl_results.stat().st_mtime_ns

    def counting(self, seed, phase, *args, **kwargs):
        calls.append((self.spec.method, seed, phase))
        return original(self, seed, phase, *args, **kwargs)

    monkeypatch.setattr(Runner, "_fit", counting)
    assert bench(out, xlsa17_dir, *TINY_CEGZSL) == 0
    assert calls == [("cegzsl", 1, "test")]  # eszsl reused; cegzsl's finished work kept
    assert eszsl_results.stat().st_mtime_ns == written
    output = capsys.readouterr().out
    assert "eszsl-SYNTH-clean: reused" in output and "cegzsl-SYNTH-clean: trained" in output
    rows = csv_rows(out)
    assert rows[("eszsl", "clean")]["status"] == "reused"
    assert rows[("cegzsl", "clean")]["seeds"] == "0 1"

    # Once everything is finished, a rerun trains nothing and says so.
    calls.clear()
    assert bench(out, xlsa17_dir, *TINY_CEGZSL) == 0
    assert calls == []
    assert {row["status"] for row in csv_rows(out).values()} == {"reused"}


def test_both_protocols_give_the_cost_of_honesty(tmp_path, xlsa17_dir):
    out = tmp_path / "bench"
    assert bench(out, xlsa17_dir, "--protocol", "both", methods=("eszsl",)) == 0
    paper, clean = results_of(out, "eszsl-SYNTH-paper"), results_of(out, "eszsl-SYNTH-clean")
    differences = [c["H"] - p["H"] for c, p in zip(clean["per_seed"], paper["per_seed"],
                                                   strict=True)]
    rows = csv_rows(out)
    for protocol in ("paper", "clean"):
        row = rows[("eszsl", protocol)]
        assert float(row["H_clean_minus_paper_mean_pct"]) == pytest.approx(
            np.mean(differences) * 100)
        assert float(row["H_clean_minus_paper_std_pct"]) == pytest.approx(
            np.std(differences, ddof=1) * 100)
    markdown = (out / "leaderboard.md").read_text()
    assert "protocols: paper and clean" in markdown
    assert "| method | H paper | H clean | clean − paper |" in markdown
    expected = (f"| eszsl | {percent(paper, 'H')} | {percent(clean, 'H')} | "
                f"{np.mean(differences) * 100:+.1f} ± {np.std(differences, ddof=1) * 100:.1f} |")
    assert expected in markdown


def test_a_failing_cell_is_reported_and_the_others_finish(tmp_path, xlsa17_dir, monkeypatch,
                                                          capsys):
    out = tmp_path / "bench"
    original = Runner.run

    def failing(self):
        if self.spec.protocol == "paper":
            raise RuntimeError("the solver exploded\nsecond line")
        return original(self)

    monkeypatch.setattr(Runner, "run", failing)
    assert bench(out, xlsa17_dir, "--protocol", "both", methods=("eszsl",)) == 1
    err = capsys.readouterr().err
    assert "bench cell eszsl-SYNTH-paper failed: RuntimeError: the solver exploded" in err
    rows = csv_rows(out)
    assert rows[("eszsl", "paper")]["status"] == "failed"
    assert rows[("eszsl", "paper")]["error"] == "RuntimeError: the solver exploded"
    assert rows[("eszsl", "paper")]["H_mean_pct"] == ""
    assert rows[("eszsl", "clean")]["status"] == "trained"
    assert rows[("eszsl", "clean")]["H_clean_minus_paper_mean_pct"] == ""  # no pair
    markdown = (out / "leaderboard.md").read_text()
    assert "| eszsl | paper | failed |" in markdown
    assert "- eszsl-SYNTH-paper: RuntimeError: the solver exploded" in markdown
    assert "| eszsl | failed | " in markdown  # the cost-of-honesty row


def test_parallel_jobs_run_cells_as_subprocesses(tmp_path, xlsa17_dir, monkeypatch):
    """Two cells at once through `unseen train`; one made to fail does not stop the other."""
    import unseen.bench as bench_module

    out = tmp_path / "bench"
    real_command = bench_module.cell_command

    def command(cell, threads):
        if cell.protocol == "paper":
            return [sys.executable, "-c", "import sys; print('unseen: error: disk on fire', "
                                          "file=sys.stderr); sys.exit(2)"]
        return real_command(cell, threads)

    monkeypatch.setattr(bench_module, "cell_command", command)
    assert bench(out, xlsa17_dir, "--protocol", "both", "--jobs", "2", methods=("eszsl",)) == 1
    rows = csv_rows(out)
    assert rows[("eszsl", "paper")]["status"] == "failed"
    assert "exit code 2: unseen: error: disk on fire" in rows[("eszsl", "paper")]["error"]
    clean = results_of(out, "eszsl-SYNTH-clean")
    assert rows[("eszsl", "clean")]["status"] == "trained"
    assert float(rows[("eszsl", "clean")]["H_mean_pct"]) == pytest.approx(
        clean["aggregate"]["H"]["mean"] * 100)
    assert (out / "logs" / "eszsl-SYNTH-clean.log").is_file()

    # The same cell in process gives the same figures (ESZSL is deterministic).
    assert bench(tmp_path / "serial", xlsa17_dir, methods=("eszsl",)) == 0
    serial = results_of(tmp_path / "serial", "eszsl-SYNTH-clean")
    assert [s["H"] for s in serial["per_seed"]] == pytest.approx(
        [s["H"] for s in clean["per_seed"]])


def test_subprocess_command_carries_every_setting(tmp_path, xlsa17_dir):
    from unseen.bench import BenchSpec, cell_command, plan_cells

    spec = BenchSpec(methods=["cegzsl"], datasets=[str(xlsa17_dir)], seeds=[3, 4],
                     out=str(tmp_path), presets={"cegzsl": "demo"},
                     overrides={"cegzsl.syn_num": "20", "val_folds": "2"})
    (cell,) = plan_cells(spec)
    command = cell_command(cell, threads=3)
    assert command[1:] == ["-m", "unseen", "--threads", "3", "train", "cegzsl", "--dataset",
                           str(xlsa17_dir), "--protocol", "clean", "--seed", "3", "4", "--out",
                           str(tmp_path / "runs" / "cegzsl-SYNTH-clean"), "--preset", "demo",
                           "--set", "val_folds=2", "syn_num=20"]


def test_a_cell_with_other_settings_is_refused_unless_overwrite(tmp_path, xlsa17_dir, capsys):
    out = tmp_path / "bench"
    assert bench(out, xlsa17_dir, methods=("eszsl",), seeds=("0",)) == 0
    capsys.readouterr()
    other = ("--set", "eszsl.feature_regularisation=1,10")
    assert bench(out, xlsa17_dir, *other, methods=("eszsl",), seeds=("0",)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "bench cell eszsl-SYNTH-clean" in err and "feature_regularisation" in err
    assert "--overwrite" in err
    assert bench(out, xlsa17_dir, *other, "--overwrite", methods=("eszsl",), seeds=("0",)) == 0
    config = json.loads((out / "runs" / "eszsl-SYNTH-clean" / "config.json").read_text())
    assert config["hyperparameters"]["feature_regularisation"] == [1.0, 10.0]


@pytest.mark.parametrize(("args", "expected"), [
    (["--methods", "eszsl", "nosuch"], "option '--methods': unknown method 'nosuch'; expected one "
                                       f"of {', '.join(sorted(method_names()))}"),
    (["--datasets", "NOSUCH"], "option '--datasets': data set 'NOSUCH'"),
    (["--set", "syn_num=5"], "option '--set syn_num=5': expected a run option"),
    (["--set", "eszsl.nosuch=5"], "option 'nosuch': unknown for ESZSLConfig"),
    (["--set", "duet.lr=5"], "expected METHOD.KEY with METHOD one of the benched methods"),
    (["--preset", "eszsl=nosuch"], "option '--preset': unknown preset 'nosuch' for eszsl"),
    (["--preset", "eszsl"], "option '--preset eszsl': expected METHOD=PRESET"),
    (["--protocol", "honest"], "argument --protocol: invalid choice: 'honest'"),
    (["--jobs", "0"], "expected a number of parallel cells"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, xlsa17_dir, capsys, args, expected):
    base = {"--methods": ["eszsl"], "--datasets": [str(xlsa17_dir)]}
    for flag, value in base.items():
        if flag not in args:
            args = [flag, *value, *args]
    assert main(["bench", "--out", str(tmp_path / "bench"), *args]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and expected in err
    assert not (tmp_path / "bench" / "runs").exists()  # refused before anything trained


def test_plain_key_of_a_hyperparameter_suggests_the_method_form(tmp_path, xlsa17_dir, capsys):
    assert main(["bench", "--methods", "eszsl", "cegzsl", "--datasets", str(xlsa17_dir),
                 "--set", "syn_num=5", "--out", str(tmp_path)]) == 2
    assert "write METHOD.syn_num=VALUE (cegzsl.syn_num)" in capsys.readouterr().err


def test_dataset_labels(tmp_path, xlsa17_dir):
    from unseen.errors import UnseenInputError

    assert dataset_label(str(xlsa17_dir)) == "SYNTH"
    assert dataset_label("Animals") == "animals"
    splits = tmp_path / "CUB" / "sent_splits.mat"
    splits.parent.mkdir()
    splits.write_bytes(b"")
    assert dataset_label(f"semi-real:{splits}") == "CUB-sent-semi"
    assert dataset_label(f"semi-real:{splits}?scale=0.1") == "CUB-sent-semi-0.1"
    with pytest.raises(UnseenInputError, match="found no file"):
        dataset_label(f"semi-real:{tmp_path / 'missing.mat'}")
    with pytest.raises(UnseenInputError, match="expected distinct data sets"):
        from unseen.bench import BenchSpec, plan_cells

        plan_cells(BenchSpec(methods=["eszsl"], datasets=[str(xlsa17_dir), str(xlsa17_dir)]))
