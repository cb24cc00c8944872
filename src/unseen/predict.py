"""`unseen predict RUN_DIR IMAGE...`: top-k classes for new images with a trained run.

Feature methods need the backbone that made the run's features; runs on the embedded data
sets record it (EfficientNet-Lite0 and its input resolution), so their images can be scored.
Image methods (DUET) preprocess the images with their own backbone's processor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from unseen.data.tasks import Preprocessing, make_test_task, transform_features
from unseen.errors import UnseenInputError
from unseen.methods.registry import get_method
from unseen.rundir import RunDirectory


def predict(run_dir: str | Path, images: list[str], top_k: int = 5,
            seed: int | None = None) -> list[dict[str, Any]]:
    """Scores of every class for each image, calibrated with the run's gamma; top-k kept."""
    directory = RunDirectory(run_dir)
    config = directory.read_config()
    seed = config["spec"]["seeds"][0] if seed is None else seed
    path = directory.final_checkpoint_path(seed)
    if not path.is_file():
        raise UnseenInputError(f"run directory {directory.root}: expected {path.name}, found none "
                               "(the seed has not finished)")
    paths = [Path(p) for p in images]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise UnseenInputError(f"image {missing[0]}: expected an image file, found no such file")
    checkpoint = directory.load_checkpoint(path)
    method_class = get_method(checkpoint["method"])
    method = method_class(method_class.config_class(**checkpoint["config"]), seed)
    method.load_state_dict(checkpoint["method_state"])

    from unseen.data.loading import load_dataset

    spec = config["spec"]
    benchmark = load_dataset(spec["dataset"], spec["data_root"], partition=checkpoint["partition"])
    task = make_test_task(benchmark, Preprocessing(**checkpoint["preprocessing"]))
    inputs = _inputs_for(method, task, checkpoint["benchmark_source"], paths)
    with torch.no_grad():
        scores = method.scores(task, inputs, checkpoint["candidate"]).float().cpu()
    is_seen = torch.as_tensor(task.is_seen_class)
    calibrated = scores - float(checkpoint["gamma"]) * is_seen.float()
    k = min(top_k, calibrated.shape[1])
    values, indices = calibrated.topk(k, dim=1)
    names = checkpoint["class_names"]
    return [{"image": str(p), "top": [{"class": names[i], "score": float(v),
                                       "seen": bool(is_seen[i])}
                                      for v, i in zip(values[row].tolist(), indices[row].tolist(),
                                                      strict=True)]}
            for row, p in enumerate(paths)]


def _inputs_for(method, task, source: dict[str, Any], paths: list[Path]) -> torch.Tensor:
    if method.input_kind == "images":
        return method.preprocess_images(task, paths)
    backbone = source.get("backbone")
    if backbone != "efficientnet-lite0":
        raise UnseenInputError(
            f"run data set: expected features from a backbone unseen can run (efficientnet-lite0, "
            f"recorded by the embedded data sets), found {backbone or 'no recorded backbone'}; "
            "extract features for these images with the data set's own backbone instead")
    from unseen.backbones.efficientnet_lite import extract_features_from_files

    raw = extract_features_from_files(paths, resolution=int(source["backbone_resolution"]))
    return torch.as_tensor(transform_features(task, np.asarray(raw, np.float32)))


def format_predictions(predictions: list[dict[str, Any]]) -> str:
    lines = []
    for item in predictions:
        lines.append(item["image"])
        for rank, entry in enumerate(item["top"], start=1):
            tag = "seen" if entry["seen"] else "UNSEEN"
            lines.append(f"  {rank}. {entry['class']:<24s} {entry['score']:9.4f}  ({tag})")
    return "\n".join(lines)
