"""`dataset_info` and `check_dataset`, the back ends of `unseen data info|check DIR`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from unseen.data.inspect import check_dataset, dataset_info
from unseen.data.matfile import load_mat, save_mat_v5
from unseen.data.synthetic import synthetic_benchmark
from unseen.data.xlsa17 import load_xlsa17, write_xlsa17


def test_dataset_info_reports_shapes_counts_and_norms(xlsa17_dir):
    benchmark = load_xlsa17(xlsa17_dir)
    text = dataset_info(benchmark)
    summary = benchmark.summary()
    assert f"{summary['images']} x {summary['feature_dim']} features" in text
    assert f"{summary['seen_classes']} seen, {summary['unseen_classes']} unseen" in text
    assert (f"trainval {summary['trainval']}, test_seen {summary['test_seen']}, "
            f"test_unseen {summary['test_unseen']}") in text
    assert "(unit-normalised)" in text  # synthetic semantics have unit L2 norm
    assert benchmark.source["files"]["res101.mat"]["sha256"] in text


def test_dataset_info_reports_norms_of_unnormalised_semantics():
    benchmark = synthetic_benchmark()
    benchmark.semantics = benchmark.semantics * 3.0
    text = dataset_info(benchmark)
    assert "unit-normalised" not in text
    assert "L2 per class: min 3, mean 3, max 3" in text


def test_check_dataset_clean_folder_has_no_problems(xlsa17_dir):
    assert check_dataset(xlsa17_dir) == []


def test_check_dataset_reports_every_problem(xlsa17_dir):
    res = load_mat(xlsa17_dir / "res101.mat")
    res["features"][2, 7] = np.nan
    save_mat_v5(xlsa17_dir / "res101.mat", res)
    splits = load_mat(xlsa17_dir / "att_splits.mat")
    splits["test_unseen_loc"][0] = 0
    splits["allclasses_names"] = splits["allclasses_names"][:5]
    save_mat_v5(xlsa17_dir / "att_splits.mat", splits)
    problems = check_dataset(xlsa17_dir)
    assert len(problems) == 3
    assert "res101.mat" in problems[0] and "field 'features'" in problems[0]
    assert "field 'allclasses_names'" in problems[1]
    assert "field 'test_unseen_loc'" in problems[2] and "1-based" in problems[2]


def test_check_dataset_missing_files(tmp_path):
    problems = check_dataset(tmp_path)
    assert len(problems) == 2
    assert "res101.mat" in problems[0] and "att_splits.mat" in problems[1]


def test_check_dataset_warns_about_split_sizes_of_known_name(xlsa17_dir):
    problems = check_dataset(xlsa17_dir, name="AWA2")
    benchmark = load_xlsa17(xlsa17_dir)
    assert len(problems) == 3 and all(line.startswith("warning:") for line in problems)
    assert f"expected 23527 images (the AWA2 Proposed Split), found " \
           f"{benchmark.trainval_idx.size}" in problems[0]


def _awa2_with_fake_features(shared_data: Path, directory: Path) -> Path:
    splits_path = shared_data / "xlsa17" / "AWA2" / "att_splits.mat"
    if not splits_path.is_file():
        pytest.skip(f"{splits_path} absent")
    splits = load_mat(splits_path)
    n = sum(splits[field].size for field in ("trainval_loc", "test_seen_loc", "test_unseen_loc"))
    labels = np.zeros(n, dtype=np.int64)
    # Seen classes 1..40 over trainval in blocks, unseen 41..50 over test_unseen in blocks;
    # test_seen images take the class of the previous trainval image.
    trainval = np.sort(splits["trainval_loc"].ravel().astype(np.int64)) - 1
    test_seen = np.sort(splits["test_seen_loc"].ravel().astype(np.int64)) - 1
    test_unseen = np.sort(splits["test_unseen_loc"].ravel().astype(np.int64)) - 1
    labels[trainval] = 1 + np.arange(trainval.size) * 40 // trainval.size
    labels[test_seen] = labels[trainval[np.maximum(np.searchsorted(trainval, test_seen) - 1, 0)]]
    labels[test_unseen] = 41 + np.arange(test_unseen.size) * 10 // test_unseen.size
    save_mat_v5(directory / "res101.mat", {"features": np.ones((2, n)),
                                           "labels": labels.reshape(-1, 1)})
    (directory / "att_splits.mat").symlink_to(splits_path)
    return directory


def test_check_dataset_warns_about_reference_leakage(shared_data, tmp_path):
    directory = _awa2_with_fake_features(shared_data, tmp_path / "AWA2")
    problems = check_dataset(directory)
    assert len(problems) == 1 and problems[0].startswith("warning:")
    assert "shares 4031 with test_seen_loc" in problems[0]
    assert "shares 1851 with test_seen_loc" in problems[0]


def test_check_dataset_uses_sent_for_cub_sent(tmp_path):
    benchmark = synthetic_benchmark()
    benchmark.side_information = "sent"
    write_xlsa17(benchmark, tmp_path / "CUB")
    problems = check_dataset(tmp_path / "CUB", name="CUB-sent")
    assert all(line.startswith("warning:") for line in problems) and len(problems) == 3
    assert any("att_splits.mat" in line for line in check_dataset(tmp_path / "CUB"))
