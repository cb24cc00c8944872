"""One English description per class: a WordNet gloss where WordNet is installed, else a prompt.

WordNet 3.0 comes from Debian's `wordnet-base` (`/usr/share/wordnet/{index,data}.noun`); we
parse those two files directly (no nltk). Each class maps to a fixed (lemma, sense number)
below, chosen by reading the senses, so the synset never depends on a heuristic. Without
WordNet, the description is a prompt: `PROMPT_TEMPLATE.format(name=..., domain=...)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from unseen.errors import input_error

WORDNET_DIR = Path("/usr/share/wordnet")
PROMPT_TEMPLATE = "a photo of a {name}, {domain}."
DOMAINS = {"animals": "an animal", "fashion": "a piece of clothing or an accessory"}

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


def prompt_description(name: str, domain: str) -> str:
    """The fallback description: `PROMPT_TEMPLATE` filled with the class name and domain."""
    return PROMPT_TEMPLATE.format(name=name, domain=DOMAINS.get(domain, domain))


def class_descriptions(class_names: list[str] | tuple[str, ...], domain: str,
                       kind: str = "auto", wordnet_dir: Path = WORDNET_DIR,
                       ) -> tuple[list[str], str]:
    """(one description per class, the kind used: "wordnet" or "prompt").

    `kind="auto"` uses WordNet glosses when the database is installed and every class has a
    mapped sense; otherwise the prompt template. A WordNet description reads
    "{name}: {gloss}" so that the class name itself is part of the text.
    """
    if kind not in ("auto", "wordnet", "prompt"):
        raise input_error("option 'descriptions'", None, "auto, wordnet or prompt", repr(kind))
    mapped = all(name in WORDNET_SENSES for name in class_names)
    if kind == "wordnet" and not (wordnet_available(wordnet_dir) and mapped):
        raise input_error("option 'descriptions'", None,
                          f"WordNet at {wordnet_dir} (Debian: wordnet-base) and a sense for "
                          "every class", "WordNet missing or a class without a mapped sense")
    if kind == "prompt" or not (wordnet_available(wordnet_dir) and mapped):
        return [prompt_description(name, domain) for name in class_names], "prompt"
    nouns = WordNetNouns(wordnet_dir)
    texts = []
    for name in class_names:
        synset = nouns.lookup(*WORDNET_SENSES[name])
        texts.append(f"{name}: {synset.gloss}")
    return texts, "wordnet"
