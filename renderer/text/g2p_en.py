"""English G2P: normalised text -> ARPAbet phones, the way the original GPT-SoVITS frontend reads it.

Per token (words, hyphenated words and apostrophes kept together, punctuation alone):

1. punctuation stays a phone ("'" becomes "-", marks outside the symbol table are dropped);
2. a single letter: "A" is the letter name (EY1) except as an article before a lower-case word
   (our deviation), any other letter its dictionary reading;
3. a homograph: by part of speech and context (``homographs.py``);
4. otherwise the original's lookup: the dictionary (hyphenated forms first, "twenty-four"),
   then the name list for Title-case words, then letters spelled for unknown words of up to
   three letters, then possessives ("Saoirse's" = Saoirse + Z), then a split into known words
   (``wordsegment``, as the original), and finally the neural model (``g2p_en_neural.py``).

``{PH ON ES}`` in the text (written by the user lexicon) is passed through as phones.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from renderer.text import en_dict, homographs
from renderer.text.symbols import SYMBOL_TO_ID

_TOKEN_RE = re.compile(
    r"\{[^{}]*\}"  # inline phones from the user lexicon
    r"|[^\W\d_](?:[^\W\d_]|['\-_])+[^\W\d_]"  # words with apostrophes or hyphens
    r"|\.(?:\s*\.)+"  # runs of dots (dropped: not a symbol)
    r"|\w+"
    r"|\S"
)
_LETTER_RE = re.compile("[a-z]")
_POSSESSIVE_RE = re.compile(r"[a-z]+'s")
_VOICELESS = frozenset(("P", "T", "K", "F", "TH", "HH"))
_SIBILANTS = frozenset(("S", "Z", "SH", "ZH", "CH", "JH"))
# What the original filters out of its G2P output; "…" never reaches it (its normaliser drops it).
_DROPPED = frozenset(("<pad>", "UW", "</s>", "<s>", "…"))


@functools.lru_cache(maxsize=1)
def _segmenter():  # type: ignore[no-untyped-def]
    import wordsegment  # its unigram/bigram tables ship in the wheel; loaded on the first unknown word

    wordsegment.load()
    return wordsegment.segment


def _strip_accents(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")


def _possessive(phones: tuple[str, ...]) -> tuple[str, ...]:
    last = phones[-1] if phones else ""
    if last in _VOICELESS:
        return ("S",)
    if last in _SIBILANTS:
        return ("AH0", "Z")
    return ("Z",)


@functools.lru_cache(maxsize=200_000)
def lookup(word: str, title: bool = False) -> tuple[str, ...]:
    """The original's ``qryword``: phones of one lower-case word (``title``: written Title-case)."""
    return explain(word, title)[0]


@functools.lru_cache(maxsize=200_000)
def explain(word: str, title: bool = False) -> tuple[tuple[str, ...], str]:
    """``lookup`` with where the phones came from: dictionary, names, spelled, possessive,
    compound (split into known words) or neural."""
    table = en_dict.words()
    if len(word) > 1 and word in table:
        return table[word], "dictionary"
    if title and word in en_dict.names():
        return en_dict.names()[word], "names"
    if len(word) <= 3:
        out: list[str] = []
        for ch in word:
            out += ["EY1"] if ch == "a" else [ch] if not ch.isalpha() else list(table.get(ch, ()))
        return tuple(out), "spelled"
    if _POSSESSIVE_RE.fullmatch(word):
        stem = lookup(word[:-2])
        return stem + _possessive(stem), "possessive"
    parts = _segmenter()(word)
    if len(parts) <= 1:
        from renderer.text.g2p_en_neural import predict

        return tuple("UNK" if p == "<unk>" else p for p in predict(word)), "neural"
    return tuple(p for part in parts for p in lookup(part)), "compound " + "+".join(parts)


def _letter(token: str, nxt: str) -> tuple[str, ...]:
    if token == "A":
        # The original always says the letter name; before a lower-case word it is the article.
        return ("AH0",) if nxt[:1].islower() else ("EY1",)
    return en_dict.words().get(token.lower(), ())


def _word(
    tokens: list[str], lows: list[str], i: int, lexicon: dict[str, list[str]] | None
) -> tuple[tuple[str, ...], str]:
    token, low = tokens[i], lows[i]
    if lexicon and low in lexicon:
        return tuple(lexicon[low]), "lexicon"
    if len(low) == 1:
        return _letter(token, tokens[i + 1] if i + 1 < len(tokens) else ""), "letter"
    own = homographs.reading(lows, i, accented=not token.isascii())
    if own is not None:
        return own, "homograph"
    return explain(low, title=token.istitle())


def _keep(phone: str) -> str | None:
    """The original's last filter: "'" is the pause "-", anything outside the symbol table goes."""
    if phone == "'":
        return "-"
    if phone in _DROPPED:
        return None
    return phone if phone in SYMBOL_TO_ID else None


def g2p_en_words(text: str, lexicon: dict[str, list[str]] | None = None) -> list[tuple[str, list[str], str]]:
    """Per token of normalised English text: (token, phones kept, where they came from)."""
    tokens = _TOKEN_RE.findall(text)
    lows = [_strip_accents(t).lower() for t in tokens]
    out: list[tuple[str, list[str], str]] = []
    for i, token in enumerate(tokens):
        if token.startswith("{") and token.endswith("}"):
            out.append((token, token[1:-1].split(), "lexicon"))  # the user's phones, as given
            continue
        phones: tuple[str, ...]
        if _LETTER_RE.search(lows[i]) is None:
            phones, source = (token,), "punctuation"
        else:
            phones, source = _word(tokens, lows, i, lexicon)
        out.append((token, [kept for p in phones if (kept := _keep(p)) is not None], source))
    return out


def g2p_en(text: str, lexicon: dict[str, list[str]] | None = None) -> list[str]:
    """ARPAbet phones (plus punctuation phones) for normalised English text."""
    return [p for _, phones, _ in g2p_en_words(text, lexicon) for p in phones]
