"""The xlsa17 layer: .mat reading/writing, loading with validation, names, real split files."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unseen.data import datasets
from unseen.data.datasets import load_benchmark, resolve_dataset_dir
from unseen.data.matfile import load_mat, save_mat_v5, save_mat_v73
from unseen.data.synthetic import synthetic_benchmark
from unseen.data.xlsa17 import (
    find_problems,
    leakage_report,
    load_xlsa17,
    write_xlsa17,
)
from unseen.errors import UnseenInputError

# --- matfile ---------------------------------------------------------------------------------

VARIABLES = {
    "features": np.arange(15.0).reshape(3, 5),
    "labels": np.array([[1], [2], [2], [3], [1]], dtype=np.uint16),
    "image_files": ["a/1.jpg", "b/2.jpg", "", "c/3.jpg", "ü/4.jpg"],
    "flag": np.array([[True, False]]),
}


@pytest.mark.parametrize("save", [save_mat_v5, save_mat_v73])
def test_mat_round_trip_keeps_matlab_orientation(tmp_path, save):
    path = save(tmp_path / "x.mat", VARIABLES)
    loaded = load_mat(path)
    assert loaded["features"].shape == (3, 5)
    np.testing.assert_array_equal(loaded["features"], VARIABLES["features"])
    np.testing.assert_array_equal(loaded["labels"], VARIABLES["labels"])
    assert loaded["labels"].dtype == np.uint16
    assert loaded["image_files"] == VARIABLES["image_files"]
    np.testing.assert_array_equal(loaded["flag"].astype(bool), VARIABLES["flag"])


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.integers(1, 6), cols=st.integers(1, 6),
       dtype=st.sampled_from([np.float64, np.float32, np.uint16, np.int32, np.uint8]),
       names=st.lists(st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]),
                              max_size=5), min_size=1, max_size=4))
def test_v5_and_v73_read_identically(tmp_path, rows, cols, dtype, names):
    array = (np.arange(rows * cols) % 200).astype(dtype).reshape(rows, cols)
    v5 = load_mat(save_mat_v5(tmp_path / "a.mat", {"x": array, "names": names}))
    v73 = load_mat(save_mat_v73(tmp_path / "b.mat", {"x": array, "names": names}))
    for loaded in (v5, v73):
        assert loaded["x"].shape == (rows, cols) and loaded["x"].dtype == dtype
        np.testing.assert_array_equal(loaded["x"], array)
    assert v5["names"] == names and v73["names"] == names


def test_v73_is_recognised_by_scipy_and_h5py(tmp_path):
    path = save_mat_v73(tmp_path / "x.mat", VARIABLES)
    assert scipy.io.matlab.matfile_version(str(path)) == (2, 0)
    assert path.read_bytes()[:19] == b"MATLAB 7.3 MAT-file"
    with h5py.File(path, "r") as handle:
        assert handle["features"].shape == (5, 3)  # HDF5 holds MATLAB arrays transposed
        assert handle["features"].attrs["MATLAB_class"] == b"double"


def test_v73_reads_like_scipy_reads_v5(tmp_path):
    v5 = load_mat(save_mat_v5(tmp_path / "a.mat", VARIABLES))
    v73 = load_mat(save_mat_v73(tmp_path / "b.mat", VARIABLES))
    assert v5.keys() == v73.keys()
    for key in ("features", "labels"):
        assert v5[key].shape == v73[key].shape and v5[key].dtype == v73[key].dtype


@pytest.mark.parametrize("content, found", [
    (None, "no such file"),
    (b"", "an empty file"),
    (b"PK\x03\x04 this is a zip", "a file starting with"),
])
def test_load_mat_refuses_non_matlab(tmp_path, content, found):
    path = tmp_path / "res101.mat"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UnseenInputError) as error:
        load_mat(path)
    assert str(path) in str(error.value)
    assert "expected a MATLAB v5 or v7.3 .mat file" in str(error.value)
    assert found in str(error.value)


@pytest.mark.parametrize("save", [save_mat_v5, save_mat_v73])
def test_load_mat_refuses_truncated(tmp_path, save):
    path = save(tmp_path / "res101.mat", {"features": np.random.default_rng(0).random((64, 90))})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UnseenInputError) as error:
        load_mat(path)
    assert str(path) in str(error.value) and "truncated" in str(error.value)


def test_load_mat_refuses_corrupt_compressed_v5(tmp_path):
    path = save_mat_v5(tmp_path / "att_splits.mat",
                       {"att": np.random.default_rng(0).random((85, 50))}, compress=True)
    raw = bytearray(path.read_bytes())
    raw[200:400] = bytes(200)  # zero a stretch of the zlib stream
    path.write_bytes(bytes(raw))
    with pytest.raises(UnseenInputError, match="att_splits.mat.*unreadable or truncated v5"):
        load_mat(path)


# --- load/write round trip -------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v5", "v7.3"])
def test_write_load_round_trip(tmp_path, version):
    original = synthetic_benchmark(seed=3)
    directory = write_xlsa17(original, tmp_path / "SYN", version=version)
    loaded = load_xlsa17(directory)
    assert loaded.name == "SYN"
    np.testing.assert_array_equal(loaded.features, original.features)
    np.testing.assert_array_equal(loaded.labels, original.labels)
    np.testing.assert_array_equal(loaded.semantics, original.semantics)
    np.testing.assert_array_equal(loaded.original_semantics, original.original_semantics)
    for split in ("trainval_idx", "test_seen_idx", "test_unseen_idx"):
        np.testing.assert_array_equal(getattr(loaded, split), getattr(original, split))
    assert loaded.class_names == original.class_names
    assert loaded.image_files == original.image_files
    assert loaded.attribute_names == original.attribute_names
    assert loaded.features.dtype == np.float32 and loaded.labels.dtype == np.int64
    record = loaded.source["files"]["res101.mat"]
    assert record["sha256"] == hashlib.sha256((directory / "res101.mat").read_bytes()).hexdigest()
    assert record["mat_version"] == version


def test_written_layout_is_xlsa17(xlsa17_dir):
    res = scipy.io.loadmat(str(xlsa17_dir / "res101.mat"))
    splits = scipy.io.loadmat(str(xlsa17_dir / "att_splits.mat"))
    benchmark = synthetic_benchmark()
    assert res["features"].shape == (64, benchmark.num_images)  # D x N
    assert res["labels"].shape == (benchmark.num_images, 1) and res["labels"].min() == 1
    assert splits["att"].shape == (16, benchmark.num_classes)  # A x C
    assert splits["trainval_loc"].min() >= 1  # 1-based
    assert splits["allclasses_names"].shape == (benchmark.num_classes, 1)


def test_flo_style_file_without_names_gets_numbered_names(xlsa17_dir):
    _rewrite(xlsa17_dir / "att_splits.mat", allclasses_names=None)
    loaded = load_xlsa17(xlsa17_dir)
    assert loaded.class_names[:2] == ["class_001", "class_002"]
    assert len(loaded.class_names) == loaded.num_classes


# --- every bad input -------------------------------------------------------------------------


def _rewrite(path: Path, **changes) -> None:
    """Load a .mat file, set (or with None delete) fields, and save it back as v5."""
    variables = load_mat(path)
    for key, value in changes.items():
        if value is None:
            variables.pop(key)
        else:
            variables[key] = value
    save_mat_v5(path, variables)


def _refused(directory: Path, *fragments: str) -> str:
    with pytest.raises(UnseenInputError) as error:
        load_xlsa17(directory)
    message = str(error.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


@pytest.mark.parametrize("filename", ["res101.mat", "att_splits.mat"])
def test_missing_file(xlsa17_dir, filename):
    (xlsa17_dir / filename).unlink()
    _refused(xlsa17_dir, str(xlsa17_dir / filename), "no such file")


@pytest.mark.parametrize("filename, field", [
    ("res101.mat", "features"), ("res101.mat", "labels"), ("att_splits.mat", "att"),
    ("att_splits.mat", "trainval_loc"), ("att_splits.mat", "test_seen_loc"),
    ("att_splits.mat", "test_unseen_loc"),
])
def test_missing_field(xlsa17_dir, filename, field):
    _rewrite(xlsa17_dir / filename, **{field: None})
    _refused(xlsa17_dir, str(xlsa17_dir / filename), f"field '{field}'", "no such field")


def test_features_stored_transposed(xlsa17_dir):
    path = xlsa17_dir / "res101.mat"
    _rewrite(path, features=load_mat(path)["features"].T.copy())
    _refused(xlsa17_dir, str(path), "field 'features'", "transposed", "D x N")


def test_features_wrong_dimension(xlsa17_dir):
    path = xlsa17_dir / "res101.mat"
    _rewrite(path, features=load_mat(path)["features"][:, :-3].copy())
    _refused(xlsa17_dir, str(path), "field 'features'", "N = 480", "64 x 477")


def test_features_not_a_matrix(xlsa17_dir):
    path = xlsa17_dir / "res101.mat"
    _rewrite(path, features=["not", "numbers"])
    _refused(xlsa17_dir, str(path), "field 'features'", "cell array")


@pytest.mark.parametrize("bad_label, fragments", [
    (0, ["1-based", "0-based labels?"]),
    (13, ["class ids in 1..12", "att_splits.mat"]),
])
def test_labels_out_of_range(xlsa17_dir, bad_label, fragments):
    path = xlsa17_dir / "res101.mat"
    labels = load_mat(path)["labels"].copy()
    labels[5] = bad_label
    _rewrite(path, labels=labels)
    _refused(xlsa17_dir, str(path), "field 'labels'", *fragments)


def test_labels_absurdly_large(xlsa17_dir):
    path = xlsa17_dir / "res101.mat"
    labels = load_mat(path)["labels"].copy()
    labels[0] = 1e20  # would overflow int64 on conversion
    _rewrite(path, labels=labels)
    _refused(xlsa17_dir, str(path), "field 'labels'", "at most N = 480", "maximum 1e+20")


def test_labels_not_integers(xlsa17_dir):
    path = xlsa17_dir / "res101.mat"
    labels = load_mat(path)["labels"].copy()
    labels[0] = 1.5
    _rewrite(path, labels=labels)
    _refused(xlsa17_dir, str(path), "field 'labels'", "integer")


@pytest.mark.parametrize("field", ["trainval_loc", "test_seen_loc", "test_unseen_loc"])
def test_loc_index_zero_says_one_based(xlsa17_dir, field):
    path = xlsa17_dir / "att_splits.mat"
    loc = load_mat(path)[field].astype(np.int64)
    loc[0] = 0
    _rewrite(path, **{field: loc})
    _refused(xlsa17_dir, str(path), f"field '{field}'", "they are 1-based", "index 0")


def test_loc_index_above_n(xlsa17_dir):
    path = xlsa17_dir / "att_splits.mat"
    loc = load_mat(path)["test_unseen_loc"].astype(np.int64)
    loc[-1] = 481
    _rewrite(path, test_unseen_loc=loc)
    _refused(xlsa17_dir, str(path), "field 'test_unseen_loc'", "index 481 above N = 480")


def test_loc_repeats_an_image(xlsa17_dir):
    path = xlsa17_dir / "att_splits.mat"
    loc = load_mat(path)["test_seen_loc"].astype(np.int64)
    loc[1] = loc[0]
    _rewrite(path, test_seen_loc=loc)
    _refused(xlsa17_dir, str(path), "field 'test_seen_loc'", "1 repeated")


def test_trainval_overlaps_test(xlsa17_dir):
    path = xlsa17_dir / "att_splits.mat"
    splits = load_mat(path)
    test_seen = np.concatenate([splits["test_seen_loc"].ravel(), splits["trainval_loc"][:7, 0]])
    _rewrite(path, test_seen_loc=test_seen.reshape(-1, 1))
    _refused(xlsa17_dir, str(path), "field 'trainval_loc/test_seen_loc'", "disjoint",
             "7 images in both")


def test_nan_in_features(xlsa17_dir):
    path = xlsa17_dir / "res101.mat"
    features = load_mat(path)["features"].copy()
    features[3, 10] = np.nan
    _rewrite(path, features=features)
    _refused(xlsa17_dir, str(path), "field 'features'", "finite", "row 4, column 11")


def test_inf_in_semantics(xlsa17_dir):
    path = xlsa17_dir / "att_splits.mat"
    att = load_mat(path)["att"].copy()
    att[0, 2] = np.inf
    _rewrite(path, att=att)
    _refused(xlsa17_dir, str(path), "field 'att'", "finite", "inf")


def test_class_without_images(xlsa17_dir):
    path = xlsa17_dir / "res101.mat"
    labels = load_mat(path)["labels"].copy()
    labels[labels == 2] = 1
    _rewrite(path, labels=labels)
    _refused(xlsa17_dir, str(path), "field 'labels'", "1 classes without any image", "[2]")


def test_att_columns_differ_from_classes(xlsa17_dir):
    path = xlsa17_dir / "att_splits.mat"
    splits = load_mat(path)
    _rewrite(path, att=np.hstack([splits["att"], splits["att"][:, :1]]),
             original_att=np.hstack([splits["original_att"], splits["original_att"][:, :1]]),
             allclasses_names=splits["allclasses_names"] + ["extra"])
    _refused(xlsa17_dir, str(path), "field 'att'", "12 classes", "13 columns")


def test_class_names_count_differs(xlsa17_dir):
    path = xlsa17_dir / "att_splits.mat"
    _rewrite(path, allclasses_names=load_mat(path)["allclasses_names"][:-1])
    _refused(xlsa17_dir, str(path), "field 'allclasses_names'", "12 class names")


def test_unseen_class_with_trainval_images(xlsa17_dir):
    path = xlsa17_dir / "att_splits.mat"
    splits = load_mat(path)
    unseen = splits["test_unseen_loc"].ravel()
    _rewrite(path, trainval_loc=np.concatenate([splits["trainval_loc"].ravel(), unseen[:1]]),
             test_unseen_loc=unseen[1:])
    _refused(xlsa17_dir, str(path), "field 'test_unseen_loc'", "classes with trainval images")


@pytest.mark.parametrize("filename", ["res101.mat", "att_splits.mat"])
def test_truncated_or_foreign_file(xlsa17_dir, filename):
    path = xlsa17_dir / filename
    path.write_bytes(path.read_bytes()[:400])
    _refused(xlsa17_dir, str(path), "expected a MATLAB v5 or v7.3 .mat file")
    path.write_text("label,feature\n1,0.5\n")
    _refused(xlsa17_dir, str(path), "expected a MATLAB v5 or v7.3 .mat file")


def test_find_problems_collects_all(xlsa17_dir):
    assert find_problems(xlsa17_dir) == []
    features = load_mat(xlsa17_dir / "res101.mat")["features"].copy()
    features[0, 0] = np.inf
    _rewrite(xlsa17_dir / "res101.mat", features=features)
    splits = load_mat(xlsa17_dir / "att_splits.mat")
    _rewrite(xlsa17_dir / "att_splits.mat", att=None,
             test_seen_loc=np.concatenate([splits["test_seen_loc"].ravel(),
                                           splits["trainval_loc"][:2, 0]]))
    problems = find_problems(xlsa17_dir)
    assert len(problems) == 3
    assert "field 'features'" in problems[0] and "res101.mat" in problems[0]
    assert "field 'att'" in problems[1] and "att_splits.mat" in problems[1]
    assert "trainval_loc/test_seen_loc" in problems[2]


def test_unknown_side_information(xlsa17_dir):
    with pytest.raises(UnseenInputError, match="side_information.*'text'"):
        load_xlsa17(xlsa17_dir, side_information="text")


# --- names and resolution --------------------------------------------------------------------


def test_resolve_dataset_dir_forms(tmp_path, xlsa17_dir):
    root = tmp_path / "root"
    write_xlsa17(synthetic_benchmark(), root / "awa2")
    assert resolve_dataset_dir("AWA2", root) == root / "awa2"  # parent, case-insensitive
    assert resolve_dataset_dir("awa2", root / "awa2") == root / "awa2"  # the folder itself
    assert resolve_dataset_dir(str(xlsa17_dir)) == xlsa17_dir  # a directory as the name
    write_xlsa17(synthetic_benchmark(), tmp_path / "archive" / "data" / "SUN")
    assert resolve_dataset_dir("sun", tmp_path / "archive") == tmp_path / "archive/data/SUN"


def test_data_root_from_environment(monkeypatch, tmp_path):
    write_xlsa17(synthetic_benchmark(), tmp_path / "APY")
    monkeypatch.setenv("UNSEEN_DATA_ROOT", str(tmp_path))
    assert load_benchmark("apy").name == "APY"
    # Without it: where `unseen data download` extracts, under $UNSEEN_CACHE.
    monkeypatch.delenv("UNSEEN_DATA_ROOT")
    monkeypatch.setenv("UNSEEN_CACHE", str(tmp_path / "cache"))
    write_xlsa17(synthetic_benchmark(), tmp_path / "cache" / "xlsa17" / "data" / "SUN")
    assert resolve_dataset_dir("SUN") == tmp_path / "cache" / "xlsa17" / "data" / "SUN"


def test_resolve_unknown_name_lists_known(tmp_path):
    with pytest.raises(UnseenInputError) as error:
        resolve_dataset_dir("IMAGENET", tmp_path)
    for name in ("AWA1", "AWA2", "CUB", "SUN", "APY", "FLO"):
        assert name in str(error.value)


def test_resolve_known_name_missing_folder(tmp_path):
    with pytest.raises(UnseenInputError) as error:
        resolve_dataset_dir("CUB", tmp_path)
    assert str(tmp_path) in str(error.value) and "--data-root" in str(error.value)


def test_load_benchmark_consults_embedded_loaders_first(monkeypatch, tmp_path):
    calls = []

    def loader(partition: str = "all") -> object:
        calls.append(partition)
        return synthetic_benchmark(name=f"tiny-{partition}")

    monkeypatch.setitem(datasets.EMBEDDED_LOADERS, "tiny", loader)
    assert load_benchmark("TINY", partition="test").name == "tiny-test"
    assert calls == ["test"]
    with pytest.raises(UnseenInputError, match="partition"):
        load_benchmark(str(tmp_path), partition="test")


def test_load_benchmark_by_name_and_sent(tmp_path):
    attributes = synthetic_benchmark()
    rng = np.random.default_rng(1)
    sentences = dataclasses.replace(
        attributes, side_information="sent", original_semantics=None, attribute_names=None,
        semantics=rng.random((attributes.num_classes, 24)).astype(np.float32))
    write_xlsa17(attributes, tmp_path / "CUB")
    write_xlsa17(sentences, tmp_path / "CUB")  # same images, adds sent_splits.mat
    assert load_benchmark("cub", tmp_path).semantics.shape[1] == 16
    for loaded in (load_benchmark("CUB-sent", tmp_path),
                   load_benchmark("CUB", tmp_path, side_information="sent")):
        assert loaded.side_information == "sent" and loaded.semantics.shape[1] == 24
        assert "sent_splits.mat" in loaded.source["files"]
    with pytest.raises(UnseenInputError, match="side_information"):
        load_benchmark("CUB-sent", tmp_path, side_information="att")


# --- the real split files, with synthetic features consistent with them ---------------------

# Proposed Split sizes (Xian et al. TPAMI'18): classes, unseen classes, trainval/test splits.
REAL = {
    "AWA1": (50, 10, 19832, 4958, 5685),
    "AWA2": (50, 10, 23527, 5882, 7913),
    "CUB": (200, 50, 7057, 1764, 2967),
    "CUB-sent": (200, 50, 7057, 1764, 2967),
    "SUN": (717, 72, 10320, 2580, 1440),
    "FLO": (102, 20, 5631, 1403, 1155),
    "APY": (32, 12, 5932, 1483, 7924),
}


def _fake_res101(splits_path: Path, unseen_classes: int, directory: Path) -> None:
    """A res101.mat whose labels fit the real locs: seen classes are consecutive blocks of
    trainval images (test_seen images take the class of the previous trainval image), unseen
    classes are consecutive blocks of test_unseen images."""
    splits = load_mat(splits_path)
    trainval, test_seen, test_unseen = (np.sort(splits[f].ravel().astype(np.int64)) - 1
                                        for f in ("trainval_loc", "test_seen_loc",
                                                  "test_unseen_loc"))
    classes = splits["att"].shape[1]
    seen = classes - unseen_classes
    n = int(max(trainval.max(), test_seen.max(), test_unseen.max())) + 1
    labels = np.zeros(n, dtype=np.int64)
    labels[trainval] = np.arange(trainval.size) * seen // trainval.size
    previous = np.maximum(np.searchsorted(trainval, test_seen) - 1, 0)
    labels[test_seen] = labels[trainval[previous]]
    labels[test_unseen] = seen + np.arange(test_unseen.size) * unseen_classes // test_unseen.size
    features = np.random.default_rng(0).random((4, n))
    save_mat_v5(directory / "res101.mat", {"features": features,
                                           "labels": (labels + 1).reshape(-1, 1)})
    (directory / splits_path.name).symlink_to(splits_path)


@pytest.mark.parametrize("name", list(REAL))
def test_real_split_files(shared_data, tmp_path, name):
    folder = name.split("-")[0]
    filename = "sent_splits.mat" if name.endswith("sent") else "att_splits.mat"
    splits_path = shared_data / "xlsa17" / folder / filename
    if not splits_path.is_file():
        pytest.skip(f"{splits_path} absent")
    classes, unseen, trainval, test_seen, test_unseen = REAL[name]
    (tmp_path / folder).mkdir()
    _fake_res101(splits_path, unseen, tmp_path / folder)
    benchmark = load_benchmark(name, tmp_path)
    assert benchmark.num_classes == classes == len(benchmark.class_names)
    assert benchmark.unseen_classes.size == unseen
    assert benchmark.seen_classes.size == classes - unseen
    assert (benchmark.trainval_idx.size, benchmark.test_seen_idx.size,
            benchmark.test_unseen_idx.size) == (trainval, test_seen, test_unseen)
    assert benchmark.num_images == trainval + test_seen + test_unseen
    assert benchmark.trainval_idx.min() >= 0  # converted to 0-based
    assert benchmark.source["files"][filename]["sha256"] == hashlib.sha256(
        splits_path.read_bytes()).hexdigest()


def test_real_awa2_leakage(shared_data, tmp_path):
    splits_path = shared_data / "xlsa17" / "AWA2" / "att_splits.mat"
    if not splits_path.is_file():
        pytest.skip(f"{splits_path} absent")
    report = leakage_report(splits_path)
    assert (report.train_test_seen, report.val_test_seen) == (4031, 1851)
    assert (report.train_test_unseen, report.val_test_unseen) == (0, 0)
    assert report.leaks
    _fake_res101(splits_path, 10, tmp_path)
    benchmark = load_xlsa17(tmp_path, name="AWA2")
    assert benchmark.source["ignored_fields"] == ["train_loc", "val_loc"]
    assert "shares 4031 with test_seen_loc" in benchmark.source["note"]


def test_disjoint_reference_fields_are_not_called_leaks(xlsa17_dir):
    splits_path = xlsa17_dir / "att_splits.mat"
    splits = load_mat(splits_path)
    trainval = splits["trainval_loc"].ravel()
    half = len(trainval) // 2
    save_mat_v5(splits_path, {**splits, "train_loc": trainval[:half].reshape(-1, 1),
                              "val_loc": trainval[half:].reshape(-1, 1)})
    assert not leakage_report(splits_path).leaks
    note = load_xlsa17(xlsa17_dir).source["note"]
    assert "disjoint from test_seen_loc and test_unseen_loc" in note and "shares" not in note


def test_leakage_report_absent_without_reference_fields(xlsa17_dir):
    assert leakage_report(xlsa17_dir / "att_splits.mat") is None
