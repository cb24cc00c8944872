"""Cost of adding classes to a CE-GZSL model at prediction time (`unseen predict --add-class`):
G synthesises `syn_num` features per class, E embeds them, and only the final classifier is
refitted (`unseen.methods.cegzsl.portable.refit_with_added_classes`). The cost does not depend
on the weights' values, so the networks are freshly initialised at a preset's widths.

    .venv/bin/python benchmarks/added_classes_refit.py                    # animals preset
    .venv/bin/python benchmarks/added_classes_refit.py --preset AWA2 --classes 50 --added 1

Prints the rows the classifier trains on and the seconds of the refit (median of --repeats).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from unseen.methods.cegzsl import CEGZSL
from unseen.methods.cegzsl.method import CEGZSLConfig
from unseen.methods.cegzsl.portable import refit_with_added_classes
from unseen.methods.cegzsl.presets import PRESETS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="animals")
    parser.add_argument("--classes", type=int, default=10, help="classes of the trained model")
    parser.add_argument("--added", type=int, default=1)
    parser.add_argument("--feature-dim", type=int, default=1280)
    parser.add_argument("--semantic-dim", type=int, default=384)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    config = CEGZSLConfig(device="cpu").updated(PRESETS[args.preset])
    method = CEGZSL(config, seed=0)
    a = {"feature_dim": args.feature_dim, "semantic_dim": args.semantic_dim,
         "noise_dim": config.noise_dim or args.semantic_dim,
         "generator_hidden": config.generator_hidden, "critic_hidden": config.critic_hidden,
         "embed_dim": config.embed_dim, "projection_dim": config.projection_dim,
         "comparator_hidden": config.comparator_hidden}
    method._build(a)
    method.start_epoch = 1
    classes = args.classes + args.added
    semantics = torch.nn.functional.normalize(torch.rand(classes, args.semantic_dim), dim=1)
    seconds = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        refit_with_added_classes(method, semantics, seed=0,
                                 classifier_epochs=config.classifier_epochs)
        seconds.append(time.perf_counter() - started)
    print(f"preset {args.preset}: {classes} classes x syn_num {config.syn_num} = "
          f"{classes * config.syn_num} rows, embed {config.embed_dim}, "
          f"{config.classifier_epochs} classifier epochs, threads {torch.get_num_threads()}")
    print(f"refit: {statistics.median(seconds):.2f} s (median of {args.repeats}; "
          f"all {', '.join(f'{s:.2f}' for s in seconds)})")


if __name__ == "__main__":
    main()
