"""Letter-to-sound rules for English words missing from the dictionary (names, coinages).

A small greedy grapheme table; good enough to make unknown words pronounceable, not perfect.
The first vowel gets primary stress, the others none.
"""

from __future__ import annotations

_VOWEL_LETTERS = set("aeiouy")
_LONG = {"a": "EY", "e": "IY", "i": "AY", "o": "OW", "u": "UW", "y": "AY"}
_SHORT = {"a": "AE", "e": "EH", "i": "IH", "o": "AA", "u": "AH", "y": "IH"}
# Longest graphemes first; each maps to phones with vowels written without stress.
_GRAPHEMES: list[tuple[str, list[str]]] = sorted(
    [
        ("tion", ["SH", "AH", "N"]),
        ("sion", ["ZH", "AH", "N"]),
        ("ture", ["CH", "ER"]),
        ("eigh", ["EY"]),
        ("augh", ["AO"]),
        ("ough", ["AO"]),
        ("igh", ["AY"]),
        ("tch", ["CH"]),
        ("sch", ["S", "K"]),
        ("ch", ["CH"]),
        ("sh", ["SH"]),
        ("th", ["TH"]),
        ("ph", ["F"]),
        ("ck", ["K"]),
        ("ng", ["NG"]),
        ("qu", ["K", "W"]),
        ("wh", ["W"]),
        ("wr", ["R"]),
        ("dg", ["JH"]),
        ("gh", ["G"]),
        ("ee", ["IY"]),
        ("ea", ["IY"]),
        ("oo", ["UW"]),
        ("ou", ["AW"]),
        ("ow", ["OW"]),
        ("oi", ["OY"]),
        ("oy", ["OY"]),
        ("ai", ["EY"]),
        ("ay", ["EY"]),
        ("au", ["AO"]),
        ("aw", ["AO"]),
        ("ei", ["EY"]),
        ("ey", ["EY"]),
        ("ie", ["IY"]),
        ("ue", ["UW"]),
        ("ew", ["UW"]),
        ("oa", ["OW"]),
        ("ar", ["AA", "R"]),
        ("or", ["AO", "R"]),
        ("er", ["ER"]),
        ("ir", ["ER"]),
        ("ur", ["ER"]),
        ("x", ["K", "S"]),
        ("j", ["JH"]),
        ("b", ["B"]),
        ("d", ["D"]),
        ("f", ["F"]),
        ("h", ["HH"]),
        ("k", ["K"]),
        ("l", ["L"]),
        ("m", ["M"]),
        ("n", ["N"]),
        ("p", ["P"]),
        ("r", ["R"]),
        ("s", ["S"]),
        ("t", ["T"]),
        ("v", ["V"]),
        ("w", ["W"]),
        ("z", ["Z"]),
    ],  # fmt: skip
    key=lambda g: -len(g[0]),
)
_VOWEL_PHONES = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}


def _single(word: str, i: int) -> tuple[list[str], int]:
    ch = word[i]
    nxt = word[i + 1] if i + 1 < len(word) else ""
    if ch == "c":
        return (["S"] if nxt in ("e", "i", "y") else ["K"]), 1
    if ch == "g":
        return (["JH"] if nxt in ("e", "i", "y") else ["G"]), 1
    if ch == "y" and i == 0:
        return ["Y"], 1
    if ch in _VOWEL_LETTERS:
        # magic e: vowel + one consonant + final e -> long vowel
        if i + 2 == len(word) - 1 and word[-1] == "e" and word[i + 1] not in _VOWEL_LETTERS:
            return [_LONG[ch]], 1
        if ch == "e" and i == len(word) - 1 and i > 1:
            return [], 1  # silent final e
        if ch == "y" and i == len(word) - 1:
            return ["IY"], 1
        return [_SHORT[ch]], 1
    return [], 1


def letters_to_sound(word: str) -> list[str]:
    """Rough ARPAbet for a lower-case word."""
    word = "".join(ch for ch in word.lower() if ch.isalpha())
    phones: list[str] = []
    i = 0
    if word[:2] in ("kn", "gn"):
        i = 1
    while i < len(word):
        for graph, out in _GRAPHEMES:
            if word.startswith(graph, i) and not (
                graph in ("er", "ar", "or", "ir", "ur") and word[i + 2 : i + 3] in _VOWEL_LETTERS and i + 2 < len(word)
            ):
                phones += out
                i += len(graph)
                break
        else:
            out, step = _single(word, i)
            phones += out
            i += step
    stressed = False
    result: list[str] = []
    for ph in phones:
        if ph in _VOWEL_PHONES:
            result.append(ph + ("0" if stressed else "1"))
            stressed = True
        else:
            result.append(ph)
    return result or ["AH0"]
