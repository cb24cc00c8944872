"""Methods are looked up by name, like timm models: `get_method("cegzsl")`."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields, replace
from importlib import import_module
from typing import Any

from unseen.errors import UnseenInputError
from unseen.methods.base import GZSLMethod

# name -> "module:ClassName"; imported lazily so that `unseen methods` stays fast.
_METHODS = {
    "eszsl": "unseen.methods.eszsl:ESZSL",
    "cegzsl": "unseen.methods.cegzsl:CEGZSL",
    "fclswgan": "unseen.methods.fclswgan:FCLSWGAN",
    "duet": "unseen.methods.duet:DUET",
    "cadavae": "unseen.methods.cadavae:CADAVAE",
    "tfvaegan": "unseen.methods.tfvaegan:TFVAEGAN",
    "free": "unseen.methods.free:FREE",
}


def method_names() -> list[str]:
    return sorted(_METHODS)


def get_method(name: str) -> type[GZSLMethod]:
    key = name.lower().replace("-", "").replace("_", "")
    if key not in _METHODS:
        raise UnseenInputError(f"method '{name}': unknown; expected one of "
                               f"{', '.join(method_names())}")
    module_name, class_name = _METHODS[key].split(":")
    return getattr(import_module(module_name), class_name)


@dataclass(frozen=True)
class Hyperparameter:
    """One `--set KEY=VALUE` key: its type, default, meaning, and the presets that change it."""

    key: str
    type: str
    default: Any
    meaning: str
    presets: dict[str, Any]


def _settings(config_class: type, presets: dict[str, dict[str, Any]]) -> list[Hyperparameter]:
    rows = []
    for spec in fields(config_class):
        default = (spec.default if spec.default is not MISSING
                   else spec.default_factory())  # type: ignore[misc]
        changed = {name: values[spec.name] for name, values in presets.items()
                   if spec.name in values and values[spec.name] != default}
        rows.append(Hyperparameter(spec.name, str(spec.type), default,
                                   spec.metadata.get("help", ""), changed))
    return rows


def hyperparameters(name: str) -> list[Hyperparameter]:
    """Every `--set` key of method `name`: its config fields, then the runner's options."""
    from unseen.runner import RUN_OPTION_KEYS, RunOptions

    method = get_method(name)
    rows = _settings(method.config_class, method.presets)
    # `--set KEY` goes to the runner when KEY is a run option (DUET's `gamma`).
    rows = [replace(row, meaning=f"{row.meaning} (presets only: `--set {row.key}` sets the run "
                                 "option below)") if row.key in RUN_OPTION_KEYS else row
            for row in rows]
    return rows + _settings(RunOptions, {})


def format_value(value: Any) -> str:
    """A value as `--set KEY=VALUE` takes it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (tuple, list)):
        return ",".join(format_value(item) for item in value)
    if value is None:
        return "unset"
    return '""' if value == "" else str(value)


def describe_method(name: str) -> str:
    """`unseen methods NAME`: the method, its presets and a table of every `--set` key."""
    method = get_method(name)
    rows = hyperparameters(name)
    method_keys = {spec.name for spec in fields(method.config_class)}
    widths = [max(len(row.key) for row in rows), max(len(row.type) for row in rows),
              max(len(format_value(row.default)) for row in rows)]

    def line(key: str, type_: str, default: str, meaning: str) -> str:
        return (f"{key:<{widths[0]}}  {type_:<{widths[1]}}  {default:<{widths[2]}}  "
                f"{meaning}").rstrip()

    out = [f"{method.name}: {method.description}",
           f"presets: {', '.join(method.presets) or '(none)'} (`--preset NAME`; by default "
           "the preset named after the data set, if any)",
           "set any key with `--set KEY=VALUE`; a preset's values replace the defaults", "",
           line("key", "type", "default", "meaning")]
    indent = " " * (sum(widths) + 6)
    for index, row in enumerate(rows):
        if index == len(method_keys):
            out += ["", "run options (every method):"]
        out.append(line(row.key, row.type, format_value(row.default), row.meaning))
        if row.presets:
            values = ", ".join(f"{preset} {format_value(value)}"
                               for preset, value in row.presets.items())
            out.append(f"{indent}presets: {values}")
    return "\n".join(out)
