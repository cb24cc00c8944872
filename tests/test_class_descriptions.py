"""Class descriptions: WordNet glosses (when installed) or the documented prompt."""

from __future__ import annotations

from pathlib import Path

import pytest

from unseen.data.embedded_sources import ANIMAL_CLASSES, FASHION_CLASSES
from unseen.errors import UnseenInputError
from unseen.text.class_descriptions import (
    PROMPT_TEMPLATE,
    WORDNET_SENSES,
    WordNetNouns,
    class_descriptions,
    wordnet_available,
)

needs_wordnet = pytest.mark.skipif(not wordnet_available(),
                                   reason="Debian's wordnet-base is not installed")


def test_prompt_fallback_without_wordnet(tmp_path: Path) -> None:
    texts, kind = class_descriptions(list(ANIMAL_CLASSES), "animals", wordnet_dir=tmp_path)
    assert kind == "prompt"
    assert texts[0] == PROMPT_TEMPLATE.format(name="bear", domain="an animal")
    assert len(set(texts)) == len(ANIMAL_CLASSES)
    forced, kind = class_descriptions(["coat"], "fashion", kind="prompt")
    assert kind == "prompt"
    assert forced == ["a photo of a coat, a piece of clothing or an accessory."]
    with pytest.raises(UnseenInputError):
        class_descriptions(["bear"], "animals", kind="wordnet", wordnet_dir=tmp_path)
    with pytest.raises(UnseenInputError):
        class_descriptions(["bear"], "animals", kind="glosses")


def test_unmapped_class_falls_back_to_prompts() -> None:
    texts, kind = class_descriptions(["bear", "unicorn"], "animals")
    assert kind == "prompt" and "unicorn" in texts[1]


def test_every_class_has_a_fixed_sense() -> None:
    assert set(ANIMAL_CLASSES) | set(FASHION_CLASSES) <= set(WORDNET_SENSES)


@needs_wordnet
def test_wordnet_glosses_pick_the_documented_senses() -> None:
    texts, kind = class_descriptions(list(ANIMAL_CLASSES), "animals")
    assert kind == "wordnet"
    by_name = dict(zip(ANIMAL_CLASSES, texts, strict=True))
    assert "feathers" in by_name["bird"]
    assert "striped" in by_name["zebra"]
    assert by_name["cow"] == "cow: female of domestic cattle"  # example sentence stripped
    nouns = WordNetNouns()
    bag = nouns.lookup("bag", 4)
    assert "handbag" in bag.words and "money" in bag.gloss
    assert len(nouns.senses("dog")) == 7
    with pytest.raises(UnseenInputError):
        nouns.lookup("giraffe", 2)  # giraffe has one sense
    fashion, kind = class_descriptions(list(FASHION_CLASSES), "fashion")
    assert kind == "wordnet" and "foot" in fashion[FASHION_CLASSES.index("ankle boot")]
