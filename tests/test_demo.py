"""The demo prints the command that gives its figures: that command must run the same thing."""

from __future__ import annotations

import shlex

from unseen.cli import build_parser, parse_overrides
from unseen.demo import DEMO_DATASET, DEMO_PROTOCOL, DEMO_RUNS, DEMO_SEEDS, SHORTENED


def test_each_demo_run_matches_its_printed_command() -> None:
    for run in DEMO_RUNS:
        args = build_parser().parse_args(shlex.split(run.command)[1:])
        assert args.command == "train" and args.method == run.method
        assert args.dataset == DEMO_DATASET and args.protocol == DEMO_PROTOCOL
        assert args.seeds == DEMO_SEEDS and args.partitions is None  # seed i on partition i
        assert args.preset == run.preset
        assert parse_overrides(args.overrides) == run.overrides
        assert run.reported_h.count("±") == 1


def test_cegzsl_is_not_cut_short_and_the_shortening_is_stated() -> None:
    cegzsl = next(run for run in DEMO_RUNS if run.method == "cegzsl")
    assert cegzsl.preset == "semi-real" and cegzsl.overrides == {"syn_num": "1000"}
    assert DEMO_PROTOCOL.upper() in SHORTENED and "val_folds=3" in SHORTENED
