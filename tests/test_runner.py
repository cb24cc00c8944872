"""The runner: protocols, run directory contents, multi-seed aggregation, exact resume."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from typing import Any

import pytest
import torch

from unseen.data.synthetic import synthetic_benchmark
from unseen.data.tasks import GZSLTask
from unseen.errors import UnseenInputError
from unseen.evaluation import best_gamma
from unseen.methods.base import (
    EpochReport,
    GZSLMethod,
    MethodConfig,
    TrainingMonitor,
    capture_rng_state,
    restore_rng_state,
)
from unseen.runner import Runner, RunSpec, resolve_config
from unseen.selection import load_curves


def synthetic_loader(spec: RunSpec, seed_index: int):
    return synthetic_benchmark(seed=seed_index, images_per_class=30)


@dataclass
class TinyConfig(MethodConfig):
    epochs: int = 4
    lr: float = 0.5


class TinyBilinear(GZSLMethod):
    """A small stochastic method: SGD on a bilinear map over random mini-batches."""

    name = "tiny"
    config_class = TinyConfig
    presets = {"fast": {"epochs": 3}}
    # Simulates a kill (KeyboardInterrupt) after this epoch; not a setting, so that the killed
    # run and its resumption have the same fingerprint.
    crash_after_epoch = -1

    def __init__(self, config: TinyConfig, seed: int) -> None:
        super().__init__(config, seed)
        self.weights: torch.Tensor | None = None

    def fit(self, task: GZSLTask, monitor: TrainingMonitor) -> None:
        x = torch.as_tensor(task.features[task.train_idx])
        semantics = torch.as_tensor(task.semantics)
        seen = torch.as_tensor(task.seen_classes)
        y = torch.searchsorted(seen, torch.as_tensor(task.benchmark.labels[task.train_idx]))
        if self.weights is None:
            self.weights = torch.randn(x.shape[1], semantics.shape[1]) * 0.01
        for epoch in range(self.start_epoch, self.config.epochs):
            for _ in range(5):
                rows = torch.randperm(x.shape[0])[:32]
                w = self.weights.clone().requires_grad_(True)
                logits = x[rows] @ w @ semantics[seen].T
                loss = torch.nn.functional.cross_entropy(logits, y[rows])
                loss.backward()
                self.weights = (w - self.config.lr * w.grad).detach()
            self.start_epoch = epoch + 1
            scores = self.scores(task, torch.as_tensor(task.features[task.eval_idx]))
            monitor.epoch_end(self, EpochReport(epoch, {"last": scores, "half": scores * 0.5},
                                                losses={"ce": float(loss.detach())}))
            if epoch == self.crash_after_epoch:
                raise KeyboardInterrupt

    def scores(self, task: GZSLTask, inputs: torch.Tensor, candidate: str | None = None):
        return inputs.float() @ self.weights @ torch.as_tensor(task.semantics[task.classes]).T

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.weights, "epoch": self.start_epoch, "rng": capture_rng_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.weights, self.start_epoch = state["weights"], state["epoch"]
        restore_rng_state(state["rng"])


@pytest.fixture()
def tiny_method(monkeypatch):
    monkeypatch.setattr("unseen.runner.get_method", lambda name: TinyBilinear)
    return TinyBilinear


def killed(tmp_path, monkeypatch, after_epoch=1, **kwargs):
    """`run(...)` killed after `after_epoch` of its first phase."""
    monkeypatch.setattr(TinyBilinear, "crash_after_epoch", after_epoch)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, **kwargs)
    monkeypatch.setattr(TinyBilinear, "crash_after_epoch", -1)


def run(tmp_path, protocol="clean", seeds=(0, 1), overrides=None, name="run"):
    spec = RunSpec(method="tiny", dataset="synthetic", protocol=protocol, seeds=list(seeds),
                   out=str(tmp_path / name), overrides=overrides or {})
    return Runner(spec, load_benchmark=synthetic_loader).run()


def test_clean_protocol_writes_a_complete_run_directory(tmp_path, tiny_method):
    results = run(tmp_path)
    root = tmp_path / "run"
    on_disk = json.loads((root / "results.json").read_text())
    assert on_disk["protocol"] == "clean" and on_disk["seeds"] == [0, 1]
    for metric in ("U", "S", "H", "T1", "AUSUC"):
        assert 0.0 <= on_disk[metric] <= 1.0
        assert len(on_disk["aggregate"][metric]["values"]) == 2
    assert all(seed["selected"]["on"] == "validation" for seed in on_disk["per_seed"])
    assert results["H"] == pytest.approx(sum(r["H"] for r in on_disk["per_seed"]) / 2)
    rows = list(csv.DictReader((root / "metrics.csv").open()))
    phases = {(r["seed"], r["phase"]) for r in rows}
    # The default rule: three validation folds, then the retrain on trainval.
    assert phases == {(seed, phase) for seed in ("0", "1")
                      for phase in ("validation", "validation2", "validation3", "test")}
    # The test phase retrains for exactly the epochs chosen on validation.
    for seed in on_disk["per_seed"]:
        test_epochs = [int(r["epoch"]) for r in rows
                       if r["seed"] == str(seed["seed"]) and r["phase"] == "test"]
        assert max(test_epochs) == seed["selected"]["epoch"]
    assert (root / "seen_unseen_curve.png").stat().st_size > 1000
    assert (root / "training_curves.png").stat().st_size > 1000
    assert (root / "checkpoints" / "seed0_final.pt").is_file()
    config = json.loads((root / "config.json").read_text())
    assert config["run_options"]["feature_preprocessing"] == "minmax"
    assert (config["run_options"]["val_folds"], config["run_options"]["selection_window"]) == (3, 3)
    assert config["hyperparameters"]["epochs"] == 4


def test_paper_protocol_selects_on_test_and_says_so(tmp_path, tiny_method):
    # The clean protocol's epoch window does not apply: the best single epoch on test.
    results = run(tmp_path, protocol="paper", seeds=(0,), overrides={"selection_window": "3"})
    assert results["per_seed"][0]["selected"]["on"] == "test"
    assert "TEST" in results["protocol_description"]
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    assert {r["phase"] for r in rows} == {"test"}
    # Test-set selection: the reported H is the best H of any epoch on test.
    assert results["H"] == pytest.approx(max(float(r["H"]) for r in rows))


def test_killed_run_resumes_to_identical_results(tmp_path, tiny_method, monkeypatch):
    reference = run(tmp_path, seeds=(0, 1), name="reference")
    killed(tmp_path, monkeypatch, seeds=(0, 1), name="killed")
    killed_dir = tmp_path / "killed"
    assert not (killed_dir / "results.json").exists()
    resumed = Runner.resume(killed_dir, load_benchmark=synthetic_loader).run()
    for metric in ("U", "S", "H", "T1", "AUSUC", "gamma"):
        assert resumed[metric] == reference[metric], metric
    rows = list(csv.DictReader((killed_dir / "metrics.csv").open()))
    keys = [(r["seed"], r["phase"], r["epoch"]) for r in rows]
    assert len(keys) == len(set(keys)), "resumed epochs must not be logged twice"


def test_presets_and_overrides_resolve_in_order(tiny_method):
    spec = RunSpec(method="tiny", dataset="synthetic", preset="fast",
                   overrides={"lr": "0.1", "gamma": "0.25", "val_unseen_fraction": "0.3"})
    _, config, options = resolve_config(spec)
    assert config.epochs == 3 and config.lr == pytest.approx(0.1)
    assert options.gamma == pytest.approx(0.25) and options.val_unseen_fraction == 0.3


def test_fixed_gamma_is_applied_under_both_protocols(tmp_path, tiny_method):
    results = run(tmp_path, protocol="clean", seeds=(0,), overrides={"gamma": "0.0"})
    assert results["per_seed"][0]["gamma"] == 0.0


def test_selection_window_is_capped_at_the_epochs_and_validated(tmp_path, tiny_method):
    # TinyConfig trains 4 epochs: a window of 10 becomes 4, whose only full window ends at
    # the last epoch, so the clean protocol retrains for all 4 epochs.
    results = run(tmp_path, protocol="clean", seeds=(0,), overrides={"selection_window": "10"})
    assert results["per_seed"][0]["selected"]["epoch"] == 3
    with pytest.raises(UnseenInputError, match="selection_window"):
        resolve_config(RunSpec(method="tiny", dataset="synthetic",
                               overrides={"selection_window": "0"}))


def test_validation_folds_train_one_phase_each_and_choose_on_their_mean(tmp_path, tiny_method):
    results = run(tmp_path, protocol="clean", seeds=(0,),
                  overrides={"val_folds": "3", "selection_window": "1"})
    root = tmp_path / "run"
    rows = list(csv.DictReader((root / "metrics.csv").open()))
    assert {r["phase"] for r in rows} == {"validation", "validation2", "validation3", "test"}
    selected = results["per_seed"][0]["selected"]
    assert len(selected["folds"]) == 3
    # The chosen epoch has the best H averaged over the three folds.
    mean_h = [sum(max(float(r["H"]) for r in rows if r["phase"] == phase
                      and int(r["epoch"]) == epoch)
                  for phase in ("validation", "validation2", "validation3")) / 3
              for epoch in range(4)]
    assert selected["epoch"] == mean_h.index(max(mean_h))
    state = json.loads((root / "state.json").read_text())["seeds"]["0"]
    assert {"validation", "validation2", "validation3"} <= set(state)
    with pytest.raises(UnseenInputError, match="val_folds"):
        resolve_config(RunSpec(method="tiny", dataset="synthetic", overrides={"val_folds": "0"}))


def test_killed_run_with_validation_folds_resumes_to_identical_results(tmp_path, tiny_method,
                                                                         monkeypatch):
    folds = {"val_folds": "2"}
    reference = run(tmp_path, seeds=(0,), overrides=folds, name="reference")
    killed(tmp_path, monkeypatch, seeds=(0,), overrides=folds, name="killed")
    killed_dir = tmp_path / "killed"
    resumed = Runner.resume(killed_dir, load_benchmark=synthetic_loader).run()
    for metric in ("U", "S", "H", "T1", "AUSUC", "gamma"):
        assert resumed[metric] == reference[metric], metric
    assert resumed["per_seed"][0]["selected"] == reference["per_seed"][0]["selected"]


def test_a_new_runner_on_an_existing_run_directory_keeps_its_rows(tmp_path, tiny_method):
    run(tmp_path, seeds=(0,))
    metrics = tmp_path / "run" / "metrics.csv"
    before = list(csv.DictReader(metrics.open()))
    run(tmp_path, seeds=(0, 1))  # continues: seed 0 is done, seed 1 is new
    after = list(csv.DictReader(metrics.open()))
    assert after[:len(before)] == before
    assert {r["seed"] for r in after} == {"0", "1"}


def test_partitions_are_the_seed_positions_unless_given(tmp_path, tiny_method, monkeypatch):
    requested = []

    def fake_load_dataset(name, data_root=None, partition=0):
        requested.append(partition)
        return synthetic_benchmark(seed=partition, images_per_class=30)

    monkeypatch.setattr("unseen.data.loading.load_dataset", fake_load_dataset)
    monkeypatch.setattr("unseen.data.loading.is_embedded", lambda name: name == "animals")

    def train(seeds, partitions, name):
        spec = RunSpec(method="tiny", dataset="animals", seeds=seeds, partitions=partitions,
                       out=str(tmp_path / name), overrides={"epochs": "2"})
        return Runner(spec).run()

    default = train([5, 7], None, "default")
    assert requested == [0, 1]
    assert [p["partition"] for p in default["per_seed"]] == [0, 1]
    requested.clear()
    chosen = train([5, 7], [3, 1], "chosen")
    assert requested == [3, 1]
    assert [p["partition"] for p in chosen["per_seed"]] == [3, 1]
    # The same seed on another partition is not a continuation of that run.
    with pytest.raises(UnseenInputError, match="seed 5 was run there on partition 3"):
        train([5], [2], "chosen")
    # Nor is a killed seed: its checkpoints belong to the partition it started on.
    monkeypatch.setattr(TinyBilinear, "crash_after_epoch", 0)
    with pytest.raises(KeyboardInterrupt):
        train([8], [4], "killed")
    monkeypatch.setattr(TinyBilinear, "crash_after_epoch", -1)
    with pytest.raises(UnseenInputError, match="seed 8 was run there on partition 4"):
        train([8], [1], "killed")


def test_bad_partitions_are_refused(tmp_path, tiny_method):
    with pytest.raises(UnseenInputError, match="one partition"):
        RunSpec(method="tiny", dataset="animals", seeds=[0, 1], partitions=[0])
    with pytest.raises(UnseenInputError, match="one partition"):
        RunSpec(method="tiny", dataset="animals", seeds=[0], partitions=[-1])
    spec = RunSpec(method="tiny", dataset="synthetic", seeds=[0], partitions=[1],
                   out=str(tmp_path / "run"))
    with pytest.raises(UnseenInputError, match="only the embedded data sets"):
        Runner(spec).run()


def test_recorded_curves_let_the_paper_run_replay_the_clean_choice(tmp_path, tiny_method):
    overrides = {"record_curves": "true", "val_folds": "1", "selection_window": "1",
                 "gamma_shrink": "1"}
    clean = run(tmp_path, protocol="clean", seeds=(0,), overrides=overrides, name="clean")
    run(tmp_path, protocol="paper", seeds=(0,), overrides=overrides, name="paper")
    assert sorted(p.name for p in (tmp_path / "clean" / "curves").iterdir()) == [
        "seed0_test.pt", "seed0_validation.pt"]
    validation = load_curves(tmp_path / "clean" / "curves" / "seed0_validation.pt")
    test = load_curves(tmp_path / "paper" / "curves" / "seed0_test.pt")
    assert [point[:2] for point in test] == [(epoch, None) for epoch in range(4)]
    assert all(list(curves) == ["last", "half"] for _, _, curves in validation + test)
    result = clean["per_seed"][0]
    epoch, candidate = result["selected"]["epoch"], result["selected"]["candidate"]
    assert best_gamma(validation[epoch][2][candidate])[0] == result["gamma"]
    # The paper run trains on trainval as the clean retrain does: its curves hold the test H.
    unseen, seen = test[epoch][2][candidate].at(result["gamma"])
    assert 2 * unseen * seen / (unseen + seen) == pytest.approx(result["H"], abs=1e-12)


def test_paper_runs_do_not_depend_on_the_clean_protocols_options(tiny_method):
    def document(protocol, overrides):
        spec = RunSpec(method="tiny", dataset="synthetic", protocol=protocol, overrides=overrides)
        return Runner(spec, load_benchmark=synthetic_loader).fingerprint_document()

    clean_only = {"val_folds": "3", "selection_window": "5", "val_split_seed": "2"}
    assert document("paper", clean_only) == document("paper", {})
    assert document("clean", clean_only) != document("clean", {})
    assert document("paper", {"gamma": "0.5"}) != document("paper", {})


def test_gamma_shrink_scales_the_validation_gamma_and_nothing_else(tmp_path, tiny_method):
    one_fold = {"val_folds": "1", "selection_window": "1"}
    full = run(tmp_path, seeds=(0,), overrides={**one_fold, "gamma_shrink": "1"}, name="full")
    half = run(tmp_path, seeds=(0,), overrides=one_fold, name="half")  # the default, 0.5
    assert full["per_seed"][0]["gamma"] != 0.0
    assert half["per_seed"][0]["gamma"] == pytest.approx(0.5 * full["per_seed"][0]["gamma"])
    assert half["per_seed"][0]["selected"] == full["per_seed"][0]["selected"]
    fixed = run(tmp_path, seeds=(0,), overrides={**one_fold, "gamma": "0.3"}, name="fixed")
    assert fixed["per_seed"][0]["gamma"] == 0.3  # a fixed gamma is not shrunk
    with pytest.raises(UnseenInputError, match="gamma_shrink"):
        resolve_config(RunSpec(method="tiny", dataset="synthetic",
                               overrides={"gamma_shrink": "1.5"}))

