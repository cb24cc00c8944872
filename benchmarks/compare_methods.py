"""Compare methods on several data sets, both protocols, several seeds; print a table.

    python benchmarks/compare_methods.py \
        --datasets animals semi-real:../shared/data/xlsa17/AWA2/att_splits.mat \
        --methods eszsl cegzsl:demo --protocols clean paper --seeds 0 1 2 --out runs/compare

Each (method, data set, protocol) is an ordinary `unseen train` run directory under --out;
the table lists U, S, H, T1, AUSUC as mean ± std (percent) over seeds.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from unseen.runner import Runner, RunSpec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", required=True)
    parser.add_argument("--methods", nargs="+", default=["eszsl", "cegzsl:demo"],
                        help="METHOD or METHOD:PRESET")
    parser.add_argument("--protocols", nargs="+", default=["clean", "paper"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--set", dest="overrides", nargs="*", default=[],
                        help="KEY=VALUE applied to every CE-GZSL run")
    parser.add_argument("--out", default="runs/compare")
    args = parser.parse_args()
    overrides = dict(item.split("=", 1) for item in args.overrides)
    rows = []
    print("| data set | method | protocol | U | S | H | T1 | AUSUC | s/seed |")
    print("|---|---|---|---|---|---|---|---|---|")
    for dataset in args.datasets:
        short = _short_name(dataset)
        for method_spec in args.methods:
            method, _, preset = method_spec.partition(":")
            for protocol in args.protocols:
                out = Path(args.out) / f"{short}-{method}-{protocol}"
                spec = RunSpec(method=method, dataset=dataset, protocol=protocol,
                               preset=preset or None, seeds=args.seeds, out=str(out),
                               overrides=overrides if method != "eszsl" else {})
                started = time.time()
                results = Runner(spec).run()
                seconds = (time.time() - started) / len(args.seeds)
                agg = results["aggregate"]
                cells = [f"{agg[m]['mean'] * 100:.1f} ± {agg[m]['std'] * 100:.1f}"
                         for m in ("U", "S", "H", "T1", "AUSUC")]
                print(f"| {short} | {method_spec} | {protocol} | " + " | ".join(cells)
                      + f" | {seconds:.0f} |", flush=True)
                rows.append({"dataset": short, "method": method_spec, "protocol": protocol,
                             "seconds_per_seed": seconds, **{m: agg[m] for m in agg}})
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "summary.json").write_text(json.dumps(rows, indent=2))


def _short_name(dataset: str) -> str:
    """`semi-real:.../CUB/sent_splits.mat` -> `CUB-sent-semi`; other names unchanged."""
    if ":" not in dataset:
        return dataset
    path = Path(dataset.split(":", 1)[1])
    side = "-sent" if path.name.startswith("sent") else ""
    return f"{path.parent.name}{side}-semi"


if __name__ == "__main__":
    main()
