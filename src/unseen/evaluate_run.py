"""`unseen eval RUN_DIR`: recompute test metrics from a run's saved final scores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unseen.errors import UnseenInputError
from unseen.evaluation import evaluate
from unseen.results import aggregate_results
from unseen.rundir import RunDirectory


def evaluate_run(run_dir: str | Path, gamma: float | None = None) -> dict[str, Any]:
    """Re-evaluate every finished seed; `gamma` replaces the run's gamma when given.

    The T1 of a method with a separate ZSL classifier is kept from results.json (its scores
    are not stored); U, S, H, AUSUC and gamma are recomputed from the saved score matrices.
    """
    directory = RunDirectory(run_dir)
    config = directory.read_config()
    previous = directory.read_json(directory.results_path) if directory.results_path.is_file() \
        else {"per_seed": []}
    by_seed = {r["seed"]: r for r in previous["per_seed"]}
    per_seed = []
    for seed in config["spec"]["seeds"]:
        path = directory.scores_path(seed)
        if not path.is_file():
            continue
        saved = directory.load_checkpoint(path)
        applied = saved["gamma"] if gamma is None else gamma
        result = evaluate(saved["scores"], saved["labels"], saved["is_seen_class"], gamma=applied)
        row = {**by_seed.get(seed, {"seed": seed}), **result.to_dict(include_curve=False)}
        if seed in by_seed and by_seed[seed].get("T1") is not None:
            row["T1"] = by_seed[seed]["T1"]
        per_seed.append(row)
    if not per_seed:
        raise UnseenInputError(f"run directory {directory.root}: expected saved scores under "
                               "scores/, found none (did the run finish a seed?)")
    return aggregate_results(config, per_seed)
