"""xlsa17 image path rewriting, image descriptors and folder-of-class-folders benchmarks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unseen.data.images import (
    DESCRIPTOR_DIM,
    detect_path_rule,
    image_descriptor,
    load_image_folder,
    resolve_image_paths,
    rewrite_image_path,
)
from unseen.data.synthetic import synthetic_benchmark
from unseen.errors import UnseenInputError

CUB = "/BS/Deep_Fragments/work/MSc/CUB_200_2011/images/001.Black_footed_Albatross/x.jpg"
AWA2 = "/BS/xian/work/data/Animals_with_Attributes2/JPEGImages/antelope/antelope_10001.jpg"
SUN = "/BS/Deep_Fragments/work/MSc/data/SUN/images/a/abbey/sun_a.jpg"


@pytest.mark.parametrize("stored, rule, expected", [
    (CUB, "cub", "CUB_200_2011/images/001.Black_footed_Albatross/x.jpg"),
    (AWA2, "awa2", "AwA2/JPEGImages/antelope/antelope_10001.jpg"),
    (SUN, "sun", "SUN/images/a/abbey/sun_a.jpg"),
    ("images/red/0001.png", "relative", "images/red/0001.png"),
])
def test_rules_rewrite_reference_paths(stored: str, rule: str, expected: str) -> None:
    root = Path("/data/images")
    assert detect_path_rule([stored]) == rule
    assert rewrite_image_path(stored, root, rule) == root / expected


def test_auto_rule_unknown_layout_is_an_input_error() -> None:
    with pytest.raises(UnseenInputError, match="rule"):
        detect_path_rule(["/somewhere/else/img.jpg"])
    with pytest.raises(UnseenInputError, match="MSc/"):
        rewrite_image_path(AWA2, Path("/r"), "cub")


def _with_files(stored: list[str]):
    benchmark = synthetic_benchmark(num_classes=3, num_unseen=1, images_per_class=1)
    benchmark.image_files = stored
    return benchmark


def test_resolve_finds_existing_files_and_names_missing_ones(tmp_path: Path) -> None:
    stored = [CUB, CUB.replace("x.jpg", "y.jpg"), CUB.replace("x.jpg", "z.jpg")]
    benchmark = _with_files(stored)
    for path in stored[:2]:
        target = tmp_path / path.split("MSc/")[1]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"jpeg")
    with pytest.raises(UnseenInputError) as error:
        resolve_image_paths(benchmark, tmp_path)
    message = str(error.value)
    assert "1 missing" in message and "z.jpg" in message and "'cub'" in message
    assert str(tmp_path) in message
    (tmp_path / stored[2].split("MSc/")[1]).write_bytes(b"jpeg")
    paths = resolve_image_paths(benchmark, tmp_path)
    assert paths[2] == tmp_path / "CUB_200_2011/images/001.Black_footed_Albatross/z.jpg"
    with pytest.raises(UnseenInputError, match="image_path_rule"):
        resolve_image_paths(benchmark, tmp_path, rule="imagenet")


def test_descriptor_sees_colour_and_orientation() -> None:
    images = np.zeros((3, 32, 32, 3), np.uint8)
    images[0, ..., 0] = 250  # red
    images[1, ..., 2] = 250  # blue
    images[2, :, ::4] = 255  # vertical stripes
    d = image_descriptor(images)
    assert d.shape == (3, DESCRIPTOR_DIM) and d.dtype == np.float32
    np.testing.assert_allclose((d[:, :64] ** 2).sum(1), 1.0, rtol=1e-5)
    assert d[0, 48] == pytest.approx(1.0) and d[1, 3] == pytest.approx(1.0)  # (r,g,b) bins
    horizontal = image_descriptor(np.ascontiguousarray(images[2:].transpose(0, 2, 1, 3)))
    assert not np.allclose(d[2, 64:96], horizontal[0, 64:96])
    np.testing.assert_allclose(d[2, 96:], horizontal[0, 96:].reshape(8, 8).T.ravel(), atol=1e-6)


def _folder(tmp_path: Path, colours: dict[str, tuple[int, int, int]], per_class: int = 5,
            csv_text: str | None = None) -> tuple[Path, Path]:
    root = tmp_path / "images"
    for name, rgb in colours.items():
        (root / name).mkdir(parents=True)
        for k in range(per_class):
            shade = np.clip(np.array(rgb) + 5 * k, 0, 255).astype(np.uint8)
            picture = Image.fromarray(np.tile(shade, (20 + k, 30, 1)))
            picture.save(root / name / f"{k}.{'png' if k % 2 else 'jpg'}")
    csv_path = tmp_path / "attributes.csv"
    default = "class,red,blue,round\n" + "".join(
        f"{name},{int(rgb[0] > 128)},{int(rgb[2] > 128)},{i % 2 + 0.5}\n"
        for i, (name, rgb) in enumerate(colours.items()))
    csv_path.write_text(csv_text if csv_text is not None else default)
    return root, csv_path


COLOURS = {"cherry": (220, 20, 20), "sky": (20, 20, 220), "plum": (200, 20, 200),
           "grass": (20, 200, 20)}


def test_image_folder_benchmark_is_consistent(tmp_path: Path) -> None:
    root, csv_path = _folder(tmp_path, COLOURS)
    benchmark = load_image_folder(root, csv_path, unseen=["plum"], name="fruit", progress=False)
    assert benchmark.class_names == list(COLOURS)
    assert benchmark.labels.tolist() == np.repeat(np.arange(4), 5).tolist()
    assert benchmark.unseen_classes.tolist() == [2]
    assert sorted(benchmark.test_unseen_idx.tolist()) == list(range(10, 15))
    # 20% of 5 images per seen class held out as test_seen, the rest trainval
    assert np.bincount(benchmark.labels[benchmark.test_seen_idx]).tolist() == [1, 1, 0, 1]
    assert benchmark.trainval_idx.size == 12
    assert benchmark.features.shape == (20, DESCRIPTOR_DIM)
    np.testing.assert_allclose(np.linalg.norm(benchmark.semantics, axis=1), 1.0, rtol=1e-6)
    assert benchmark.original_semantics[1].tolist() == [0.0, 1.0, 1.5]
    assert benchmark.attribute_names == ["red", "blue", "round"]
    image_root = Path(benchmark.source["image_root"])
    assert all((image_root / f).is_file() for f in benchmark.image_files)
    assert resolve_image_paths(benchmark, image_root)[3] == image_root / "cherry" / "3.png"
    means = np.stack([benchmark.features[benchmark.labels == c].mean(0) for c in range(4)])
    assert np.linalg.norm(means[0] - means[1]) > 0.5  # red and blue images look different
    again = load_image_folder(root, csv_path, unseen=["plum"], progress=False)
    assert np.array_equal(again.test_seen_idx, benchmark.test_seen_idx)


@pytest.mark.parametrize("csv_text, match", [
    ("name,red\ncherry,1\n", "header"),
    ("class,red,blue\ncherry,1\n", "row 2"),
    ("class,red,blue\ncherry,1,x\n", "row 2, column 'blue'.*'x'"),
    ("class,red,blue\ncherry,1,0\ncherry,0,1\n", "row 3, column 'class'"),
    ("class,red,blue\ncherry,0,0\n", "row 2.*all zeros"),
    ("class,red,red\ncherry,1,0\n", "distinct"),
])
def test_csv_errors_name_the_file_row_and_column(tmp_path: Path, csv_text: str,
                                                 match: str) -> None:
    root, csv_path = _folder(tmp_path, {"cherry": (220, 20, 20)}, per_class=2,
                             csv_text=csv_text)
    with pytest.raises(UnseenInputError, match=match) as error:
        load_image_folder(root, csv_path, unseen=["cherry"], progress=False)
    assert "attributes.csv" in str(error.value)


def test_folder_and_unseen_mismatches_are_input_errors(tmp_path: Path) -> None:
    root, csv_path = _folder(tmp_path, COLOURS, per_class=2)
    with pytest.raises(UnseenInputError, match="unknown: \\['kiwi'\\]"):
        load_image_folder(root, csv_path, unseen=["kiwi"], progress=False)
    with pytest.raises(UnseenInputError, match="option 'unseen'"):
        load_image_folder(root, csv_path, unseen=list(COLOURS), progress=False)
    (root / "lime").mkdir()
    Image.new("RGB", (8, 8)).save(root / "lime" / "a.png")
    with pytest.raises(UnseenInputError, match="no row for \\['lime'\\]"):
        load_image_folder(root, csv_path, unseen=["sky"], progress=False)
    csv_path.write_text(csv_path.read_text() + "lime,1,1,1\nmelon,1,0,1\n")
    with pytest.raises(UnseenInputError, match="melon"):
        load_image_folder(root, csv_path, unseen=["sky"], progress=False)
