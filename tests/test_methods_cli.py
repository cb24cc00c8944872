"""`unseen methods [NAME]`: every hyperparameter with its default, meaning and presets."""

from __future__ import annotations

from dataclasses import fields

import pytest

from unseen.cli import DATASET_HELP, build_parser, main
from unseen.methods.registry import (
    describe_method,
    format_value,
    get_method,
    hyperparameters,
    method_names,
)
from unseen.runner import RunOptions

DOCUMENTED = tuple(method_names())  # every registered method documents every key


@pytest.mark.parametrize("name", DOCUMENTED)
def test_every_field_has_a_meaning(name: str) -> None:
    rows = hyperparameters(name)
    config_class = get_method(name).config_class
    expected = [spec.name for spec in fields(config_class)] + [
        spec.name for spec in fields(RunOptions)]
    assert [row.key for row in rows] == expected
    for row in rows:
        assert row.meaning.strip(), f"{name}.{row.key} has no meaning"
        assert "\n" not in row.meaning


@pytest.mark.parametrize("name", DOCUMENTED)
def test_table_lists_every_key_with_default_and_meaning(name: str) -> None:
    lines = describe_method(name).splitlines()
    for row in hyperparameters(name):
        line = next(line for line in lines
                    if line.split()[:1] == [row.key] and line.endswith(row.meaning))
        assert format_value(row.default) in line.split()


def test_preset_values_are_shown_under_the_keys_they_change(capsys) -> None:
    assert main(["methods", "cegzsl"]) == 0
    lines = capsys.readouterr().out.splitlines()
    epochs = next(i for i, line in enumerate(lines) if line.startswith("epochs "))
    assert "2000" in lines[epochs]
    presets = lines[epochs + 1]
    assert presets.strip().startswith("presets:")
    assert "AWA2 130" in presets and "semi-real 20" in presets and "demo 5" in presets
    lr = next(i for i, line in enumerate(lines) if line.startswith("lr "))
    assert "SUN 5e-05" in lines[lr + 1] and "AWA2" not in lines[lr + 1]  # AWA2 keeps 1e-4
    critic = next(i for i, line in enumerate(lines) if line.startswith("critic_iterations "))
    assert "presets:" not in lines[critic + 1]  # no preset changes it


def test_method_keys_shadowed_by_run_options_say_so() -> None:
    gammas = [row for row in hyperparameters("duet") if row.key == "gamma"]
    assert [row.default for row in gammas] == [0.8, None]
    assert "presets only" in gammas[0].meaning and "presets only" not in gammas[1].meaning
    assert gammas[0].presets == {"CUB": 0.7, "SUN": 0.4, "shapes": 0.5}


def test_show_option_and_list(capsys) -> None:
    assert main(["methods", "--show", "duet"]) == 0
    shown = capsys.readouterr().out
    assert "vision_model" in shown and "shapes efficientnet-lite0" in shown
    assert main(["methods"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in method_names())


def test_unknown_method_is_one_line_exit_2(capsys) -> None:
    assert main(["methods", "--show", "cgan"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cgan" in err and "cegzsl" in err
    assert main(["methods", "eszsl", "--show", "duet"]) == 2


def test_format_value_matches_the_set_syntax() -> None:
    assert format_value(True) == "true" and format_value(1e-4) == "0.0001"
    assert format_value((1e-3, 10.0)) == "0.001,10" and format_value(None) == "unset"
    assert format_value("") == '""' and format_value(5) == "5"


def test_dataset_help_lists_every_form() -> None:
    for form in ("AWA1", "AWA2", "APY", "CUB", "CUB-sent", "SUN", "FLO", "animals", "fashion",
                 "shapes", "animals-awa2", "semi-real:PATH", "?scale=S", "directory"):
        assert form in DATASET_HELP
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    dataset = next(action for action in train._actions if "--dataset" in action.option_strings)
    assert dataset.help == DATASET_HELP
