"""Split book blocks into model-sized chunks with the boundary type that follows each one.

Paragraphs are cut into sentences (aware of quotes, abbreviations, initials, decimals, ellipses
and CJK punctuation); very short sentences are merged with their neighbours and over-long ones are
cut at clause punctuation, then at spaces, then (text without spaces) at a fixed length, so every
chunk stays within the configured limits. Every speakable character of the input ends up in
exactly one chunk, in order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from renderer.errors import OptionsError
from renderer.text.langsplit import detect_language
from renderer.text.normalize import check_language, is_speakable, normalize

BERT_MAX_CHARS = 510  # BERT's 512 positions minus [CLS] and [SEP]


class Boundary(str, Enum):
    SENTENCE = "sentence"
    PARAGRAPH = "paragraph"
    HEADING = "heading"
    SCENE_BREAK = "scene_break"
    CHAPTER_END = "chapter_end"


@dataclass(frozen=True)
class Block:
    kind: str  # 'paragraph' | 'heading' | 'scene_break' (books may also send 'note': read as a paragraph)
    text: str


class BlockLike(Protocol):
    """Anything with a ``kind`` and a ``text`` (``jobs.books.Block`` fits)."""

    @property
    def kind(self) -> str: ...

    @property
    def text(self) -> str: ...


@dataclass(frozen=True)
class TextChunk:
    text: str  # original text
    normalized: str
    language: str
    boundary: Boundary
    block_index: int


@dataclass(frozen=True)
class ChunkingOptions:
    min_words: int = 8
    max_words: int = 60
    min_cjk_chars: int = 10
    max_cjk_chars: int = 80
    max_chars: int = 400  # hard cap on the original text of a chunk, whatever its script
    normalize: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.min_words <= self.max_words:
            raise OptionsError(f"need 1 <= min_words <= max_words, got {self.min_words}, {self.max_words}")
        if not 1 <= self.min_cjk_chars <= self.max_cjk_chars:
            raise OptionsError(
                f"need 1 <= min_cjk_chars <= max_cjk_chars, got {self.min_cjk_chars}, {self.max_cjk_chars}"
            )
        if not self.max_cjk_chars <= self.max_chars <= BERT_MAX_CHARS:
            raise OptionsError(f"need max_cjk_chars <= max_chars <= {BERT_MAX_CHARS}, got max_chars={self.max_chars}")


_CJK_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_WORD_RE = re.compile(r"[^\W_\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+")
_TERMINATOR_RE = re.compile(r"(\.{2,}|[.!?…]+|[。！？]+)([\"'”’»)\]」』》】]*)")
_CLAUSE_RE = re.compile(r"(?<=[,;:，、；：—–])")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr st prof jr sr capt col gen lt sgt rev hon gov sen mt ft vs e.g i.e cf viz approx dept no "
    "inc ltd co corp messrs mme mlle esq "
    "ave blvd jan feb mar apr jun jul aug sep sept oct nov dec fig vol ch pp".split()
)


def _size(text: str) -> tuple[int, int]:
    cjk = len(_CJK_RE.findall(text))
    return len(_WORD_RE.findall(text)), cjk


def _fits(text: str, o: ChunkingOptions) -> bool:
    words, cjk = _size(text)
    return len(text.strip()) <= o.max_chars and words / o.max_words + cjk / o.max_cjk_chars <= 1.0


def _is_short(text: str, o: ChunkingOptions) -> bool:
    words, cjk = _size(text)
    return words / o.min_words + cjk / o.min_cjk_chars < 1.0


def _is_boundary(text: str, m: re.Match[str]) -> bool:
    mark = m.group(1)
    if mark[0] in "。！？":
        return True
    rest = text[m.end() :]
    nxt = rest.lstrip()
    if rest and not rest[0].isspace() and not _CJK_RE.match(rest[0]):
        return False  # "3.14", "e.g.x", "word.Word" are not sentence ends
    if not nxt:
        return True
    first_alnum = re.search(r"[^\W_]", nxt)
    if first_alnum is not None and first_alnum.group().islower():
        return False  # '"Hello!" she said' and '... and then'
    if mark == ".":
        word = re.search(r"([A-Za-z.]+)$", text[: m.start()])
        token = word.group(1).lower() if word else ""
        if token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha()):
            return False  # Mr. Smith, J. R. R. Tolkien
        if re.search(r"(^|\s)[A-Z]$", text[: m.start()]):
            return False
    return True


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``; their concatenation is exactly ``text`` (spaces stay with the sentence before)."""
    out: list[str] = []
    start = 0
    for m in _TERMINATOR_RE.finditer(text):
        if not _is_boundary(text, m):
            continue
        end = m.end()
        while end < len(text) and text[end].isspace():
            end += 1
        out.append(text[start:end])
        start = end
    if start < len(text):
        out.append(text[start:])
    return [s for s in out if s]


def _split_trailing_abbreviation(text: str) -> tuple[str, str]:
    """("... met Dr. ", "") -> ("... met ", "Dr. "): a cut must not separate "Dr." from its name."""
    m = re.search(r"(\S+)\s*$", text)
    if m and m.group(1).endswith(".") and m.group(1)[:-1].lower() in _ABBREVIATIONS | {"etc"} and m.start() > 0:
        return text[: m.start()], text[m.start() :]
    return text, ""


def _hard_split(text: str, o: ChunkingOptions) -> list[str]:
    """Cut at spaces, and inside space-less runs at the longest prefix that fits."""
    pieces: list[str] = []
    cur = ""
    for tok in re.findall(r"\s*\S+\s*", text) or [text]:
        if _fits(cur + tok, o):
            cur += tok
            continue
        head, carried = _split_trailing_abbreviation(cur)
        if carried and _fits(carried + tok, o):
            pieces.append(head)
            cur = carried + tok
            continue
        if cur:
            pieces.append(cur)
            cur = ""
        while not _fits(tok, o):
            cut = _longest_fitting_prefix(tok, o)
            pieces.append(tok[:cut])
            tok = tok[cut:]
        cur = tok
    if cur:
        pieces.append(cur)
    return pieces


def _longest_fitting_prefix(tok: str, o: ChunkingOptions) -> int:
    lo, hi = 1, len(tok)
    while lo < hi:  # _fits is monotone in the prefix length
        mid = (lo + hi + 1) // 2
        if _fits(tok[:mid], o):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _split_long(sentence: str, o: ChunkingOptions) -> list[str]:
    if _fits(sentence, o):
        return [sentence]
    pieces: list[str] = []
    cur = ""
    for clause in (c for c in _CLAUSE_RE.split(sentence) if c):
        if _fits(cur + clause, o):
            cur += clause
            continue
        if cur:
            pieces.append(cur)
        if _fits(clause, o):
            cur = clause
        else:
            *head, cur = _hard_split(clause, o)
            pieces += head
    if cur:
        pieces.append(cur)
    return pieces


def _merge_short(units: list[str], o: ChunkingOptions) -> list[str]:
    merged: list[str] = []
    for unit in units:
        if merged and (not is_speakable(unit) or not is_speakable(merged[-1])):
            merged[-1] += unit  # punctuation-only pieces are never chunks of their own
        elif merged and _is_short(merged[-1], o) and _fits(merged[-1] + unit, o):
            merged[-1] += unit
        else:
            merged.append(unit)
    if len(merged) > 1 and _is_short(merged[-1], o) and _fits(merged[-2] + merged[-1], o):
        last = merged.pop()
        merged[-1] += last
    return merged


def split_block_text(text: str, o: ChunkingOptions) -> list[str]:
    """The chunks (original text, stripped) of one block."""
    units: list[str] = []
    for sentence in split_sentences(text):
        units += _split_long(sentence, o)
    return [u.strip() for u in _merge_short(units, o) if is_speakable(u)]


def chunk_blocks(blocks: Sequence[BlockLike], language: str, options: ChunkingOptions | None = None) -> list[TextChunk]:
    """Chunks of a chapter's blocks; the last chunk gets CHAPTER_END, a scene break marks the chunk before it."""
    o = options or ChunkingOptions()
    check_language(language)
    supported = {"zh", "en"} | ({"ja"} if language == "ja" or _ja_available() else set())
    chunks: list[TextChunk] = []
    for index, block in enumerate(blocks):
        if block.kind == "scene_break":
            if chunks:
                chunks[-1] = _with_boundary(chunks[-1], Boundary.SCENE_BREAK)
            continue
        heading = block.kind == "heading"
        pieces = split_block_text(block.text, o)
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            boundary = (Boundary.HEADING if heading else Boundary.PARAGRAPH) if last else Boundary.SENTENCE
            lang = detect_language(piece, language)
            if lang not in supported:
                lang = language
            norm = normalize(piece, lang, heading=heading) if o.normalize else piece
            chunks.append(TextChunk(piece, norm, lang, boundary, index))
    if chunks:
        chunks[-1] = _with_boundary(chunks[-1], Boundary.CHAPTER_END)
    return chunks


def _ja_available() -> bool:
    from renderer.text.g2p_ja import available

    return available()


def _with_boundary(chunk: TextChunk, boundary: Boundary) -> TextChunk:
    return TextChunk(chunk.text, chunk.normalized, chunk.language, boundary, chunk.block_index)
