"""The `unseen` command: a thin layer over the Python API.

Exit codes: 0 success; 2 bad input or usage (one message naming the file or option, the field,
what was expected and what was found; no traceback); 1 internal error or diverged training.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from unseen.errors import TrainingDivergedError, UnseenInputError

DATASET_HELP = (
    "xlsa17 files under --data-root: AWA1, AWA2, APY, CUB, CUB-sent (CUB with the 1024-d "
    "sentences of sent_splits.mat), SUN, FLO (names in any case); a directory holding "
    "res101.mat + att_splits.mat; embedded, built on first use: animals, fashion, shapes, "
    "animals-awa2 (AwA2 predicates as semantics; reads AWA2/att_splits.mat under "
    "$UNSEEN_DATA_ROOT); semi-real:PATH/att_splits.mat or semi-real:PATH/att_splits.mat?scale=S "
    "(that file's real semantics and split sizes, generated features, S x its images)")


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line and exit code 2, like every other bad input."""

    def error(self, message: str):
        raise UnseenInputError(f"{message} (see `{self.prog} --help`)")


def _count(minimum: int, meaning: str):
    """An argparse type: an integer >= `minimum`, refused with a message saying so."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected {meaning} (an integer >= {minimum}), "
                                             f"found {text!r}")
        return value
    return parse


_threads = _count(1, "a number of threads")
_seed = _count(0, "a seed")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="unseen", description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=_threads, default=None,
                        help="CPU threads for torch (default: $UNSEEN_THREADS, else torch's "
                             "choice); 1 is fastest on a CPU shared with other work")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a method on a data set (several seeds)")
    train.add_argument("method", nargs="?", help="method name (see `unseen methods`)")
    train.add_argument("--dataset", help=DATASET_HELP)
    train.add_argument("--data-root", help="folder holding res101.mat + att_splits.mat, or its "
                                           "parent holding a NAME/ folder")
    train.add_argument("--protocol", default="clean", choices=["clean", "paper"])
    train.add_argument("--preset", help="named settings (default: the preset named after the data "
                                        "set, if any)")
    train.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[],
                       metavar="KEY=VALUE",
                       help="override a hyperparameter or run option (repeatable)")
    train.add_argument("--seed", dest="seeds", type=_seed, nargs="+", default=None,
                       help="one or more seeds (default: 0)")
    train.add_argument("--partition", dest="partitions", type=int, nargs="+", default=None,
                       help="embedded data sets: the seen/unseen partition of each seed "
                            "(default: the seed's position, 0 1 2 ...)")
    train.add_argument("--out", help="run directory (default: runs/METHOD-DATASET-PROTOCOL)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue a killed run")
    train.add_argument("--overwrite", action="store_true",
                       help="discard what --out holds (a run with other settings) and start anew")
    train.add_argument("--quiet", action="store_true",
                       help="no per-epoch lines or progress bars on stderr (the results table "
                            "still goes to stdout)")

    evaluate = commands.add_parser("eval", help="recompute a run's metrics from its saved scores")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("--gamma", type=float, help="calibrated-stacking gamma to apply instead")

    data = commands.add_parser("data", help="download, inspect or check data sets")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    download = data_commands.add_parser("download", help="fetch the official xlsa17 archive")
    download.add_argument("name", choices=["xlsa17"])
    download.add_argument("--cache-dir", default=None, help="default: $UNSEEN_CACHE or "
                                                            "~/.cache/unseen")
    download.add_argument("--url", default=None, help="alternative archive URL (a mirror)")
    download.add_argument("--sha256", default=None, help="expected archive checksum")
    for name, text in (("info", "print shapes, class counts and split sizes"),
                       ("check", "report every problem found in a data set")):
        sub = data_commands.add_parser(name, help=text)
        sub.add_argument("path", help="a dataset directory, or a name with --data-root")
        sub.add_argument("--data-root", default=None)

    _add_build_parser(data_commands)

    demo = commands.add_parser("demo", help="CE-GZSL vs ESZSL on the embedded real benchmark")
    demo.add_argument("--out", default="runs/demo")
    demo.add_argument("--seed", dest="seeds", type=_seed, nargs="+", default=[0, 1, 2])
    demo.add_argument("--workers", type=_count(1, "a number of workers"), default=None,
                      help="seeds trained at once, one thread each (default: every seed, "
                           "up to 2 per CPU core)")

    bench = commands.add_parser("bench", help="a grid of methods x data sets x seeds, then a "
                                              "leaderboard (docs/bench.md)")
    bench.add_argument("--methods", nargs="+", required=True, metavar="METHOD",
                       help="method names (see `unseen methods`)")
    bench.add_argument("--datasets", nargs="+", required=True, metavar="DATASET",
                       help="data sets, in any form --dataset of `unseen train` accepts")
    bench.add_argument("--data-root", help="as for `unseen train`")
    bench.add_argument("--protocol", default="clean", choices=["clean", "paper", "both"],
                       help="both: paper and clean side by side, with H(clean) - H(paper)")
    bench.add_argument("--seeds", type=_seed, nargs="+", default=[0], metavar="SEED",
                       help="seeds of every cell (default: 0)")
    bench.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[],
                       metavar="KEY=VALUE", help="METHOD.KEY=VALUE: a hyperparameter of one "
                                                 "method; KEY=VALUE: a run option of every cell")
    bench.add_argument("--preset", dest="presets", action="extend", nargs="+", default=[],
                       metavar="METHOD=PRESET", help="a method's preset (default: the preset "
                                                      "named after the data set, if any)")
    bench.add_argument("--jobs", type=_count(1, "a number of parallel cells"), default=1,
                       metavar="N",
                       help="cells run at once as subprocesses, each with cores/N threads "
                            "(default 1: one after the other, in this process)")
    bench.add_argument("--out", default="runs/bench", metavar="DIR",
                       help="bench directory (default: runs/bench)")
    bench.add_argument("--overwrite", action="store_true",
                       help="discard cells' runs made with other settings (same settings are "
                            "still reused)")
    bench.add_argument("--quiet", action="store_true", help="no per-epoch lines")

    methods = commands.add_parser("methods", help="list methods and their presets; with a "
                                                  "NAME, every hyperparameter")
    methods.add_argument("name", nargs="?", help="a method: print every --set key with its "
                                                 "type, default, meaning and presets' values")
    methods.add_argument("--show", metavar="NAME", help="the same as `unseen methods NAME`")

    predict = commands.add_parser("predict", help="top-k classes for new images")
    predict.add_argument("run_dir", metavar="MODEL_DIR|RUN_DIR")
    predict.add_argument("images", nargs="+")
    predict.add_argument("--top-k", type=_count(1, "a number of classes"), default=5)
    predict.add_argument("--seed", type=_seed, default=None, help="run directories: which seed's "
                                                                "model (default: the first)")
    predict.add_argument("--json", action="store_true", help="print a JSON list")
    predict.add_argument("--add-class", dest="add_class", action="append", default=[],
                         metavar='"NAME: DESCRIPTION"',
                         help="a class unknown at training time, described by text "
                              "(repeatable); it joins the candidates")
    predict.add_argument("--add-classes", dest="add_classes", action="append", default=[],
                         metavar="FILE", help="added classes from .json {class: text}, .jsonl, "
                                              ".txt lines 'class: text', or a .csv/.tsv with a "
                                              "'class' column and attribute columns")

    export = commands.add_parser("export", help="save a run's model as a self-contained "
                                                "model directory")
    export.add_argument("run_dir")
    export.add_argument("model_dir")
    export.add_argument("--seed", type=_seed, default=None, help="which seed's model (default: "
                                                               "the first)")
    return parser


def _add_build_parser(data_commands) -> None:
    build = data_commands.add_parser(
        "build", help="build a benchmark (features, class semantics, split) from your images",
        description="Build OUT_DIR in the xlsa17 layout (+ unseen.json) from a folder of images "
                    "per class (or a path,class CSV) and per-class attributes, descriptions or "
                    "a prompt. Shard it with `torchrun --nproc_per_node N -m unseen data build`.")
    build.add_argument("out_dir", metavar="OUT_DIR")
    build.add_argument("--images", required=True, metavar="DIR|LIST.csv",
                       help="DIR/<class>/*.jpg|jpeg|png|webp|bmp, or a CSV of path,class rows "
                            "(paths relative to the CSV)")
    build.add_argument("--attributes", metavar="FILE.csv|.tsv",
                       help="one row per class: a 'class' column, then numeric attributes")
    build.add_argument("--descriptions", metavar="FILE",
                       help=".json {class: text}, .jsonl or .txt lines 'class: text'")
    build.add_argument("--prompt", help="class-name template, e.g. 'a photo of a {}.' (the "
                                        "default semantics when no file is given)")
    build.add_argument("--text-encoder", default=None,
                       help="'minilm' (packaged all-MiniLM-L6-v2, default), a local transformers "
                            "directory or a cached hub id")
    build.add_argument("--backbone", default="efficientnet-lite0",
                       help="'efficientnet-lite0' (packaged, default) or a transformers vision "
                            "model directory / cached hub id (AutoModel, pooled output)")
    build.add_argument("--image-size", type=int, default=None,
                       help="EfficientNet-Lite0 input side, a multiple of 32 (default 224)")
    split = build.add_mutually_exclusive_group()
    split.add_argument("--unseen", help="comma-separated unseen class names")
    split.add_argument("--unseen-fraction", type=float, default=None,
                       help="random fraction of unseen classes (default 0.2; see --seed)")
    build.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    build.add_argument("--test-seen-fraction", type=float, default=0.2,
                       help="share of each seen class held out as test_seen (default 0.2)")
    build.add_argument("--batch-size", type=int, default=None,
                       help="images per forward (default: 16 on CPU, 128 on CUDA)")
    build.add_argument("--workers", type=int, default=None,
                       help="DataLoader decoding workers (default: CPU count, at most 8)")
    build.add_argument("--device", default=None, help="default: cuda (LOCAL_RANK) if available")
    build.add_argument("--cache-dir", default=None,
                       help="feature cache (default $UNSEEN_CACHE/features); a rerun skips "
                            "every image already cached")
    build.add_argument("--strict", action="store_true",
                       help="an unreadable image is an error (exit 2) instead of a skip")
    build.add_argument("--overwrite", action="store_true", help="replace an existing OUT_DIR")


def command_data_build(args: argparse.Namespace) -> int:
    from unseen.data.build import BuildOptions, run_build

    if (args.batch_size is not None and args.batch_size < 1) or (
            args.workers is not None and args.workers < 0):
        raise UnseenInputError("option '--batch-size'/'--workers': expected a batch size >= 1 "
                               f"and workers >= 0, found {args.batch_size}/{args.workers}")
    unseen = [name.strip() for name in args.unseen.split(",")] if args.unseen else None
    options = BuildOptions(
        out_dir=Path(args.out_dir), images=Path(args.images),
        attributes=Path(args.attributes) if args.attributes else None,
        descriptions=Path(args.descriptions) if args.descriptions else None,
        prompt=args.prompt, text_encoder=args.text_encoder, backbone=args.backbone,
        image_size=args.image_size, unseen=unseen, unseen_fraction=args.unseen_fraction,
        seed=args.seed, test_seen_fraction=args.test_seen_fraction, batch_size=args.batch_size,
        workers=args.workers, device=args.device,
        cache_dir=Path(args.cache_dir) if args.cache_dir else None, strict=args.strict,
        overwrite=args.overwrite)
    out_dir = run_build(options)
    if out_dir is not None:
        from unseen.data.manifest import read_manifest

        manifest = read_manifest(out_dir)
        split = manifest["split"]
        print(f"built {out_dir}: {manifest['images']} images, {len(manifest['class_names'])} "
              f"classes ({len(split['unseen'])} unseen), trainval {split['trainval']} / "
              f"test_seen {split['test_seen']} / test_unseen {split['test_unseen']}; "
              f"{manifest['feature_dim']}-d features in {manifest['features_file']}, "
              f"{manifest['semantics']['dim']}-d class semantics")
        print(f"next: unseen train eszsl --dataset {out_dir}")
    return 0


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        for item in pair.split():
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise UnseenInputError(f"option '--set {item}': expected KEY=VALUE, found no '='")
            overrides[key.strip()] = value.strip()
    return overrides


def command_train(args: argparse.Namespace) -> int:
    from unseen.results import format_table
    from unseen.runner import Runner, RunSpec

    if args.resume:
        if args.overwrite:
            raise UnseenInputError("option '--overwrite': expected a new run (METHOD --dataset "
                                   "NAME --out DIR), found --resume, which continues a run")
        args.train_run_dir = args.resume  # for the interrupt hint
        results = Runner.resume(args.resume, quiet=args.quiet).run()
        print(format_table(results))
        print(f"report: {Path(args.resume) / 'report.md'}")
        return 0
    if not args.method or not args.dataset:
        raise UnseenInputError("unseen train: expected METHOD and --dataset NAME (or --resume "
                               "RUN_DIR), found " + ("no method" if not args.method else
                                                     "no --dataset"))
    out = args.out or f"runs/{args.method}-{Path(args.dataset).name}-{args.protocol}"
    spec = RunSpec(method=args.method, dataset=args.dataset, data_root=args.data_root,
                   protocol=args.protocol, preset=args.preset,
                   overrides=parse_overrides(args.overrides), seeds=args.seeds or [0],
                   partitions=args.partitions, out=out, overwrite=args.overwrite)
    args.train_run_dir = out  # for the interrupt hint
    results = Runner(spec, quiet=args.quiet).run()
    print(format_table(results))
    print(f"run directory: {out}; report: {Path(out) / 'report.md'}")
    return 0


def command_bench(args: argparse.Namespace) -> int:
    from unseen.bench import BenchSpec, run_bench

    presets = {}
    for item in args.presets:
        method, sep, preset = item.partition("=")
        if not sep or not method or not preset:
            raise UnseenInputError(f"option '--preset {item}': expected METHOD=PRESET, found "
                                   "no '='" if not sep else "an empty name")
        presets[method] = preset
    spec = BenchSpec(methods=args.methods, datasets=args.datasets, protocol=args.protocol,
                     seeds=args.seeds, out=args.out, data_root=args.data_root, presets=presets,
                     overrides=parse_overrides(args.overrides), overwrite=args.overwrite)
    try:
        outcomes = run_bench(spec, jobs=args.jobs, quiet=args.quiet)
    except KeyboardInterrupt:
        print("unseen: interrupted; rerun the same `unseen bench` command to continue (finished "
              "cells are reused, an interrupted one resumes)", file=sys.stderr)
        return 130
    failed = [outcome for outcome in outcomes if outcome.status == "failed"]
    for outcome in failed:
        print(f"unseen: bench cell {outcome.cell.name} failed: {outcome.error}", file=sys.stderr)
    return 1 if failed else 0


def command_eval(args: argparse.Namespace) -> int:
    from unseen.evaluate_run import evaluate_run
    from unseen.results import format_table

    print(format_table(evaluate_run(args.run_dir, args.gamma)))
    return 0


def command_data(args: argparse.Namespace) -> int:
    if args.data_command == "download":
        from unseen.data.download import download_xlsa17

        kwargs = {k: v for k, v in (("url", args.url), ("sha256", args.sha256)) if v}
        from unseen.cache import cache_root

        path = download_xlsa17(args.cache_dir or cache_root(), **kwargs)
        print(f"xlsa17 ready at {path}")
        return 0
    if args.data_command == "build":
        return command_data_build(args)
    from unseen.data.datasets import resolve_dataset_dir
    from unseen.data.inspect import check_dataset, dataset_info
    from unseen.data.loading import load_dataset

    if args.data_command == "info":
        print(dataset_info(load_dataset(args.path, args.data_root)))
        return 0
    directory = resolve_dataset_dir(args.path, args.data_root)
    problems = check_dataset(directory, name=args.path)
    for problem in problems:
        print(f"- {problem}")
    print(f"{directory}: {len(problems)} problem(s) found" if problems else
          f"{directory}: no problems found")
    return 2 if problems else 0


def command_methods(args: argparse.Namespace) -> int:
    from unseen.methods.registry import describe_method, get_method, method_names

    if args.name and args.show and args.name != args.show:
        raise UnseenInputError(f"unseen methods: expected one method name, found "
                               f"{args.name!r} and --show {args.show!r}")
    if args.name or args.show:
        print(describe_method(args.name or args.show))
        return 0
    for name in method_names():
        method = get_method(name)
        print(f"{name:8s} {method.description}")
        print(f"         presets: {', '.join(method.presets) or '(none)'}")
    return 0


def command_demo(args: argparse.Namespace) -> int:
    from unseen.demo import run_demo

    run_demo(args.out, args.seeds, workers=args.workers)
    return 0


def command_predict(args: argparse.Namespace) -> int:
    import json

    from unseen.class_semantics import parse_add_class, read_added_classes
    from unseen.predict import format_predictions, predict

    added = [parse_add_class(text) for text in args.add_class]
    for path in args.add_classes:
        added += read_added_classes(path)
    predictions = predict(args.run_dir, args.images, top_k=args.top_k, seed=args.seed,
                          added_classes=added)
    print(json.dumps(predictions, indent=2) if args.json else format_predictions(predictions))
    return 0


def command_export(args: argparse.Namespace) -> int:
    from unseen.export import export_run

    path = export_run(args.run_dir, args.model_dir, seed=args.seed)
    print(f"model directory: {path}")
    return 0


COMMANDS = {"train": command_train, "eval": command_eval, "data": command_data,
            "methods": command_methods, "demo": command_demo, "predict": command_predict,
            "export": command_export, "bench": command_bench}


def _set_threads(threads: int | None) -> None:
    import os

    if threads is None and os.environ.get("UNSEEN_THREADS"):
        try:
            threads = _threads(os.environ["UNSEEN_THREADS"])
        except argparse.ArgumentTypeError as error:
            raise UnseenInputError(f"environment variable UNSEEN_THREADS: {error}") from None
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
        os.environ["UNSEEN_THREADS"] = str(threads)  # an explicit choice methods keep


def main(argv: list[str] | None = None) -> int:
    args = None
    try:
        args = build_parser().parse_args(argv)
        _set_threads(args.threads)
        return COMMANDS[args.command](args)
    except UnseenInputError as error:
        print(f"unseen: error: {error}", file=sys.stderr)
        return 2
    except TrainingDivergedError as error:
        print(f"unseen: training diverged: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        run_dir = getattr(args, "train_run_dir", None)
        hint = (f"; continue with `unseen train --resume {shlex.quote(str(run_dir))}`"
                if run_dir else "")
        print(f"unseen: interrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
