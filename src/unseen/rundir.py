"""A run directory: resolved config, state for resuming, per-epoch metrics, results, plots.

Layout (a stable contract; scripts read it):

    RUN_DIR/
      fingerprint.json     sha256 of the resolved settings (unseen.fingerprint) and the document
                           hashed; a run with other settings is refused here (or --overwrite)
      config.json          resolved config: method, dataset, protocol, preset, hyperparameters,
                           preprocessing, seeds, environment (git SHA, torch version)
      state.json           what is finished (for --resume)
      metrics.csv          one row per (seed, phase, epoch): selected candidate and its metrics
      tensorboard/         the same metrics as TensorBoard scalars
      results.json         per-seed and aggregated U, S, H, T1, AUSUC, gamma (see results.py)
      report.md            settings, results table, choices per seed, plots (after every seed)
      seen_unseen_curve.png, training_curves.png (the latter only with >= 2 epochs in a phase)
      checkpoints/         seed{S}_{phase}.pt (latest epoch, for resume), seed{S}_final.pt
      scores/              seed{S}.pt: final test scores, labels and masks (for `unseen eval`)

Every file is written atomically; only the main process of a distributed run writes.
Checkpoints hold only tensors and plain values, and are loaded with `weights_only=True`: a run
directory from someone else cannot run code on load.
"""

from __future__ import annotations

import csv
import io
import json
import pickle
import re
import shutil
from pathlib import Path
from typing import Any

from unseen.errors import UnseenInputError
from unseen.io import atomic_torch_save, atomic_write_json, atomic_write_text, checkpointable
from unseen.parallel import is_main_process


class RunDirectory:
    """Paths and atomic writers for one run directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # -- creation -----------------------------------------------------------------------------
    def create(self) -> RunDirectory:
        """Make the directory (and check it is writable) before any training starts."""
        if not is_main_process():
            return self
        try:
            (self.root / "checkpoints").mkdir(parents=True, exist_ok=True)
            (self.root / "scores").mkdir(exist_ok=True)
            probe = self.root / ".write_test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as error:
            raise UnseenInputError(f"output directory {self.root}: expected a writable directory, "
                                   f"found {error.strerror or error}") from None
        return self

    def exists(self) -> bool:
        return (self.root / "config.json").is_file()

    def has_run(self) -> bool:
        """Whether anything of a run (settings, progress, results, checkpoints) is here."""
        return (any((self.root / name).is_file() for name in _RUN_FILES)
                or any(path.suffix == ".pt" for folder in ("checkpoints", "scores")
                       for path in (self.root / folder).glob("*")))

    def clear(self) -> None:
        """Delete a run's contents (`--overwrite`): the layout's files and folders and the
        plots; anything else in the directory is left alone."""
        if not is_main_process():
            return
        for name in (*_RUN_FILES, *_RUN_FOLDERS):
            path = self.root / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        for path in (*self.root.glob("*.png"), *self.root.glob(".*.tmp")):
            path.unlink()

    # -- paths ----------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.root / "config.json"

    @property
    def fingerprint_path(self) -> Path:
        return self.root / "fingerprint.json"

    @property
    def state_path(self) -> Path:
        return self.root / "state.json"

    @property
    def results_path(self) -> Path:
        return self.root / "results.json"

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.csv"

    def checkpoint_path(self, seed: int, phase: str) -> Path:
        return self.root / "checkpoints" / f"seed{seed}_{phase}.pt"

    def final_checkpoint_path(self, seed: int) -> Path:
        return self.root / "checkpoints" / f"seed{seed}_final.pt"

    def curves_path(self, seed: int, phase: str) -> Path:
        """Every candidate's seen-unseen curve per evaluation (run option `record_curves`)."""
        return self.root / "curves" / f"seed{seed}_{phase}.pt"

    def scores_path(self, seed: int) -> Path:
        return self.root / "scores" / f"seed{seed}.pt"

    # -- JSON documents -------------------------------------------------------------------------
    def read_json(self, path: Path) -> dict[str, Any]:
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise UnseenInputError(f"run directory {self.root}: expected {path.name}, "
                                   "found no such file (is this a run directory?)") from None
        except json.JSONDecodeError as error:
            raise UnseenInputError(f"{path}: expected JSON, found a parse error at line "
                                   f"{error.lineno}") from None

    def write_json(self, path: Path, document: dict[str, Any]) -> None:
        if is_main_process():
            atomic_write_json(path, document)

    def read_config(self) -> dict[str, Any]:
        return self.read_json(self.config_path)

    def read_fingerprint(self) -> dict[str, Any] | None:
        return self.read_json(self.fingerprint_path) if self.fingerprint_path.is_file() else None

    def read_state(self) -> dict[str, Any]:
        if not self.state_path.is_file():
            return {"seeds": {}}
        return self.read_json(self.state_path)

    # -- checkpoints ----------------------------------------------------------------------------
    def save_checkpoint(self, path: Path, payload: dict[str, Any]) -> None:
        if is_main_process():
            atomic_torch_save(path, checkpointable(payload))

    @staticmethod
    def load_checkpoint(path: Path) -> dict[str, Any]:
        """Load tensors and plain values only; any other pickled object is refused, not run."""
        import torch

        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise UnseenInputError(f"checkpoint {path}: expected a torch checkpoint, found no "
                                   "such file") from None
        except Exception as error:  # whatever a damaged file makes the unpickler raise
            refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
            if isinstance(error, pickle.UnpicklingError) and refused:
                raise UnseenInputError(
                    f"checkpoint {path}: expected tensors and plain values only, found a "
                    f"pickled object unseen does not load (it would call {refused.group(1)})"
                ) from None
            # torch's first sentence says what broke; the rest is advice for torch users.
            reason = str(error).split(". ")[0].splitlines()[0] if str(error) else ""
            raise UnseenInputError(f"checkpoint {path}: expected a torch checkpoint, found a "
                                   f"truncated or corrupt file ({type(error).__name__}"
                                   f"{': ' + reason if reason else ''})") from None
        if not isinstance(checkpoint, dict):
            raise UnseenInputError(f"checkpoint {path}: expected a dictionary, found "
                                   f"{type(checkpoint).__name__}")
        return checkpoint

    # -- metrics ----------------------------------------------------------------------------------
    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        """Rewrite metrics.csv from all rows so far (atomic; rows are few)."""
        if not is_main_process() or not rows:
            return
        columns: list[str] = []
        for row in rows:
            columns.extend(key for key in row if key not in columns)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.metrics_path, buffer.getvalue())

    def read_metrics(self) -> list[dict[str, str]]:
        if not self.metrics_path.is_file():
            return []
        with self.metrics_path.open(newline="") as handle:
            return list(csv.DictReader(handle))


_RUN_FILES = ("fingerprint.json", "config.json", "state.json", "metrics.csv", "results.json",
              "report.md")
_RUN_FOLDERS = ("checkpoints", "scores", "tensorboard", "curves")


class ScalarLogger:
    """TensorBoard scalars, opened lazily so that runs without tensorboard installed still work."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._writer = None

    def log(self, tag_prefix: str, values: dict[str, float], step: int) -> None:
        if not is_main_process():
            return
        if self._writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is a declared dependency; tolerate its absence
                return
            self._writer = SummaryWriter(log_dir=str(self.directory))
        for name, value in values.items():
            if isinstance(value, (int, float)):
                self._writer.add_scalar(f"{tag_prefix}/{name}", value, step)
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
