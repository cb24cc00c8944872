"""unseen: generalized zero-shot learning in PyTorch, faithful and fast, evaluated honestly.

Python API (the CLI is a thin layer over it):

    from unseen import load_benchmark, train, evaluate_run
    results = train("cegzsl", "AWA2", data_root="~/data/xlsa17/data", seeds=[0, 1, 2])
    print(results["H"])
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load_benchmark", "train", "resume", "evaluate_run", "GZSLModel"]


def __getattr__(name: str):
    if name == "GZSLModel":  # lazily: `import unseen` stays light
        from unseen.export import GZSLModel

        return GZSLModel
    raise AttributeError(f"module 'unseen' has no attribute {name!r}")


def load_benchmark(name: str, data_root: str | None = None, **options):
    """Load a data set by name (AWA1, AWA2, CUB, SUN, APY, FLO, animals, ...) or directory."""
    from unseen.data.datasets import load_benchmark as _load

    return _load(name, data_root, **options)


def train(method: str, dataset: str, *, data_root: str | None = None, protocol: str = "clean",
          preset: str | None = None, overrides: dict | None = None, seeds=(0,),
          out: str = "runs/latest", partitions=None) -> dict:
    """Train `method` on `dataset` for each seed; returns the results.json document.

    `partitions`: embedded data sets only, one seen/unseen partition per seed (default: the
    seed's position in `seeds`)."""
    from unseen.runner import Runner, RunSpec

    spec = RunSpec(method=method, dataset=dataset, data_root=data_root, protocol=protocol,
                   preset=preset, overrides={k: str(v) for k, v in (overrides or {}).items()},
                   seeds=list(seeds), out=str(out),
                   partitions=None if partitions is None else list(partitions))
    return Runner(spec).run()


def resume(run_dir: str) -> dict:
    """Continue a killed run; returns the results.json document."""
    from unseen.runner import Runner

    return Runner.resume(run_dir).run()


def evaluate_run(run_dir: str, gamma: float | None = None) -> dict:
    """Recompute a run's test metrics from its saved scores (optionally at another gamma)."""
    from unseen.evaluate_run import evaluate_run as _evaluate

    return _evaluate(run_dir, gamma)
