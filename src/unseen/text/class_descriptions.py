"""One English description per class of the embedded benchmarks: a packaged WordNet gloss.

The texts live in `unseen/data/embedded_descriptions.json` (WordNet 3.0 noun glosses, with
their licence in `unseen/data/LICENSE-WORDNET`), so every machine embeds exactly the same
sentences and the embedded benchmarks do not depend on Debian's `wordnet-base` at run time.
Each class maps to a fixed (lemma, sense number) in `WORDNET_SENSES`, chosen by reading the
senses; `wordnet_descriptions` rebuilds the texts from an installed WordNet (tests compare it
with the packaged file). A class without a packaged gloss gets a prompt,
`prompt_description(name, domain)`: "a photo of an elephant, an animal."
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from unseen.errors import input_error

WORDNET_DIR = Path("/usr/share/wordnet")
PACKAGED_DESCRIPTIONS = "embedded_descriptions.json"
PROMPT_TEMPLATE = "a photo of {name_with_article}, {domain}."
DOMAINS = {"animals": "an animal", "fashion": "a piece of clothing or an accessory"}

# Words whose article the first letter alone gets wrong: a vowel letter with a consonant sound
# ("a unicorn", "a one-piece") or a silent h ("an hour").
_CONSONANT_SOUND_PREFIXES = ("uni", "use", "usu", "uti", "ura", "ure", "euro", "eu", "ewe", "one",
                             "once")
_VOWEL_SOUND_PREFIXES = ("hour", "honest", "honor", "honour", "heir")

# class name -> (WordNet noun lemma, 1-based sense number). Senses picked by hand: e.g. "cow"
# sense 1 is the domestic cow (sense 2 is any mature female mammal), "bag" sense 4 the handbag
# that Fashion-MNIST pictures (sense 1 is any flexible container), "ankle boot" the footwear
# sense of "boot".
WORDNET_SENSES: dict[str, tuple[str, int]] = {
    "bear": ("bear", 1), "bird": ("bird", 1), "cat": ("cat", 1), "cow": ("cow", 1),
    "dog": ("dog", 1), "elephant": ("elephant", 1), "giraffe": ("giraffe", 1),
    "horse": ("horse", 1), "sheep": ("sheep", 1), "zebra": ("zebra", 1),
    "t-shirt/top": ("t-shirt", 1), "trouser": ("trouser", 1), "pullover": ("pullover", 1),
    "dress": ("dress", 1), "coat": ("coat", 1), "sandal": ("sandal", 1), "shirt": ("shirt", 1),
    "sneaker": ("sneaker", 1), "bag": ("bag", 4), "ankle boot": ("boot", 1),
}


def wordnet_available(directory: Path = WORDNET_DIR) -> bool:
    """True where WordNet's noun database is installed (only needed to rebuild the texts)."""
    return (directory / "index.noun").is_file() and (directory / "data.noun").is_file()


@dataclass(frozen=True)
class Synset:
    offset: int
    words: tuple[str, ...]
    gloss: str  # the definition, without the quoted usage examples


class WordNetNouns:
    """Look up noun synsets in WordNet's `index.noun` / `data.noun` database files."""

    def __init__(self, directory: Path = WORDNET_DIR) -> None:
        self.directory = Path(directory)
        self._index: dict[str, list[int]] = {}
        for line in (self.directory / "index.noun").read_text(encoding="utf-8").splitlines():
            if line.startswith(" "):  # the license header lines start with two spaces
                continue
            # lemma pos synset_cnt p_cnt [ptr_symbol]*p_cnt sense_cnt tagsense_cnt offset*
            fields = line.split()
            synset_count, pointer_count = int(fields[2]), int(fields[3])
            offsets = fields[4 + pointer_count + 2:]
            if len(offsets) != synset_count:
                raise input_error(str(self.directory / "index.noun"), fields[0],
                                  f"{synset_count} synset offsets", str(len(offsets)))
            self._index[fields[0]] = [int(offset) for offset in offsets]

    def senses(self, lemma: str) -> list[int]:
        """Synset offsets of `lemma`, most frequent sense first (WordNet's order)."""
        return self._index.get(lemma.lower().replace(" ", "_"), [])

    def synset(self, offset: int) -> Synset:
        """Read the `data.noun` line at byte `offset` (offsets are byte positions by design)."""
        with (self.directory / "data.noun").open("rb") as handle:
            handle.seek(offset)
            line = handle.readline().decode("utf-8")
        head, _, gloss = line.partition(" | ")
        fields = head.split()
        if int(fields[0]) != offset:
            raise input_error(str(self.directory / "data.noun"), f"offset {offset}",
                              "a synset line starting with its own offset", line[:40])
        word_count = int(fields[3], 16)
        words = tuple(fields[4 + 2 * i].replace("_", " ") for i in range(word_count))
        # Glosses read 'definition; "example"' (sometimes 'definition: "example"'): keep the
        # definition.
        definition = re.split(r'[;:]\s*"', gloss.strip(), maxsplit=1)[0].strip().rstrip(";")
        return Synset(offset, words, definition)

    def lookup(self, lemma: str, sense: int) -> Synset:
        offsets = self.senses(lemma)
        if not 1 <= sense <= len(offsets):
            raise input_error(str(self.directory / "index.noun"), lemma,
                              f"at least {sense} noun senses", str(len(offsets)))
        return self.synset(offsets[sense - 1])


def indefinite_article(noun: str) -> str:
    """ "a" or "an" for `noun`, by the sound of its first letter (with a few exceptions)."""
    word = noun.strip().lower()
    if word.startswith(_VOWEL_SOUND_PREFIXES):
        return "an"
    if word.startswith(_CONSONANT_SOUND_PREFIXES):
        return "a"
    return "an" if word[:1] in ("a", "e", "i", "o", "u") else "a"


def prompt_description(name: str, domain: str) -> str:
    """The fallback description, e.g. "a photo of an elephant, an animal." """
    return PROMPT_TEMPLATE.format(name_with_article=f"{indefinite_article(name)} {name}",
                                  domain=DOMAINS.get(domain, domain))


@cache
def packaged_descriptions() -> dict:
    """The packaged file: {"source", "licence", "classes": {domain: {class: {..., "text"}}}}."""
    path = resources.files("unseen.data").joinpath(PACKAGED_DESCRIPTIONS)
    return json.loads(path.read_text(encoding="utf-8"))


def wordnet_descriptions(class_names: list[str] | tuple[str, ...],
                         wordnet_dir: Path = WORDNET_DIR) -> list[str]:
    """Rebuild "{name}: {gloss}" from an installed WordNet (how the packaged texts were made)."""
    nouns = WordNetNouns(wordnet_dir)
    return [f"{name}: {nouns.lookup(*WORDNET_SENSES[name]).gloss}" for name in class_names]


def class_descriptions(class_names: list[str] | tuple[str, ...], domain: str,
                       kind: str = "auto") -> tuple[list[str], str]:
    """(one description per class, the kind used: "wordnet" or "prompt").

    `kind="auto"` uses the packaged WordNet glosses when every class of `domain` has one,
    otherwise the prompt for every class (one kind of text per data set). A WordNet
    description reads "{name}: {gloss}" so that the class name itself is part of the text.
    """
    if kind not in ("auto", "wordnet", "prompt"):
        raise input_error("option 'descriptions'", None, "auto, wordnet or prompt", repr(kind))
    glosses = packaged_descriptions()["classes"].get(domain, {})
    covered = all(name in glosses for name in class_names)
    if kind == "wordnet" and not covered:
        missing = [name for name in class_names if name not in glosses]
        raise input_error("option 'descriptions'", None,
                          f"a packaged WordNet gloss for every class of '{domain}'",
                          f"none for {', '.join(missing)}")
    if kind == "prompt" or not covered:
        return [prompt_description(name, domain) for name in class_names], "prompt"
    return [glosses[name]["text"] for name in class_names], "wordnet"
