"""report.md: what a run was asked for, what it found, and its plots, for a person to read.

Written by the runner after every finished seed (so a killed run has one) and at the end; the
demo puts the reports of its methods in one file with the same functions.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from unseen.io import atomic_write_text
from unseen.methods.base import GZSLMethod

TABLE_METRICS = ("U", "S", "H", "T1", "AUSUC")
IMAGES = (("seen_unseen_curve.png", "Seen-unseen curve (first seed, test)"),
          ("training_curves.png", "Training curves"))
PAPER_NOTE = ("Paper protocol: epoch and classifier selected on the TEST set (as the "
              "reference code does); not an honest estimate.")


def write_report(run_dir: str | Path, config: dict[str, Any], results: dict[str, Any],
                 method_class: type[GZSLMethod] | None = None) -> Path:
    """Write RUN_DIR/report.md (atomically) from config.json's and results.json's documents,
    linking the plots that exist in RUN_DIR. `method_class` gives the hyperparameter defaults
    (default: the registered method named in `config`)."""
    text = report_markdown(config, results, existing_images(run_dir), method_class)
    return atomic_write_text(Path(run_dir) / "report.md", text)


def existing_images(run_dir: str | Path) -> list[str]:
    """The plot files the run directory holds (a one-epoch method has no training curves)."""
    return [name for name, _ in IMAGES if (Path(run_dir) / name).is_file()]


def report_markdown(config: dict[str, Any], results: dict[str, Any], images: list[str],
                    method_class: type[GZSLMethod] | None = None, level: int = 1,
                    link_prefix: str = "") -> str:
    """The report as markdown; `level` is the title's heading level, `images` the plot files
    to show (their links prefixed with `link_prefix`, e.g. 'cegzsl/')."""
    title, section = "#" * level, "#" * (level + 1)
    lines = [f"{title} {results['method']} on {results['dataset']}, {results['protocol']} "
             "protocol", "", f"Protocol: {results['protocol_description']}.", ""]
    lines += _status(config, results)
    lines += [f"{section} Results", "",
              "Percent; the first row is the mean ± sample std over seeds; gamma is the "
              "calibrated-stacking constant in the units of the method's scores.", "",
              *results_table(results), ""]
    if results["protocol"] == "paper":
        lines += [f"**{PAPER_NOTE}**", ""]
    lines += [f"{section} Choices per seed", "", "Epochs count from 1.", "",
              *choices_table(results), ""]
    if images:
        lines += [f"{section} Plots", ""]
        captions = dict(IMAGES)
        lines += [f"![{captions[name]}]({link_prefix}{name})\n" for name in images]
    lines += [f"{section} Settings", "", *settings_markdown(config, method_class)]
    return "\n".join(lines) + "\n"


def results_table(results: dict[str, Any], label: str = "mean ± std",
                  per_seed: bool = True) -> list[str]:
    """The figures `unseen.results.format_table` prints, as a markdown table, with a row per
    seed under the mean row."""
    lines = ["| | " + " | ".join((*TABLE_METRICS, "gamma")) + " |",
             "|---" * (len(TABLE_METRICS) + 2) + "|", summary_row(results, label)]
    if per_seed:
        for seed in results["per_seed"]:
            cells = [_percent(seed.get(metric)) for metric in TABLE_METRICS]
            lines.append(f"| seed {seed['seed']} | " + " | ".join(cells)
                         + f" | {_number(seed.get('gamma'))} |")
    return lines


def summary_table(all_results: list[dict[str, Any]]) -> list[str]:
    """One mean ± std row per run (e.g. per method of the demo), labelled by method."""
    return (["| method | " + " | ".join((*TABLE_METRICS, "gamma")) + " |",
             "|---" * (len(TABLE_METRICS) + 2) + "|"]
            + [summary_row(results, results["method"]) for results in all_results])


def summary_row(results: dict[str, Any], label: str) -> str:
    """`| label | U mean ± std | ... | gamma |` from results.json's aggregate."""
    aggregate = results["aggregate"]
    cells = [f"{aggregate[m]['mean'] * 100:.1f} ± {aggregate[m]['std'] * 100:.1f}"
             if m in aggregate else "-" for m in TABLE_METRICS]
    gamma = _number(aggregate["gamma"]["mean"]) if "gamma" in aggregate else "-"
    return f"| {label} | " + " | ".join(cells) + f" | {gamma} |"


def choices_table(results: dict[str, Any]) -> list[str]:
    """Per seed: the partition, the selected epoch (1-based), GZSL and ZSL candidates, gamma,
    the rows they were chosen on and the seconds the seed took."""
    lines = ["| seed | partition | epoch | candidate | ZSL epoch | ZSL candidate | gamma "
             "| chosen on | seconds |", "|---" * 9 + "|"]
    for seed in results["per_seed"]:
        selected = seed.get("selected", {})
        zsl = selected.get("zsl_candidate")  # none: T1 came with the GZSL candidate
        cells = [seed["seed"], seed.get("partition", "-"), _epoch(selected.get("epoch")),
                 _code(selected.get("candidate")),
                 _epoch(selected.get("zsl_epoch")) if zsl else "-", _code(zsl),
                 _number(seed.get("gamma")), selected.get("on", "-"),
                 "-" if seed.get("seconds") is None else f"{seed['seconds']:.1f}"]
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    return lines


def settings_markdown(config: dict[str, Any], method_class: type[GZSLMethod] | None = None
                      ) -> list[str]:
    """Preset, hyperparameters that differ from the method's defaults (and what set them), run
    options that differ from theirs, seeds, partitions and the code version."""
    spec, environment = config.get("spec", {}), config.get("environment", {})
    partitions = spec.get("partitions")
    code = ", ".join(f"{name} {str(environment[key])[:12]}" for name, key in
                     (("unseen", "unseen"), ("git", "git_sha"), ("torch", "torch"),
                      ("Python", "python")) if environment.get(key))
    lines = [f"- method `{config['method']}`, data set `{config['dataset']}`"
             + (f" (data root `{spec['data_root']}`)" if spec.get("data_root") else ""),
             f"- preset: {'`' + config['preset'] + '`' if config.get('preset') else 'none'}",
             f"- seeds: {', '.join(str(s) for s in spec.get('seeds', []))}; "
             + _partitions_text(config["dataset"], partitions),
             f"- code: {code or 'unknown'}; CUDA: {'yes' if environment.get('cuda') else 'no'}",
             ""]
    lines += ["Hyperparameters that differ from the method's defaults:", ""]
    changed = _changed_hyperparameters(config, method_class)
    lines += (["| hyperparameter | value | default | set by |", "|---|---|---|---|"]
              + [f"| {key} | {_code(value)} | {_code(default)} | {origin} |"
                 for key, value, default, origin in changed] if changed else ["none"])
    lines += ["", "Run options that differ from their defaults:", ""]
    options = _changed_run_options(config)
    lines += (["| option | value | default |", "|---|---|---|"]
              + [f"| {key} | {_code(value)} | {_code(default)} |"
                 for key, value, default in options] if options else ["none"])
    return lines


def _status(config: dict[str, Any], results: dict[str, Any]) -> list[str]:
    wanted = config.get("spec", {}).get("seeds", results["seeds"])
    missing = [seed for seed in wanted if seed not in results["seeds"]]
    if not missing:
        return []
    done = ", ".join(str(s) for s in results["seeds"]) or "none"
    return [f"**Unfinished: {len(wanted) - len(missing)} of {len(wanted)} seeds done (done: "
            f"{done}; to do: {', '.join(str(s) for s in missing)})** (a running or killed run; "
            "`unseen train --resume RUN_DIR` continues it).", ""]


def _partitions_text(dataset: str, partitions: list[int] | None) -> str:
    from unseen.data.loading import is_embedded

    if not is_embedded(dataset):
        return "split: the data set's proposed split"
    return "partitions: " + (", ".join(str(p) for p in partitions) if partitions else
                             "the seed's position (0, 1, 2, ...)")


def _changed_hyperparameters(config: dict[str, Any], method_class: type[GZSLMethod] | None
                             ) -> list[tuple[str, Any, Any, str]]:
    if method_class is None:
        from unseen.methods.registry import get_method

        method_class = get_method(config["method"])
    defaults = asdict(method_class.config_class())
    preset = method_class.presets.get(config.get("preset") or "", {})
    overrides = config.get("spec", {}).get("overrides", {})
    changed = []
    for key, value in config.get("hyperparameters", {}).items():
        default = defaults.get(key)
        if _plain(value) != _plain(default):
            origin = ("--set" if key in overrides else
                      f"preset {config['preset']}" if key in preset else "-")
            changed.append((key, value, default, origin))
    return changed


def _changed_run_options(config: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    from unseen.runner import RunOptions

    defaults = asdict(RunOptions())
    return [(key, value, defaults.get(key)) for key, value in config.get("run_options", {}).items()
            if _plain(value) != _plain(defaults.get(key))]


def _plain(value: Any) -> Any:
    """Tuples (dataclass defaults) and lists (read back from JSON) compare equal."""
    return list(value) if isinstance(value, (tuple, list)) else value


def _percent(value: Any) -> str:
    return "-" if value is None else f"{float(value) * 100:.1f}"


def _number(value: Any) -> str:
    return "-" if value is None else f"{float(value):.3g}"


def _epoch(value: Any) -> str:
    return "-" if value is None or int(value) < 0 else str(int(value) + 1)


def _code(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, (list, tuple)):
        value = ", ".join(str(v) for v in value)
    return f"`{value}`"
