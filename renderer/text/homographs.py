"""English homographs: the original's part-of-speech choice, and our context rules where it is wrong.

The original frontend reads the ``g2p-en`` package's homograph list (``homographs.en``: word,
reading when the part of speech starts with a tag, other reading, tag) and tags sentences with
NLTK's perceptron tagger; GPT-SoVITS changes "read" (VBP) and "complex" (JJ). The tagger needs
NLTK data that is not installed, so :func:`guess_tag` approximates it from the neighbouring
words, in the cases that decide these words: after "to" or a modal a verb, after a determiner
a noun, after a subject pronoun a present or past verb, after "be"/"have" a participle.

Words the original reads from its dictionary regardless of sense, where that is plainly wrong
in common sentences (listed in DEVIATIONS.md): "lead" (the metal only next to metal words),
"live" (the verb after subjects and modals), "wind" (the noun unless a verb context), "tear(s)"
(crying after determiners), "wound" (the injury after determiners). "résumé" with an accent is
the noun. Nine entries of the g2p-en list have their readings swapped ("the object" read as the
verb, "she learned" as the adjective): they are read the right way round.
"""

from __future__ import annotations

import functools

from renderer.text.en_dict import g2p_en_dir

# Entries of the g2p-en list whose two readings are swapped (the verb gets the noun's stress and back):
# read the right way round (our fix, DEVIATIONS.md).
_SWAPPED = ("object", "rebel", "fragment", "segment", "torment", "exploit", "exploits", "imprint", "learned")
# GPT-SoVITS's own changes to the homograph list.
_ORIGINAL_OVERRIDES = {
    "read": (("R", "IY1", "D"), ("R", "EH1", "D"), "VBP"),
    "complex": (("K", "AH0", "M", "P", "L", "EH1", "K", "S"), ("K", "AA1", "M", "P", "L", "EH0", "K", "S"), "JJ"),
}
_TO_MODAL = frozenset(
    "to will would shall should can could may might must cannot do does did don't doesn't didn't won't wouldn't "
    "can't couldn't shouldn't mustn't let's please".split()
)
_BE = frozenset("is are was were be been being am 's 're 'm isn't aren't wasn't weren't get gets got".split())
_HAVE = frozenset("has have had having 've 'd hasn't haven't hadn't".split())
_SUBJECTS_3RD = frozenset("he she it who that which".split())
_SUBJECTS = frozenset("i you we they".split()) | _SUBJECTS_3RD
_DETERMINERS = frozenset(
    "the a an this that these those my your his her its our their some any no every each one another "
    "of in on at for with from by about into onto upon over under through between among without within".split()
)
_LIVE_SUBJECTS = frozenset("i you we they who people".split())  # "they live", not "broadcast it live"
_SKIP = frozenset("not never also always just really often still even only then soon already usually".split())
_OBJECT_START = frozenset("the a an his her their my your our its this that these those it them him me us".split())
_METAL_NEIGHBOURS = frozenset(
    "pipe pipes poisoning paint pencil pencils weight weights shot bullet bullets mine mines ore crystal glass "
    "balloon soldier soldiers sinker sinkers acetate oxide sulfide sulphide lined roof roofs".split()
)


@functools.lru_cache(maxsize=1)
def table() -> dict[str, tuple[tuple[str, ...], tuple[str, ...], str]]:
    """word -> (reading when the tag starts with ``tag``, other reading, tag)."""
    out: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {}
    text = (g2p_en_dir() / "homographs.en").read_text(encoding="utf-8")
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        word, pron1, pron2, tag = line.strip().split("|")
        out[word.lower()] = (tuple(pron1.split()), tuple(pron2.split()), tag)
    out.update(_ORIGINAL_OVERRIDES)
    for word in _SWAPPED:
        if word in out:
            verb, other, tag = out[word]
            out[word] = (other, verb, tag)
    return out


def _previous(words: list[str], i: int) -> str:
    j = i - 1
    while j >= 0 and words[j] in _SKIP:
        j -= 1
    return words[j] if j >= 0 else ""


def guess_tag(words: list[str], i: int) -> str:
    """A Penn tag for ``words[i]`` (lower-case tokens, punctuation included) from its neighbours."""
    word, prev = words[i], _previous(words, i)
    nxt = words[i + 1] if i + 1 < len(words) else ""
    past = word.endswith("ed") or word == "wound"
    if prev in _TO_MODAL:
        return "VB"
    if prev in _BE:
        return "VBN" if past else "VBG" if word.endswith("ing") else "JJ"
    if prev in _HAVE:
        return "VBN" if past else "NN"
    if prev in _SUBJECTS:
        if past or (word == "read" and prev in _SUBJECTS_3RD):  # "she read" is past, "I read" present
            return "VBD"
        return "VBZ" if word.endswith("s") and prev in _SUBJECTS_3RD else "VBP"
    if prev in _DETERMINERS:
        return "JJ" if nxt.isalpha() and nxt not in _DETERMINERS and word == "complex" else "NN"
    if (not prev or not prev[0].isalpha()) and nxt in _OBJECT_START:
        return "VB"  # imperative at the start of a clause: "Record the song."
    return "VBD" if past else "NN"


def _starts(tag: str, wanted: str) -> bool:
    # The original also accepts a tag that is a prefix of the wanted one (only "read": VB for VBP).
    return tag.startswith(wanted) or (len(tag) < len(wanted) and wanted.startswith(tag))


def _context_reading(words: list[str], i: int, accented: bool) -> tuple[str, ...] | None:
    """Our rules for words the original reads one way whatever the sense (see module docstring)."""
    word, prev = words[i], _previous(words, i)
    nxt = words[i + 1] if i + 1 < len(words) else ""
    verbish = guess_tag(words, i).startswith("VB")
    if word == "resume" and accented:
        return ("R", "EH1", "Z", "AH0", "M", "EY2")
    if word == "lead":
        metal = nxt in _METAL_NEIGHBOURS or (prev in ("of", "with") and not nxt.isalpha())
        return ("L", "EH1", "D") if metal and not verbish else ("L", "IY1", "D")
    if word == "live" and (prev in _LIVE_SUBJECTS or prev in _TO_MODAL or prev == "long"):
        return ("L", "IH1", "V")
    if word == "wind" and not verbish:
        return ("W", "IH1", "N", "D")
    if word in ("tear", "tears") and not (prev in _SUBJECTS or prev in _TO_MODAL):
        if word == "tears" or prev in _DETERMINERS:
            return ("T", "IH1", "R") + (("Z",) if word == "tears" else ())
    if word == "wound" and prev in _DETERMINERS:
        return ("W", "UW1", "N", "D")
    return None


def reading(words: list[str], i: int, accented: bool = False) -> tuple[str, ...] | None:
    """The homograph reading of ``words[i]`` in context, or None when it is not a homograph."""
    own = _context_reading(words, i, accented)
    if own is not None:
        return own
    entry = table().get(words[i])
    if entry is None:
        return None
    pron1, pron2, tag = entry
    return pron1 if _starts(guess_tag(words, i), tag) else pron2
