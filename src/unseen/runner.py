"""Train a method on a benchmark under a protocol, for several seeds, into a run directory.

    files -> Benchmark -> GZSLTask -> method.fit -> candidate scores -> SelectionMonitor
          -> final test evaluation -> results.json, metrics.csv, plots, checkpoints

Protocols:
- `clean` (default): phase "validation" trains on the validation task (built from trainval
  only) and picks the epoch, the classifier candidate and gamma there; phase "test" retrains
  on trainval for the chosen number of epochs and evaluates once on the test splits with the
  chosen candidate and gamma. With `val_folds=K` phases validation, validation2, ... train on
  K class splits and the choice is made on their mean H (`selection.combine_folds`).
- `paper`: one phase on the test task; epoch and candidate are the best on the test set, gamma
  is the method's published constant. This reproduces the references' numbers and is labelled
  as test-set selection everywhere.
"""

from __future__ import annotations

import platform
import subprocess
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unseen.data.benchmark import Benchmark
from unseen.data.tasks import (
    GZSLTask,
    Preprocessing,
    ValidationSplit,
    make_test_task,
    make_validation_task,
)
from unseen.errors import UnseenInputError
from unseen.evaluation import evaluate
from unseen.methods.base import GZSLMethod, MethodConfig, seed_everything
from unseen.methods.registry import get_method
from unseen.parallel import init_from_env, is_main_process
from unseen.results import aggregate_results, write_plots
from unseen.rundir import RunDirectory, ScalarLogger
from unseen.selection import Selection, SelectionMonitor, combine_folds

PROTOCOLS = ("clean", "paper")
RUN_OPTION_KEYS = ("feature_preprocessing", "semantic_preprocessing", "val_unseen_fraction",
                   "val_seen_fraction", "val_split_seed", "val_folds", "gamma",
                   "selection_window")


@dataclass
class RunSpec:
    """Everything `unseen train` was asked for; saved (resolved) as config.json."""

    method: str
    dataset: str
    data_root: str | None = None
    protocol: str = "clean"
    preset: str | None = None
    overrides: dict[str, str] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    out: str = "runs/latest"
    # Seen/unseen partition of an embedded data set per seed; None: the seed's position in
    # `seeds` (0, 1, 2, ...), so that `--seed 0 1 2` covers three partitions.
    partitions: list[int] | None = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise UnseenInputError(f"option '--protocol': expected one of {', '.join(PROTOCOLS)}, "
                                   f"found {self.protocol!r}")
        if not self.seeds:
            raise UnseenInputError("option '--seed': expected at least one seed, found none")
        if self.partitions is not None and (len(self.partitions) != len(self.seeds)
                                            or min(self.partitions) < 0):
            raise UnseenInputError(f"option '--partition': expected one partition (>= 0) per "
                                   f"seed ({len(self.seeds)}), found {self.partitions}")

    def partition_of(self, seed_index: int) -> int:
        """The partition that the `seed_index`-th seed trains and tests on."""
        return seed_index if self.partitions is None else self.partitions[seed_index]


@dataclass
class RunOptions:
    """Runner-level settings (not method hyperparameters), settable with --set."""

    feature_preprocessing: str = "minmax"
    semantic_preprocessing: str = "as_stored"
    val_unseen_fraction: float = 0.2
    val_seen_fraction: float = 0.2
    val_split_seed: int = 0
    # Validation class splits to average the choice over (clean protocol); the xlsa17 protocol
    # defines three. 1: a single split, as before.
    val_folds: int = 1
    gamma: float | None = None  # fixed calibrated-stacking gamma; None: protocol decides
    # Choose the epoch by the mean H of this many consecutive epochs (1: the best single epoch,
    # as the references do); capped at the number of epochs.
    selection_window: int = 1

    @property
    def preprocessing(self) -> Preprocessing:
        return Preprocessing(self.feature_preprocessing, self.semantic_preprocessing)

    @property
    def validation_split(self) -> ValidationSplit:
        return ValidationSplit(self.val_unseen_fraction, self.val_seen_fraction,
                               self.val_split_seed)


def resolve_config(spec: RunSpec) -> tuple[type[GZSLMethod], MethodConfig, RunOptions]:
    """Method class, its config (defaults <- preset <- --set) and the runner options."""
    method_class = get_method(spec.method)
    config = method_class.config_class()
    preset = spec.preset or _default_preset(method_class, spec.dataset)
    if preset is not None:
        if preset not in method_class.presets:
            raise UnseenInputError(f"option '--preset': unknown preset {preset!r} for "
                                   f"{method_class.name}; known: {', '.join(method_class.presets)}")
        config = config.updated(method_class.presets[preset])
    run_values = {k: v for k, v in spec.overrides.items() if k in RUN_OPTION_KEYS}
    method_values = {k: v for k, v in spec.overrides.items() if k not in RUN_OPTION_KEYS}
    config = config.updated(method_values)
    options = RunOptions()
    for key, value in run_values.items():
        current = getattr(options, key)
        try:
            converted = float(value) if key == "gamma" or isinstance(current, float) else (
                int(value) if isinstance(current, int) else value)
        except ValueError:
            raise UnseenInputError(f"option '--set {key}={value}': expected a number") from None
        setattr(options, key, converted)
    _ = options.preprocessing  # validates the preprocessing names early
    for key in ("selection_window", "val_folds"):
        if getattr(options, key) < 1:
            raise UnseenInputError(f"option '--set {key}={getattr(options, key)}': "
                                   "expected a positive integer")
    return method_class, config, options


def _default_preset(method_class: type[GZSLMethod], dataset: str) -> str | None:
    """The preset named after the data set, if the method has one (AWA2 -> 'AWA2')."""
    by_lower = {name.lower(): name for name in method_class.presets}
    return by_lower.get(Path(dataset).name.lower())


class Runner:
    """Runs (or resumes) one `RunSpec` into its run directory."""

    def __init__(self, spec: RunSpec, load_benchmark=None) -> None:
        self.spec = spec
        self.method_class, self.config, self.options = resolve_config(spec)
        self.run_dir = RunDirectory(spec.out)
        self._load_benchmark = load_benchmark or _default_loader
        # A run directory that already has rows is being continued: keep them, so that the
        # rewritten metrics.csv does not lose the seeds and phases finished earlier.
        self.rows: list[dict[str, Any]] = [_parse_row(row) for row in self.run_dir.read_metrics()]
        self.scalars = ScalarLogger(self.run_dir.root / "tensorboard")

    # -- public ------------------------------------------------------------------------------------
    @classmethod
    def resume(cls, run_dir: str | Path, load_benchmark=None) -> Runner:
        """Continue a killed run from its config.json, state.json and checkpoints."""
        config = RunDirectory(run_dir).read_config()
        spec = RunSpec(**config["spec"])
        spec.out = str(run_dir)
        return cls(spec, load_benchmark)

    def run(self) -> dict[str, Any]:
        init_from_env()
        self.run_dir.create()
        config = self.resolved_config()  # runs `git rev-parse` once
        self.run_dir.write_json(self.run_dir.config_path, config)
        state = self.run_dir.read_state()
        self._check_partitions(state)
        per_seed = [state["seeds"][str(s)]["result"] for s in self.spec.seeds
                    if state["seeds"].get(str(s), {}).get("done")]
        for seed_index, seed in enumerate(self.spec.seeds):
            if state["seeds"].get(str(seed), {}).get("done"):
                continue
            per_seed.append(self._run_seed(seed_index, seed, state))
        results = aggregate_results(config, per_seed)
        self.run_dir.write_json(self.run_dir.results_path, results)
        if is_main_process():
            write_plots(self.run_dir, results, self.rows)
        self.scalars.close()
        return results

    def resolved_config(self) -> dict[str, Any]:
        return {
            "spec": asdict(self.spec),
            "method": self.method_class.name,
            "dataset": self.spec.dataset,
            "protocol": self.spec.protocol,
            "protocol_description": _PROTOCOL_TEXT[self.spec.protocol],
            "preset": self.spec.preset or _default_preset(self.method_class, self.spec.dataset),
            "hyperparameters": asdict(self.config),
            "run_options": asdict(self.options),
            "environment": _environment(),
        }

    def _check_partitions(self, state: dict[str, Any]) -> None:
        """Partitions exist only on the embedded data sets, and a seed's results and checkpoints
        are reused only for the partition they were made on."""
        from unseen.data.loading import is_embedded

        if self.spec.partitions is not None and not is_embedded(self.spec.dataset):
            raise UnseenInputError(f"option '--partition': only the embedded data sets have "
                                   f"partitions; {self.spec.dataset!r} has its fixed proposed "
                                   "split")
        for index, seed in enumerate(self.spec.seeds):
            entry = state["seeds"].get(str(seed), {})
            recorded = entry.get("partition", entry.get("result", {}).get("partition"))
            wanted = self.spec.partition_of(index)
            if recorded is not None and recorded != wanted:
                raise UnseenInputError(
                    f"run directory {self.run_dir.root}: seed {seed} was run there on partition "
                    f"{recorded}, asked for partition {wanted}; use another --out")

    # -- one seed ----------------------------------------------------------------------------------
    def _run_seed(self, seed_index: int, seed: int, state: dict[str, Any]) -> dict[str, Any]:
        benchmark = self._load_benchmark(self.spec, seed_index)
        seed_state = state["seeds"].setdefault(str(seed), {})
        seed_state["partition"] = self.spec.partition_of(seed_index)
        self._write_state(state)  # before any checkpoint of this seed exists
        test_task = make_test_task(benchmark, self.options.preprocessing)
        started = time.time()
        if self.spec.protocol == "paper":
            gamma = self.options.gamma if self.options.gamma is not None else float(
                getattr(self.config, "gamma", 0.0))
            selection, monitor = self._fit(seed, "test", test_task, self.config, gamma)
            scores, zsl_scores = monitor.scores["best"], monitor.scores["best_zsl"]
        else:
            selection = self._validation_selection(seed, benchmark, seed_state, state)
            gamma = self.options.gamma if self.options.gamma is not None else float(
                selection.result["gamma"])
            # Retrain on trainval for the chosen number of epochs; no choice is made on test.
            # Methods that evaluate mid-epoch stop at the chosen batch (`stop_after_steps`).
            retrain = {"epochs": selection.epoch + 1}
            if hasattr(self.config, "stop_after_steps"):
                retrain["stop_after_steps"] = selection.step or 0
            test_config = self.config.updated(retrain)
            _, monitor = self._fit(seed, "test", test_task, test_config, gamma,
                                   only_candidate=selection.candidate,
                                   only_zsl_candidate=selection.zsl_candidate)
            scores, zsl_scores = monitor.scores["last"], monitor.scores["last_zsl"]
        final = self._final_result(test_task, scores, gamma, zsl_scores)
        selected = {"epoch": selection.epoch, "step": selection.step,
                    "candidate": selection.candidate,
                    "zsl_epoch": selection.zsl_epoch, "zsl_candidate": selection.zsl_candidate,
                    "on": "validation" if self.spec.protocol == "clean" else "test"}
        if "folds" in selection.result:
            selected["folds"] = selection.result["folds"]
        result = {
            "seed": seed, "partition": self.spec.partition_of(seed_index), **final,
            "selected": selected, "seconds": round(time.time() - started, 2),
        }
        self._save_final(seed, self._last_method, test_task, scores, result)
        seed_state.update({"done": True, "result": result})
        self._write_state(state)
        return result

    def _validation_selection(self, seed: int, benchmark: Benchmark, seed_state: dict[str, Any],
                              state: dict[str, Any]) -> Selection:
        """Train on each validation fold (phases validation, validation2, ...) and choose."""
        selections = []
        for fold in range(self.options.val_folds):
            phase = "validation" if fold == 0 else f"validation{fold + 1}"
            if phase not in seed_state:
                split = replace(self.options.validation_split, fold=fold)
                val_task = make_validation_task(benchmark, self.options.preprocessing, split)
                selection, _ = self._fit(seed, phase, val_task, self.config, self.options.gamma)
                seed_state[phase] = selection.__dict__
                self._write_state(state)
            selections.append(Selection(**seed_state[phase]))
        if len(selections) == 1:
            return selections[0]
        return combine_folds(selections, self.options.selection_window)

    def _fit(self, seed: int, phase: str, task: GZSLTask, config: MethodConfig,
             gamma: float | None, only_candidate: str | None = None,
             only_zsl_candidate: str | None = None) -> tuple[Selection, SelectionMonitor]:
        checkpoint_path = self.run_dir.checkpoint_path(seed, phase)
        method = self.method_class(config, seed)
        selection, scores = None, None
        if checkpoint_path.is_file():
            checkpoint = self.run_dir.load_checkpoint(checkpoint_path)
            method.load_state_dict(checkpoint["method_state"])
            selection, scores = Selection(**checkpoint["selection"]), checkpoint["scores"]
        else:
            seed_everything(seed)
        self.rows = [r for r in self.rows if not (r.get("seed") == seed and r.get("phase") == phase
                                                   and r.get("epoch", -1) >= method.start_epoch)]

        def log_row(row: dict[str, Any]) -> None:
            row = {"seed": seed, "phase": phase, **row}
            self.rows.append(row)
            self.run_dir.write_metrics(self.rows)
            self.scalars.log(f"seed{seed}/{phase}", row, row["epoch"])

        window = min(self.options.selection_window, int(getattr(config, "epochs", 1)) or 1)
        monitor = SelectionMonitor(task, gamma, checkpoint_path, self.run_dir.save_checkpoint,
                                   log_row, selection, only_candidate, only_zsl_candidate,
                                   scores=scores, window=window)
        if method.start_epoch < config.epochs:  # else: finished before a kill; scores restored
            method.fit(task, monitor)
        self._last_method = method
        return monitor.selection, monitor

    # -- results -----------------------------------------------------------------------------------
    @staticmethod
    def _final_result(task: GZSLTask, scores: torch.Tensor, gamma: float,
                      zsl_scores: torch.Tensor | None) -> dict[str, Any]:
        labels = torch.as_tensor(task.labels_of(task.eval_idx))
        is_seen = torch.as_tensor(task.is_seen_class)
        zsl_labels = None
        if zsl_scores is not None:
            zsl_labels = torch.as_tensor(np.searchsorted(
                task.unseen_classes, task.benchmark.labels[task.eval_unseen_idx]))
        result = evaluate(scores, labels, is_seen, gamma=gamma, zsl_scores=zsl_scores,
                          zsl_labels=zsl_labels)
        return _public_metrics(result.to_dict(include_curve=False))

    def _save_final(self, seed: int, method: GZSLMethod, task: GZSLTask,
                    scores: torch.Tensor, result: dict[str, Any]) -> None:
        self.run_dir.save_checkpoint(self.run_dir.scores_path(seed), {
            "scores": scores, "labels": torch.as_tensor(task.labels_of(task.eval_idx)),
            "is_seen_class": torch.as_tensor(task.is_seen_class),
            "class_names": [task.benchmark.class_names[c] for c in task.classes],
            "gamma": result["gamma"], "protocol": self.spec.protocol})
        self.run_dir.save_checkpoint(self.run_dir.final_checkpoint_path(seed), {
            "method": self.method_class.name, "config": asdict(method.config),
            "method_state": method.state_dict(), "candidate": result["selected"]["candidate"],
            "gamma": result["gamma"], "classes": task.classes.tolist(),
            "seen_classes": task.seen_classes.tolist(), "partition": result["partition"],
            "class_names": [task.benchmark.class_names[c] for c in task.classes],
            "preprocessing": task.notes.get("preprocessing"), "minmax": task.notes.get("minmax"),
            "benchmark_source": _jsonable_source(task.benchmark.source)})

    def _write_state(self, state: dict[str, Any]) -> None:
        self.run_dir.write_json(self.run_dir.state_path, state)


_PROTOCOL_TEXT = {
    "clean": "epoch, classifier candidate and calibrated-stacking gamma chosen on a validation "
             "split built from trainval only (class-disjoint pseudo-unseen classes plus held-out "
             "seen images); the model is then retrained on trainval and evaluated once on test",
    "paper": "reproduces the reference code: epoch and classifier candidate are the best on the "
             "TEST set and gamma is the published constant; test-set selection, optimistic",
}


def _public_metrics(result: dict[str, Any]) -> dict[str, Any]:
    keys = ("U", "S", "H", "T1", "AUSUC", "gamma", "per_class_accuracy")
    return {key: result.get(key) for key in keys}


def _parse_row(row: dict[str, str]) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for key, value in row.items():
        if key in ("seed", "epoch"):
            parsed[key] = int(value)
        else:
            try:
                parsed[key] = float(value)
            except (TypeError, ValueError):
                parsed[key] = value
    return parsed


def _jsonable_source(source: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in source.items()
            if isinstance(v, (str, int, float, bool, Path, type(None), list, dict))}


def _environment() -> dict[str, Any]:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        sha = None
    from unseen import __version__

    return {"unseen": __version__, "git_sha": sha, "torch": torch.__version__,
            "python": platform.python_version(), "cuda": torch.cuda.is_available()}


def _default_loader(spec: RunSpec, seed_index: int) -> Benchmark:
    from unseen.data.loading import load_dataset

    return load_dataset(spec.dataset, spec.data_root, partition=spec.partition_of(seed_index))
