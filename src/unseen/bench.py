"""`unseen bench`: train a grid of methods x data sets x protocols, seeds each, then rank them.

    DIR/
      runs/METHOD-DATASET-PROTOCOL/   one ordinary `unseen train` run directory per grid cell
      logs/METHOD-DATASET-PROTOCOL.log   a cell's output when it ran as a subprocess (--jobs > 1)
      leaderboard.md, leaderboard.csv, curves-DATASET.png   (`unseen.leaderboard`)

Rerunning the same command is safe and cheap: a cell whose run directory holds a finished run
with the same settings (the run's fingerprint) and seeds is read, not retrained; a cell killed
midway continues from its state.json and checkpoints (the runner skips finished seeds and
phases and resumes the interrupted one). A cell holding a run with other settings is refused
before anything trains, unless `overwrite` discards it.

Overrides (`--set`): `METHOD.KEY=VALUE` sets a hyperparameter of one method
(`cegzsl.syn_num=1000`); a plain `KEY=VALUE` sets a run option of every cell (`val_folds=3`,
`selection_window=5`, ...; `unseen.runner.RUN_OPTION_KEYS`).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from unseen.errors import UnseenInputError
from unseen.fingerprint import differences, fingerprint_of
from unseen.methods.registry import get_method, method_names
from unseen.rundir import RunDirectory
from unseen.runner import RUN_OPTION_KEYS, Runner, RunSpec, resolve_config

PROTOCOL_CHOICES = {"clean": ("clean",), "paper": ("paper",), "both": ("paper", "clean")}


@dataclass
class BenchSpec:
    """What `unseen bench` was asked for."""

    methods: list[str]
    datasets: list[str]
    protocol: str = "clean"  # clean | paper | both
    seeds: list[int] = field(default_factory=lambda: [0])
    out: str = "runs/bench"
    data_root: str | None = None
    presets: dict[str, str] = field(default_factory=dict)  # method -> preset
    overrides: dict[str, str] = field(default_factory=dict)  # METHOD.KEY or run-option KEY
    overwrite: bool = False

    @property
    def protocols(self) -> tuple[str, ...]:
        if self.protocol not in PROTOCOL_CHOICES:
            raise UnseenInputError(f"option '--protocol': expected one of "
                                   f"{', '.join(PROTOCOL_CHOICES)}, found {self.protocol!r}")
        return PROTOCOL_CHOICES[self.protocol]


@dataclass(frozen=True)
class Cell:
    """One (method, data set, protocol) of the grid: one run directory."""

    method: str
    dataset: str  # as given (a name, a directory, semi-real:PATH)
    label: str  # the data set's short name in directory names and the leaderboard
    protocol: str
    spec: RunSpec

    @property
    def name(self) -> str:
        return f"{self.method}-{self.label}-{self.protocol}"

    @property
    def run_dir(self) -> Path:
        return Path(self.spec.out)


@dataclass
class CellOutcome:
    """What became of a cell: trained, reused (finished before) or failed (with its error)."""

    cell: Cell
    status: str
    results: dict[str, Any] | None = None
    error: str | None = None


# -- planning -------------------------------------------------------------------------------------
def plan_cells(spec: BenchSpec) -> list[Cell]:
    """The grid's cells in order (data set, method, protocol); every name, preset and override
    is checked here, so that bad input stops the bench before anything trains."""
    methods = _check_methods(spec.methods)
    protocols = spec.protocols
    if not spec.datasets:
        raise UnseenInputError("option '--datasets': expected at least one data set, found none")
    labels = {}
    for dataset in spec.datasets:
        label = dataset_label(dataset, spec.data_root)
        if label in labels:
            raise UnseenInputError(f"option '--datasets': expected distinct data sets, found "
                                   f"{labels[label]!r} and {dataset!r} both named {label!r}")
        labels[label] = dataset
    presets = _check_presets(spec.presets, methods)
    run_options, per_method = split_overrides(spec.overrides, methods)
    cells = []
    for label, dataset in labels.items():
        for method in methods:
            for protocol in protocols:
                name = f"{method}-{label}-{protocol}"
                run_spec = RunSpec(method=method, dataset=dataset, data_root=spec.data_root,
                                   protocol=protocol, preset=presets.get(method),
                                   overrides={**run_options, **per_method.get(method, {})},
                                   seeds=list(spec.seeds),
                                   out=str(Path(spec.out) / "runs" / name))
                resolve_config(run_spec)  # unknown keys, bad values, unknown presets
                cells.append(Cell(method, dataset, label, protocol, run_spec))
    return cells


def dataset_label(dataset: str, data_root: str | None = None) -> str:
    """A short, file-name-safe name: `AWA2`, `animals`, `SYNTH` (a directory's name),
    `CUB-semi` / `CUB-sent-semi-0.1` (semi-real files). Checks that the data set exists (an
    embedded one is built later, on first use)."""
    from unseen.data.loading import SEMI_REAL_PREFIX, is_embedded

    if dataset.startswith(SEMI_REAL_PREFIX):
        from unseen.data.semi_real import DEFAULT_IMAGES_SCALE, parse_semi_real_name

        path, scale = parse_semi_real_name(dataset[len(SEMI_REAL_PREFIX):])
        if not Path(path).is_file():
            raise UnseenInputError(f"option '--datasets': {dataset}: expected an existing "
                                   f"att_splits.mat or sent_splits.mat, found no file {path}")
        side = "-sent" if Path(path).name.startswith("sent") else ""
        label = f"{Path(path).resolve().parent.name}{side}-semi"
        if scale != DEFAULT_IMAGES_SCALE:
            label += f"-{scale:g}"
    elif is_embedded(dataset):
        label = dataset.lower()
    else:
        from unseen.data.datasets import known_dataset, resolve_dataset_dir

        try:
            directory = resolve_dataset_dir(dataset, data_root)
        except UnseenInputError as error:
            raise UnseenInputError(f"option '--datasets': {error}") from None
        known = known_dataset(dataset)
        label = known.name if known else directory.resolve().name
    return re.sub(r"[^A-Za-z0-9._-]+", "-", label)


def split_overrides(overrides: dict[str, Any], methods: list[str]
                    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """`--set` pairs -> (run options for every cell, {method: hyperparameters})."""
    run_options: dict[str, Any] = {}
    per_method: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        method, dot, name = key.partition(".")
        if dot:
            canonical = _canonical_method(method, f"--set {key}={value}")
            if canonical not in methods:
                raise UnseenInputError(
                    f"option '--set {key}={value}': expected METHOD.KEY with METHOD one of the "
                    f"benched methods ({', '.join(methods)}), found {method!r}")
            per_method.setdefault(canonical, {})[name] = value
        elif key in RUN_OPTION_KEYS:
            run_options[key] = value
        else:
            having = [m for m in methods if key in _config_keys(m)]
            hint = (f"; for a hyperparameter write METHOD.{key}=VALUE "
                    f"({', '.join(f'{m}.{key}' for m in having)})" if having else "")
            raise UnseenInputError(
                f"option '--set {key}={value}': expected a run option "
                f"({', '.join(RUN_OPTION_KEYS)}) or METHOD.KEY=VALUE, found {key!r}{hint}")
    return run_options, per_method


def _check_methods(methods: list[str]) -> list[str]:
    if not methods:
        raise UnseenInputError("option '--methods': expected at least one method, found none")
    canonical = []
    for method in methods:
        name = _canonical_method(method)
        if name in canonical:
            raise UnseenInputError(f"option '--methods': expected distinct methods, found "
                                   f"{name!r} twice")
        canonical.append(name)
    return canonical


def _canonical_method(name: str, option: str = "--methods") -> str:
    try:
        return get_method(name).name
    except UnseenInputError:
        raise UnseenInputError(f"option '{option}': unknown method {name!r}; expected one of "
                               f"{', '.join(method_names())}") from None


def _check_presets(presets: dict[str, str], methods: list[str]) -> dict[str, str]:
    checked = {}
    for method, preset in presets.items():
        name = _canonical_method(method, f"--preset {method}={preset}")
        if name not in methods:
            raise UnseenInputError(f"option '--preset {method}={preset}': expected a benched "
                                   f"method ({', '.join(methods)}), found {method!r}")
        checked[name] = preset
    return checked


def _config_keys(method: str) -> set[str]:
    from dataclasses import fields

    return {f.name for f in fields(get_method(method).config_class)}


# -- what each cell needs -----------------------------------------------------------------------
def cell_state(cell: Cell) -> str:
    """`new` (nothing there), `finished` (same settings, every seed done: reuse),
    `unfinished` (same settings: continue) or `other` (a run with other settings)."""
    run_dir = RunDirectory(cell.run_dir)
    recorded = run_dir.read_fingerprint()
    if recorded is None:
        return "other" if run_dir.has_run() else "new"
    document = Runner(cell.spec).fingerprint_document()
    if recorded.get("fingerprint") != fingerprint_of(document):
        return "other"
    if run_dir.results_path.is_file():
        results = run_dir.read_json(run_dir.results_path)
        if results.get("seeds") == cell.spec.seeds:
            return "finished"
    return "unfinished"


def other_settings(cell: Cell) -> str:
    """What differs between the run in a cell's directory and the cell (for the refusal)."""
    recorded = RunDirectory(cell.run_dir).read_fingerprint()
    if recorded is None:
        return "a run without a fingerprint (made by an older unseen)"
    document = Runner(cell.spec).fingerprint_document()
    changes = differences(recorded.get("document", {}), document) or ["format"]
    return f"a run with other settings: {'; '.join(changes)}"


# -- running ---------------------------------------------------------------------------------------
def run_bench(spec: BenchSpec, jobs: int = 1, quiet: bool = False,
              echo: Callable[[str], None] = print) -> list[CellOutcome]:
    """Run (or reuse) every cell, write the leaderboard, return the outcomes in grid order.
    `jobs` > 1 runs that many cells at once as `unseen train` subprocesses; a failed cell is
    reported and does not stop the others."""
    from unseen.leaderboard import write_leaderboard

    if jobs < 1:
        raise UnseenInputError(f"option '--jobs': expected an integer >= 1, found {jobs}")
    cells = plan_cells(spec)
    states = {}
    for cell in cells:
        states[cell.name] = cell_state(cell)
        if states[cell.name] == "other" and not spec.overwrite:
            raise UnseenInputError(
                f"bench cell {cell.name}: run directory {cell.run_dir}: expected a run with the "
                f"same settings (or none), found {other_settings(cell)}; use another --out, or "
                "--overwrite to discard the old runs of other settings")
    outcomes: dict[str, CellOutcome] = {}
    to_run = []
    for cell in cells:
        if states[cell.name] == "finished":
            outcomes[cell.name] = CellOutcome(cell, "reused", _read_results(cell))
            echo(_outcome_line(len(outcomes), len(cells), outcomes[cell.name]))
        else:
            to_run.append(replace(cell, spec=replace(cell.spec,
                                                     overwrite=states[cell.name] == "other")))

    def finished(outcome: CellOutcome) -> None:
        outcomes[outcome.cell.name] = outcome
        echo(_outcome_line(len(outcomes), len(cells), outcome))

    if jobs == 1:
        for cell in to_run:
            finished(_run_in_process(cell, quiet))
    else:
        _run_in_subprocesses(to_run, jobs, Path(spec.out) / "logs", finished)
    ordered = [outcomes[cell.name] for cell in cells]
    paths = write_leaderboard(spec.out, ordered, spec.protocols, spec.seeds)
    echo(f"leaderboard: {paths[0]} and {paths[1].name}; curves: "
         f"{', '.join(path.name for path in paths[2:]) or 'none'}")
    return ordered


def _run_in_process(cell: Cell, quiet: bool) -> CellOutcome:
    try:
        results = Runner(cell.spec, quiet=quiet).run()
    except Exception as error:  # a failed cell must not stop the grid; KeyboardInterrupt does
        return CellOutcome(cell, "failed", error=_error_line(error))
    return CellOutcome(cell, "trained", results)


def _run_in_subprocesses(cells: list[Cell], jobs: int, log_dir: Path,
                         finished: Callable[[CellOutcome], None]) -> None:
    """At most `jobs` cells at once, each `unseen train` with cores // jobs threads and its
    output in LOG_DIR/CELL.log; on an interrupt the running ones are stopped too."""
    threads = max(1, (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else os.cpu_count() or 1) // jobs)
    log_dir.mkdir(parents=True, exist_ok=True)
    pending, running = deque(cells), {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                cell = pending.popleft()
                log_path = log_dir / f"{cell.name}.log"
                with open(log_path, "w") as log:
                    process = subprocess.Popen(cell_command(cell, threads), stdout=log,
                                               stderr=subprocess.STDOUT, env=_child_env())
                running[cell.name] = (cell, process, log_path)
            for name, (cell, process, log_path) in list(running.items()):
                if process.poll() is None:
                    continue
                del running[name]
                if process.returncode == 0:
                    finished(CellOutcome(cell, "trained", _read_results(cell)))
                else:
                    finished(CellOutcome(cell, "failed", error=_last_error(
                        log_path, process.returncode)))
            time.sleep(0.2)
    finally:
        for _, process, _ in running.values():
            process.terminate()
        for _, process, _ in running.values():
            process.wait()


def cell_command(cell: Cell, threads: int) -> list[str]:
    """The `unseen train` command line that runs `cell` (the run directory is the cell's)."""
    spec = cell.spec
    command = [sys.executable, "-m", "unseen", "--threads", str(threads), "train", spec.method,
               "--dataset", spec.dataset, "--protocol", spec.protocol,
               "--seed", *(str(seed) for seed in spec.seeds), "--out", spec.out]
    if spec.data_root:
        command += ["--data-root", spec.data_root]
    if spec.preset:
        command += ["--preset", spec.preset]
    if spec.overrides:
        command += ["--set", *(f"{key}={_cli_value(value)}"
                               for key, value in spec.overrides.items())]
    if spec.overwrite:
        command.append("--overwrite")
    return command


def _child_env() -> dict[str, str]:
    """This process's environment, with this `unseen` first on the path of the children."""
    import unseen

    source = str(Path(unseen.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH")) if p)
    return env


def _cli_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _read_results(cell: Cell) -> dict[str, Any]:
    run_dir = RunDirectory(cell.run_dir)
    return run_dir.read_json(run_dir.results_path)


def _error_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def _last_error(log_path: Path, returncode: int) -> str:
    """The line `unseen train` printed for its error, else the log's last line."""
    lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines()
             if line.strip()]
    said = [line for line in lines if line.startswith("unseen: ")]
    last = said[-1] if said else (lines[-1] if lines else "no output")
    return f"exit code {returncode}: {last} (log: {log_path})"


def _outcome_line(done: int, total: int, outcome: CellOutcome) -> str:
    prefix = f"[{done}/{total}] {outcome.cell.name}: {outcome.status}"
    if outcome.results is None:
        return f"{prefix}: {outcome.error}"
    h = outcome.results["aggregate"].get("H")
    figure = f"H {h['mean'] * 100:.1f} ± {h['std'] * 100:.1f}" if h else "no H"
    return f"{prefix} ({figure}; {outcome.cell.run_dir})"
