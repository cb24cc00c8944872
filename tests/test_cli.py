"""The `unseen` command: exit codes, messages, and the train -> eval round trip."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from unseen.cli import main
from unseen.data.synthetic import synthetic_benchmark
from unseen.data.xlsa17 import write_xlsa17


@pytest.fixture()
def dataset_dir(tmp_path):
    directory = tmp_path / "SYN"
    write_xlsa17(synthetic_benchmark(images_per_class=30), directory)
    return directory


def test_train_then_eval_round_trip(tmp_path, dataset_dir, capsys):
    out = tmp_path / "run"
    code = main(["train", "eszsl", "--dataset", str(dataset_dir), "--seed", "0", "1",
                 "--out", str(out), "--set", "feature_regularisation=1,10",
                 "--set", "semantic_regularisation=0.1,1"])
    assert code == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert results["method"] == "eszsl" and results["seeds"] == [0, 1]
    assert f"H {results['H'] * 100:5.1f}" in printed
    assert results["per_seed"][0]["selected"]["candidate"].startswith("feature_regularisation=")
    assert main(["eval", str(out)]) == 0
    again = capsys.readouterr().out
    assert f"H {results['H'] * 100:5.1f}" in again
    # A gamma that makes every prediction unseen gives S = 0.
    assert main(["eval", str(out), "--gamma", "1e9"]) == 0
    assert "S   0.0" in capsys.readouterr().out


def test_parent_data_root_is_accepted(tmp_path, dataset_dir):
    code = main(["train", "eszsl", "--dataset", "SYN", "--data-root", str(dataset_dir.parent),
                 "--out", str(tmp_path / "run"), "--set", "feature_regularisation=1",
                 "--set", "semantic_regularisation=1"])
    assert code == 0


@pytest.mark.parametrize("argv, fragment", [
    (["train", "nosuchmethod", "--dataset", "AWA2"], "method 'nosuchmethod'"),
    (["train", "eszsl", "--dataset", "NOSUCHSET"], "NOSUCHSET"),
    (["train", "eszsl", "--dataset", "AWA2", "--set", "novalue"], "KEY=VALUE"),
    (["train", "eszsl"], "--dataset"),
    (["train", "eszsl", "--dataset", "animals", "--seed", "0", "1", "--partition", "2"],
     "one partition (>= 0) per seed (2)"),
    (["data", "info", "/nonexistent/dir/x"], "/nonexistent/dir/x"),
])
def test_bad_input_exits_2_with_one_clear_line(argv, fragment, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err
    assert err.count("\n") == 1


def test_unknown_hyperparameter_names_the_known_ones(tmp_path, dataset_dir, capsys):
    code = main(["train", "eszsl", "--dataset", str(dataset_dir), "--out", str(tmp_path / "r"),
                 "--set", "learning_rat=3"])
    assert code == 2
    err = capsys.readouterr().err
    assert "learning_rat" in err and "feature_regularisation" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_directory(tmp_path, dataset_dir, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    assert main(["train", "eszsl", "--dataset", str(dataset_dir),
                 "--out", str(locked / "run")]) == 2
    assert "writable" in capsys.readouterr().err


def test_output_directory_under_a_file_is_refused(tmp_path, dataset_dir, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["train", "eszsl", "--dataset", str(dataset_dir),
                 "--out", str(blocker / "run")]) == 2
    assert "expected a writable directory" in capsys.readouterr().err


def test_methods_lists_every_method_and_preset(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    for name in ("eszsl", "cegzsl", "duet"):
        assert name in out
    assert "AWA2" in out


def test_console_script_usage_error_exits_2():
    result = subprocess.run([sys.executable, "-m", "unseen.cli", "train", "--protocol", "bogus"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "bogus" in result.stderr


def _rewrite_mat(path, **changes):
    from scipy.io import loadmat, savemat

    content = {k: v for k, v in loadmat(path).items() if not k.startswith("__")}
    for key, value in changes.items():
        if value is None:
            content.pop(key)
        else:
            content[key] = value(content[key]) if callable(value) else value
    savemat(path, content)


def _nan_first(features):
    features = features.astype(float)
    features[0, 0] = float("nan")
    return features


BAD_FILES = {
    "missing file": ("res101.mat", "delete", "res101.mat"),
    "missing field": ("att_splits.mat", {"trainval_loc": None}, "trainval_loc"),
    "features transposed": ("res101.mat", {"features": lambda f: f.T}, "features"),
    "label out of range": ("res101.mat", {"labels": lambda l: l * 0 + 999}, "labels"),
    "loc index zero": ("att_splits.mat", {"test_seen_loc": lambda l: l * 0}, "1-based"),
    "NaN feature": ("res101.mat", {"features": _nan_first}, "NaN"),
    "att columns": ("att_splits.mat", {"att": lambda a: a[:, :-1]}, "att"),
    "not MATLAB": ("att_splits.mat", "garbage", "att_splits.mat"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_data_file_exits_2_and_writes_no_results(tmp_path, dataset_dir, capsys, case):
    filename, change, fragment = BAD_FILES[case]
    path = dataset_dir / filename
    if change == "delete":
        path.unlink()
    elif change == "garbage":
        path.write_bytes(b"this is not a MATLAB file at all")
    else:
        _rewrite_mat(path, **change)
    out = tmp_path / "run"
    assert main(["train", "eszsl", "--dataset", str(dataset_dir), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert fragment in err and filename in err and "Traceback" not in err
    assert not (out / "results.json").exists()
