"""Sentence cues: where each sentence of a chapter is heard, from the chunks' places in the chapter file.

A chunk is one or more sentences (the chunker merges short ones). Its speech interval is known exactly;
inside a chunk holding several sentences the interval is shared out in proportion to each sentence's
spoken weight (letters and digits; a CJK character counts as a syllable, about three Latin letters), an
estimate, since the engine gives no word timings. Subtitles and the read-along EPUB both use these cues.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from export.assemble import ChunkPlacement

# A sentence ends at . ! ? … (then optional closing quotes/brackets) before a space, or at CJK 。！？.
_LATIN_END = re.compile(r"[.!?…]+[\"'”’»)\]]*(?=\s)")
_CJK_END = re.compile(r"[。！？]+[”’」』）)]*")
_ABBREVIATIONS = frozenset("mr mrs ms dr st prof jr sr capt col gen lt sgt rev hon gov mt ft vs e.g i.e cf no "
                           "inc ltd co etc fig vol ch pp".split())
_CJK_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2FA1F))
_SYLLABIC_RANGES = ((0x3040, 0x30FF), (0xAC00, 0xD7AF))  # kana, hangul
_SENTENCE_BASE_WEIGHT = 2.0  # every sentence costs a little time of its own (its closing pause)
MIN_CUE_S = 0.05


@dataclass(frozen=True)
class Cue:
    """One sentence heard from ``start_s`` to ``end_s`` (seconds in the file it belongs to).

    ``chunk``: index of its chunk in the chapter; ``part``: its place among that chunk's sentences."""

    text: str
    start_s: float
    end_s: float
    chunk: int
    part: int = 0


def _goes_on(text: str, m: re.Match[str]) -> bool:
    """'Dr. Marsh', 'J. R. Tolkien', '"No!" she said': a mark that does not end the sentence."""
    following = re.search(r"[^\W_]", text[m.end():])
    if following is not None and following.group().islower():
        return True  # '"Hello!" she said', '... and then': the sentence goes on
    if not m.group().startswith(".") or m.group().startswith(".."):
        return False
    word = re.search(r"([A-Za-z.]+)$", text[: m.start()])
    token = word.group(1).lower() if word else ""
    return token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha())


def split_sentences(text: str) -> list[str]:
    """The sentences of a chunk's text (stripped, in order, together holding all of its words)."""
    cuts = {m.end() for m in _CJK_END.finditer(text)}
    cuts |= {m.end() for m in _LATIN_END.finditer(text) if not _goes_on(text, m)}
    pieces, start = [], 0
    for cut in sorted(cuts):
        pieces.append(text[start:cut])
        start = cut
    pieces.append(text[start:])
    sentences: list[str] = []
    for piece in (p.strip() for p in pieces):
        if not piece:
            continue
        if sentences and not any(ch.isalnum() for ch in piece):
            sentences[-1] += piece  # punctuation alone belongs to the sentence before
        else:
            sentences.append(piece)
    return sentences


def spoken_weight(text: str) -> float:
    weight = 0.0
    for ch in text:
        code = ord(ch)
        if any(lo <= code <= hi for lo, hi in _CJK_RANGES):
            weight += 3.0
        elif any(lo <= code <= hi for lo, hi in _SYLLABIC_RANGES):
            weight += 2.0
        elif unicodedata.category(ch)[0] in "LN":
            weight += 1.0
    return weight


def chunk_cues(placement: ChunkPlacement, chunk: int, offset_s: float = 0.0) -> list[Cue]:
    """The sentences of one placed chunk with their share of its speech interval."""
    start, end = offset_s + placement.start_s, offset_s + placement.end_s
    sentences = split_sentences(placement.text)
    if placement.silent or end - start < MIN_CUE_S or not sentences:
        return []
    weights = [spoken_weight(s) + _SENTENCE_BASE_WEIGHT for s in sentences]
    total, cues, at = sum(weights), [], start
    for part, (sentence, weight) in enumerate(zip(sentences, weights, strict=True)):
        stop = end if part == len(sentences) - 1 else at + (end - start) * weight / total
        cues.append(Cue(sentence, at, stop, chunk, part))
        at = stop
    return cues


def chapter_cues(placements: Sequence[ChunkPlacement], offset_s: float = 0.0) -> list[Cue]:
    """Every sentence of a chapter in order; ``offset_s`` places the chapter inside a whole-book file."""
    return [cue for i, p in enumerate(placements) for cue in chunk_cues(p, i, offset_s)]
