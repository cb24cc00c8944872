"""The per-epoch line: on stderr through a pipe, silenced by quiet and off the main process."""

from __future__ import annotations

import pytest

from unseen.cli import main
from unseen.progress import Console, epoch_line, seed_line

ROW = {"seed": 0, "phase": "validation", "epoch": 2, "candidate": "c", "U": 0.4, "S": 0.6,
       "H": 0.512, "loss_critic": -1.25, "loss_generator": 0.5, "loss_empty_batches": 3.0}


def test_epoch_line_shows_the_declared_losses_h_and_seconds():
    line = epoch_line(0, "validation", ROW, 20, ("generator", "critic"), 4.06)
    assert line == ("[seed 0 | validation] epoch 3/20  generator 0.5  critic -1.25  H 51.2  "
                    "(4.1 s)")
    every_loss = epoch_line(1, "test", ROW, 3, None, 0.0)
    assert "critic -1.25  generator 0.5  empty_batches 3" in every_loss
    assert every_loss.startswith("[seed 1 | test] epoch 3/3")


def test_seed_line_names_the_figures_and_the_choice():
    result = {"seed": 2, "U": 0.5, "S": 0.75, "H": 0.6, "T1": 0.55, "gamma": 0.25,
              "seconds": 12.3, "selected": {"epoch": 4, "candidate": "classifier_epoch=3",
                                            "on": "validation"}}
    assert seed_line(result) == ("[seed 2] test  U 50.0  S 75.0  H 60.0  T1 55.0  (epoch 5, "
                                 "candidate classifier_epoch=3, stacking gamma 0.25 chosen on "
                                 "validation; 12 s)")


def test_console_prints_to_stderr_unless_quiet_or_not_the_main_process(capfd, monkeypatch):
    Console().print("hello")
    Console(quiet=True).print("quiet")
    assert list(Console().bar(range(3), "steps", 3)) == [0, 1, 2]  # no bar: not a terminal
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == "hello\n"
    monkeypatch.setattr("unseen.progress.is_main_process", lambda: False)
    Console().epoch_printer(0, "test", 1, None)(ROW)
    assert capfd.readouterr().err == ""


def test_train_prints_a_line_per_epoch_through_a_pipe(xlsa17_dir, tmp_path, capfd):
    argv = ["train", "cegzsl", "--dataset", str(xlsa17_dir), "--preset", "demo", "--set",
            "epochs=2", "classifier_epochs=2", "zsl_classifier_epochs=2", "syn_num=20",
            "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    captured = capfd.readouterr()
    assert "H " in captured.out and "[seed" not in captured.out  # stdout: the table only
    lines = captured.err.splitlines()
    validation = [line for line in lines if line.startswith("[seed 0 | validation] epoch")]
    assert [line.split()[5] for line in validation] == ["1/2", "2/2"]
    assert all("critic_loss" in line and "generator_loss" in line and " H " in line
               for line in validation)
    assert not any("without_positives" in line or "output_max" in line for line in lines)
    assert any(line.startswith("[seed 0] test  U ") for line in lines)


@pytest.mark.parametrize("quiet", [False, True])
def test_quiet_silences_stderr(xlsa17_dir, tmp_path, capfd, quiet):
    argv = ["train", "eszsl", "--dataset", str(xlsa17_dir), "--out", str(tmp_path / "run")]
    assert main(argv + (["--quiet"] if quiet else [])) == 0
    captured = capfd.readouterr()
    assert "H " in captured.out
    assert (captured.err == "") == quiet
    assert quiet or "[seed 0 | validation] epoch 1/1  H " in captured.err
