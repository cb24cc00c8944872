"""Class descriptions: the packaged WordNet glosses, and the prompt fallback."""

from __future__ import annotations

from importlib import resources

import pytest

from unseen.data.embedded_sources import ANIMAL_CLASSES, FASHION_CLASSES
from unseen.errors import UnseenInputError
from unseen.text.class_descriptions import (
    WORDNET_SENSES,
    WordNetNouns,
    class_descriptions,
    indefinite_article,
    packaged_descriptions,
    prompt_description,
    wordnet_available,
    wordnet_descriptions,
)

needs_wordnet = pytest.mark.skipif(not wordnet_available(),
                                   reason="Debian's wordnet-base is not installed")
EMBEDDED = {"animals": ANIMAL_CLASSES, "fashion": FASHION_CLASSES}


@pytest.mark.parametrize("domain", sorted(EMBEDDED))
def test_packaged_file_covers_every_class(domain: str) -> None:
    texts, kind = class_descriptions(list(EMBEDDED[domain]), domain)
    assert kind == "wordnet"
    assert len(set(texts)) == len(EMBEDDED[domain])
    for name, text in zip(EMBEDDED[domain], texts, strict=True):
        gloss = text.removeprefix(f"{name}: ")
        assert gloss != text and len(gloss) > 10 and '"' not in gloss  # examples stripped
        entry = packaged_descriptions()["classes"][domain][name]
        assert (entry["lemma"], entry["sense"]) == WORDNET_SENSES[name]


def test_packaged_file_carries_its_source_and_licence() -> None:
    data = packaged_descriptions()
    assert "WordNet 3.0" in data["source"] and "Princeton" in data["licence"]
    licence = resources.files("unseen.data").joinpath("LICENSE-WORDNET").read_text()
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in licence
    assert "Permission to use, copy, modify and distribute" in licence


def test_documented_senses_are_packaged() -> None:
    by_name = dict(zip(ANIMAL_CLASSES, class_descriptions(list(ANIMAL_CLASSES), "animals")[0],
                       strict=True))
    assert by_name["cow"] == "cow: female of domestic cattle"  # sense 1, example stripped
    assert "striped" in by_name["zebra"] and "feathers" in by_name["bird"]
    fashion = dict(zip(FASHION_CLASSES, class_descriptions(list(FASHION_CLASSES), "fashion")[0],
                       strict=True))
    assert "money" in fashion["bag"]  # sense 4, the handbag
    assert "foot" in fashion["ankle boot"]


@pytest.mark.parametrize(("noun", "article"), [
    ("elephant", "an"), ("ankle boot", "an"), ("owl", "an"), ("igloo", "an"), ("umbrella", "an"),
    ("bear", "a"), ("t-shirt/top", "a"), ("unicorn", "a"), ("one-piece", "a"), ("ewe", "a"),
    ("hour glass", "an"), ("horse", "a"), ("Elephant", "an")])
def test_indefinite_article_follows_the_first_sound(noun: str, article: str) -> None:
    assert indefinite_article(noun) == article


def test_prompt_fallback_reads_as_english() -> None:
    assert prompt_description("elephant", "animals") == "a photo of an elephant, an animal."
    assert prompt_description("coat", "fashion") == \
        "a photo of a coat, a piece of clothing or an accessory."
    texts, kind = class_descriptions(list(ANIMAL_CLASSES), "animals", kind="prompt")
    assert kind == "prompt" and texts[ANIMAL_CLASSES.index("elephant")].startswith(
        "a photo of an elephant")
    assert len(set(texts)) == len(ANIMAL_CLASSES)


def test_unpackaged_class_falls_back_to_prompts_and_bad_kinds_are_refused() -> None:
    texts, kind = class_descriptions(["bear", "unicorn"], "animals")
    assert kind == "prompt" and texts[1] == "a photo of a unicorn, an animal."
    with pytest.raises(UnseenInputError, match="unicorn"):
        class_descriptions(["bear", "unicorn"], "animals", kind="wordnet")
    with pytest.raises(UnseenInputError, match="auto, wordnet or prompt"):
        class_descriptions(["bear"], "animals", kind="glosses")


@needs_wordnet
@pytest.mark.parametrize("domain", sorted(EMBEDDED))
def test_packaged_texts_equal_the_installed_wordnet(domain: str) -> None:
    classes = list(EMBEDDED[domain])
    assert class_descriptions(classes, domain)[0] == wordnet_descriptions(classes)


@needs_wordnet
def test_wordnet_reader_finds_the_senses() -> None:
    nouns = WordNetNouns()
    bag = nouns.lookup("bag", 4)
    assert "handbag" in bag.words and "money" in bag.gloss
    assert bag.offset == packaged_descriptions()["classes"]["fashion"]["bag"]["synset_offset"]
    assert len(nouns.senses("dog")) == 7
    with pytest.raises(UnseenInputError):
        nouns.lookup("giraffe", 2)  # giraffe has one sense
