"""DUET's path options on real-data setups: one exit-2 line per bad path, `~` everywhere, local
directories told from hub ids, the offline message, CUB's names file, AWA2's official layout."""

from __future__ import annotations

import json

import pytest
from duet_fixtures import ATTRIBUTE_WORDS, save_tiny_bert, save_tiny_deit, tiny_image_benchmark

from unseen.cli import main
from unseen.data.images import resolve_image_paths
from unseen.data.synthetic import synthetic_benchmark
from unseen.data.tasks import make_test_task
from unseen.data.xlsa17 import write_xlsa17
from unseen.errors import UnseenInputError
from unseen.methods.duet import DUET, DUETConfig
from unseen.methods.duet.attributes import load_attribute_vocabulary
from unseen.methods.duet.model import load_tokenizer
from unseen.methods.duet.paths import looks_like_path, model_source


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("duet_paths")
    benchmark = tiny_image_benchmark(root / "images", images_per_class=3)
    write_xlsa17(benchmark, root / "TINY")
    names = root / "names.txt"
    names.write_text("\n".join(ATTRIBUTE_WORDS) + "\n")
    return {"root": root, "dataset": root / "TINY", "names": names,
            "groups": root / "images" / "attributeindex2prompt.json",
            "deit": save_tiny_deit(root / "deit"),
            "bert": save_tiny_bert(root / "bert", extra_words=ATTRIBUTE_WORDS)}


def _train(world, tmp_path, **options) -> list[str]:
    values = {"vision_model": world["deit"], "text_model": world["bert"],
              "attributes_txt": world["names"], "attribute_groups": world["groups"],
              "image_root": world["root"] / "images", "epochs": 1, "num_workers": 0,
              "batch_size": 4, "pixel_cache_dir": tmp_path / "cache", "device": "cpu"} | options
    return ["train", "duet", "--dataset", str(world["dataset"]), "--protocol", "paper",
            "--out", str(tmp_path / "run"), "--set",
            *[f"{key}={value}" for key, value in values.items()]]


@pytest.mark.parametrize("option,value,fragment", [
    ("attributes_txt", "{root}/no_names.txt", "no such file"),
    ("attributes_txt", "{root}", "a directory"),
    ("attribute_groups", "~/no_groups.json", "no such file"),
    ("attribute_mapping", "{root}/no_mapping.json", "no such file"),
    ("vision_model", "{root}/no_deit", "no such directory"),
    ("text_model", "~/models/no-bert", "no such directory"),
    ("text_model", "{root}/names.txt", "a file"),
    ("image_root", "{root}/no_images", "no such directory"),
])
def test_every_path_option_error_is_one_exit_2_line(world, tmp_path, capsys, monkeypatch,
                                                    option, value, fragment):
    monkeypatch.setenv("HOME", str(tmp_path))
    code = main(_train(world, tmp_path, **{option: value.format(root=world["root"])}))
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"option '{option}'" in err and fragment in err
    assert "~" not in err.split("found", 1)[1]  # reported expanded


def test_tilde_is_expanded_in_every_path_option(world, tmp_path, monkeypatch):
    home = world["root"]
    monkeypatch.setenv("HOME", str(home))
    config = DUETConfig(vision_model="~/deit", text_model="~/bert",
                        attributes_txt="~/names.txt",
                        attribute_groups="~/images/attributeindex2prompt.json",
                        image_root="~/images", pixel_cache_dir="~/tilde_cache", epochs=1,
                        batch_size=4, num_workers=0, device="cpu")
    task = make_test_task(tiny_image_benchmark(tmp_path / "elsewhere", images_per_class=3))
    method = DUET(config, seed=0)
    method._prepare(task)
    assert method._builder.vocab.words == ATTRIBUTE_WORDS
    method._pixels(task)
    assert (home / "tilde_cache").is_dir() and not (tmp_path / "~").exists()


def test_local_paths_are_told_from_hub_ids(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    for hub_id in ("bert-base-uncased", "facebook/deit-base-distilled-patch16-224"):
        assert not looks_like_path(hub_id) and model_source(hub_id, "text_model") == hub_id
    for path in ("/opt/bert", "~/bert", "./bert", "../bert", "models", "a/b/c", "C:\\bert"):
        assert looks_like_path(path), path
    with pytest.raises(UnseenInputError, match="no such directory") as error:
        model_source("./bert", "text_model")
    assert "hf download" not in str(error.value)  # a missing local copy is not a download
    with pytest.raises(UnseenInputError, match="config.json"):
        model_source("models", "vision_model")


def test_offline_uncached_hub_id_is_one_line_with_the_cause_and_command(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty_hf_home"))
    with pytest.raises(UnseenInputError) as error:
        load_tokenizer("no-such-org/no-such-bert")
    message = str(error.value)
    assert "\n" not in message
    assert "HF_HUB_OFFLINE" in message and "not in the local Hugging Face cache" in message
    assert "`hf download no-such-org/no-such-bert`" in message
    assert "huggingface-cli" not in message and "tokenizer" not in message
    assert "--set text_model=/path/to/model" in message


def test_cub_without_attribute_names_names_attributes_txt():
    benchmark = synthetic_benchmark(num_classes=6, num_unseen=2, images_per_class=2,
                                    semantic_dim=5)
    benchmark.attribute_names = None
    with pytest.raises(UnseenInputError, match="option 'attributes_txt'.*attributes.txt"):
        load_attribute_vocabulary(benchmark, "cub")


@pytest.mark.parametrize("under", ["", "Animals_with_Attributes2"])
def test_official_awa2_layout_is_accepted_as_it_unpacks(tmp_path, under):
    benchmark = synthetic_benchmark(num_classes=4, num_unseen=1, images_per_class=6)
    benchmark.image_files = [
        f"/BS/xian/work/data/Animals_with_Attributes2//JPEGImages/{name}/{name}_{i:05d}.jpg"
        for i, name in enumerate(benchmark.class_names[c] for c in benchmark.labels)]
    unpacked = tmp_path / "Animals_with_Attributes2"  # AwA2-data.zip unpacks to this folder
    for stored in benchmark.image_files:
        target = unpacked / "JPEGImages" / stored.split("JPEGImages/")[1]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"")
    root = tmp_path if under else unpacked
    paths = resolve_image_paths(benchmark, root)
    assert paths[0] == unpacked / "JPEGImages" / benchmark.image_files[0].split("JPEGImages/")[1]


def test_missing_awa2_images_name_the_accepted_layouts(tmp_path):
    benchmark = synthetic_benchmark(num_classes=4, num_unseen=1, images_per_class=6)
    benchmark.image_files = [f"/x/JPEGImages/c/{i}.jpg" for i in range(benchmark.num_images)]
    with pytest.raises(UnseenInputError, match="Animals_with_Attributes2/JPEGImages"):
        resolve_image_paths(benchmark, tmp_path)


def test_manifest_without_attribute_names_is_one_line(tmp_path):
    from unseen.methods.duet.method import manifest_attribute_names

    benchmark = synthetic_benchmark(num_classes=4, num_unseen=1, images_per_class=6)
    benchmark.attribute_names = None
    benchmark.source["manifest"] = json.loads(json.dumps({"attribute_names": None}))
    with pytest.raises(UnseenInputError, match="--attributes") as error:
        manifest_attribute_names(benchmark)
    assert "\n" not in str(error.value)
