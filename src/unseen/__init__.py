"""unseen: generalized zero-shot learning in PyTorch, faithful and fast, evaluated honestly.

Python API (the CLI is a thin layer over it):

    import unseen
    results = unseen.train("cegzsl", "AWA2", data_root="~/data/xlsa17/data", seeds=[0, 1, 2],
                           overrides={"epochs": 130})
    print(results["H"])

    benchmark = unseen.load_benchmark("animals")
    classifier = unseen.GZSLClassifier("eszsl").fit(benchmark)
    classifier.predict(benchmark.features[benchmark.test_unseen_idx])
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "GZSLClassifier", "GZSLModel", "load_benchmark", "train", "resume",
           "evaluate_run"]

if TYPE_CHECKING:
    from unseen.data.benchmark import Benchmark
    from unseen.estimator import GZSLClassifier
    from unseen.export import GZSLModel


def __getattr__(name: str) -> Any:
    # Imported on first use: `import unseen` stays light.
    if name == "GZSLClassifier":
        from unseen.estimator import GZSLClassifier

        return GZSLClassifier
    if name == "GZSLModel":
        from unseen.export import GZSLModel

        return GZSLModel
    raise AttributeError(f"module 'unseen' has no attribute {name!r}")


def load_benchmark(name: str, data_root: str | None = None, **options) -> Benchmark:
    """Load a data set by name (AWA1, AWA2, CUB, SUN, APY, FLO, animals, ...) or directory."""
    from unseen.data.datasets import load_benchmark as _load

    return _load(name, data_root, **options)


def train(method: str, dataset: str | Benchmark, *, data_root: str | None = None,
          protocol: str = "clean", preset: str | None = None,
          overrides: dict[str, Any] | None = None, seeds: Iterable[int] = (0,),
          out: str = "runs/latest", partitions: Iterable[int] | None = None,
          overwrite: bool = False, quiet: bool = False) -> dict:
    """Train `method` on `dataset` for each seed; returns the results.json document.

    `dataset`: a name (AWA2, animals, ...), a directory, or an in-memory `Benchmark` (recorded
    in config.json by its name and `benchmark_fingerprint`). `overrides`: hyperparameters and
    run options as Python values, e.g. `{"lr": 5e-4, "feature_regularisation": [1, 10]}`.
    `seeds`: a list or range of seeds. `partitions`: embedded data sets only, one seen/unseen
    partition per seed (default: the seed's position in `seeds`). `out` holding a run with
    other settings is refused unless `overwrite`. A line per epoch goes to stderr unless `quiet`;
    `out` gets results.json, report.md and the plots."""
    from unseen.data.benchmark import Benchmark, benchmark_fingerprint
    from unseen.errors import UnseenInputError
    from unseen.runner import Runner, RunSpec

    in_memory = isinstance(dataset, Benchmark)
    if in_memory and partitions is not None:
        raise UnseenInputError(f"partitions: only the embedded data sets named by their name have "
                               f"partitions; the in-memory benchmark {dataset.name!r} is one "
                               f"partition, found partitions={partitions!r}")
    if not in_memory and not isinstance(dataset, str):
        raise UnseenInputError(f"dataset: expected a name, a directory or a Benchmark, found "
                               f"{dataset!r} (a {type(dataset).__name__})")
    spec = RunSpec(method=method, dataset=dataset.name if in_memory else dataset,
                   data_root=data_root, protocol=protocol, preset=preset,
                   overrides=dict(overrides or {}), seeds=seeds, out=str(out),
                   partitions=partitions, overwrite=overwrite,
                   dataset_fingerprint=benchmark_fingerprint(dataset) if in_memory else None)
    loader = (lambda spec, seed_index: dataset) if in_memory else None
    return Runner(spec, load_benchmark=loader, quiet=quiet).run()


def resume(run_dir: str, benchmark: Benchmark | None = None, quiet: bool = False) -> dict:
    """Continue a killed run; returns the results.json document. A run trained on an in-memory
    `Benchmark` needs that benchmark again (checked by its fingerprint)."""
    from unseen.data.benchmark import benchmark_fingerprint
    from unseen.errors import UnseenInputError
    from unseen.runner import Runner

    if benchmark is None:
        return Runner.resume(run_dir, quiet=quiet).run()
    runner = Runner.resume(run_dir, load_benchmark=lambda spec, seed_index: benchmark,
                           quiet=quiet)
    recorded, found = runner.spec.dataset_fingerprint, benchmark_fingerprint(benchmark)
    if recorded != found:
        raise UnseenInputError(
            f"run directory {run_dir}: field 'spec.dataset_fingerprint': expected the benchmark "
            f"the run was trained on ({(recorded or 'a named data set, not a Benchmark')[:12]}), "
            f"found {benchmark.name!r} with fingerprint {found[:12]}")
    return runner.run()


def evaluate_run(run_dir: str, gamma: float | None = None) -> dict:
    """Recompute a run's test metrics from its saved scores (optionally at another gamma)."""
    from unseen.evaluate_run import evaluate_run as _evaluate

    return _evaluate(run_dir, gamma)
