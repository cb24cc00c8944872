"""`torchrun --nproc_per_node 2 -m unseen data build`: two CPU processes (gloo) share the
feature extraction and write one data set equal to a single-process build."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from data_build_fixtures import add_bad_files, write_attributes, write_image_folder

from unseen.data.build import BuildOptions, build_dataset
from unseen.data.matfile import load_mat


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_build_equals_single_process_build(tmp_path):
    images = write_image_folder(tmp_path / "images")
    add_bad_files(images)
    attributes = write_attributes(tmp_path / "attributes.csv")
    common = ["--images", str(images), "--attributes", str(attributes), "--unseen", "cat",
              "--image-size", "32", "--batch-size", "8", "--workers", "0", "--device", "cpu"]
    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])}
    completed = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
         "-m", "unseen", "data", "build", str(tmp_path / "two"), *common,
         "--cache-dir", str(tmp_path / "cache-two")],
        env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.count("built ") == 1  # only rank 0 writes and reports
    assert completed.stderr.count("skipped 2 unreadable image(s)") == 1

    import torch

    torch.set_num_threads(1)
    build_dataset(BuildOptions(out_dir=tmp_path / "one", images=images, attributes=attributes,
                               unseen=["cat"], image_size=32, batch_size=8, workers=0,
                               device="cpu", cache_dir=tmp_path / "cache-one", progress=False))
    one_features = load_mat(tmp_path / "one" / "efficientnet-lite0.mat")
    two_features = load_mat(tmp_path / "two" / "efficientnet-lite0.mat")
    assert one_features["features"].tobytes() == two_features["features"].tobytes()
    assert one_features["image_files"] == two_features["image_files"]
    assert np.array_equal(one_features["labels"], two_features["labels"])
    one_splits = load_mat(tmp_path / "one" / "att_splits.mat")
    two_splits = load_mat(tmp_path / "two" / "att_splits.mat")
    for field in ("att", "original_att", "trainval_loc", "test_seen_loc", "test_unseen_loc"):
        assert np.array_equal(one_splits[field], two_splits[field]), field
    # Each rank computed only its own share: two processes' chunks, together every distinct
    # image content of the single-process cache (a rank that starts late may find a repeated
    # silhouette already cached by the other, so rows can be fewer than the 60 images).
    def chunk_keys(cache: Path) -> list[list[bytes]]:
        return [[row.tobytes() for row in np.load(chunk)["keys"]]
                for chunk in sorted(cache.rglob("chunk-*.npz"))]

    two_chunks = chunk_keys(tmp_path / "cache-two")
    distinct = {key for chunk in chunk_keys(tmp_path / "cache-one") for key in chunk}
    assert len(two_chunks) == 2 and all(two_chunks)
    assert {key for chunk in two_chunks for key in chunk} == distinct
    assert len(distinct) <= sum(map(len, two_chunks)) <= 60

    manifests = [json.loads((tmp_path / name / "unseen.json").read_text())
                 for name in ("one", "two")]
    for manifest in manifests:
        manifest.pop("created")
        manifest.pop("command")
    assert manifests[0] == manifests[1]
