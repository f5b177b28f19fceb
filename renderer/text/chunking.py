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
    """What follows a chunk; it chooses the pause the export stage puts after the chunk's speech."""

    SENTENCE = "sentence"
    CLAUSE = "clause"  # a long sentence cut at a clause boundary (or, failing one, at a space)
    PARAGRAPH = "paragraph"
    HEADING = "heading"
    SCENE_BREAK = "scene_break"
    CHAPTER_END = "chapter_end"
    VERSE_LINE = "verse_line"  # the end of a verse line inside a stanza
    STANZA = "stanza"  # the end of a stanza followed by another
    SPEAKER = "speaker"  # the end of a speech in a play, before the next speaker or stage direction
    STAGE_DIRECTION = "stage_direction"  # after a stage direction of its own
    ASIDE = "aside"  # around a stage direction inside a speech


@dataclass(frozen=True)
class Block:
    """One block of a chapter.

    kind: 'paragraph' | 'heading' | 'scene_break' | 'verse' (lines joined by '\\n') | 'stage_direction'
    (books may also send 'note': read as a paragraph). Any block's '\\n' is a line end: a short pause.
    speaker: read before the block's first chunk, in the same chunk ("Bernardo: Who's there?").
    joined: the block continues the speech before it (an inline stage direction split them).
    """

    kind: str
    text: str
    speaker: str = ""
    joined: bool = False


class BlockLike(Protocol):
    """Anything with a ``kind`` and a ``text`` (``jobs.books.Block`` fits); ``speaker``/``joined`` are optional."""

    @property
    def kind(self) -> str: ...

    @property
    def text(self) -> str: ...


@dataclass(frozen=True)
class TextChunk:
    text: str  # original text (a speaker's name first when one is read)
    normalized: str
    language: str
    boundary: Boundary
    block_index: int


LONG_SENTENCE_STRATEGIES = ("clause", "fill")


@dataclass(frozen=True)
class ChunkingOptions:
    """Chunk sizes and how long sentences are cut.

    long_sentences: 'clause' cuts a sentence over the limits at its best clause boundary (semicolon, colon,
    dash, a comma before a conjunction, then any comma, then a space), keeping pieces balanced; 'fill' packs
    each chunk as full as it goes, cutting at the last comma that fits (the older strategy, fewer chunks).
    """

    min_words: int = 8
    max_words: int = 60
    min_cjk_chars: int = 10
    max_cjk_chars: int = 80
    max_chars: int = 400  # hard cap on the original text of a chunk, whatever its script
    normalize: bool = True
    long_sentences: str = "clause"

    def __post_init__(self) -> None:
        if not 1 <= self.min_words <= self.max_words:
            raise OptionsError(f"need 1 <= min_words <= max_words, got {self.min_words}, {self.max_words}")
        if not 1 <= self.min_cjk_chars <= self.max_cjk_chars:
            raise OptionsError(
                f"need 1 <= min_cjk_chars <= max_cjk_chars, got {self.min_cjk_chars}, {self.max_cjk_chars}"
            )
        if not self.max_cjk_chars <= self.max_chars <= BERT_MAX_CHARS:
            raise OptionsError(f"need max_cjk_chars <= max_chars <= {BERT_MAX_CHARS}, got max_chars={self.max_chars}")
        if self.long_sentences not in LONG_SENTENCE_STRATEGIES:
            raise OptionsError(f"long_sentences must be one of {LONG_SENTENCE_STRATEGIES}, not {self.long_sentences!r}")


_CJK_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_WORD_RE = re.compile(r"[^\W_\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+")
_TERMINATOR_RE = re.compile(r"(\.{2,}|[.!?…]+|[。！？]+)([\"'”’»)\]」』》】]*)")
_CLAUSE_RE = re.compile(r"(?<=[,;:，、；：—–])")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr st prof jr sr capt col gen lt sgt rev hon gov sen mt ft vs e.g i.e cf viz approx dept no "
    "inc ltd co corp messrs mme mlle esq "
    "ave blvd jan feb mar apr jun jul aug sep sept oct nov dec fig vol ch pp "
    "wm chas thos jas geo benj robt saml jno edw richd".split()  # 19th-century abbreviated first names
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


def _fill_split(sentence: str, o: ChunkingOptions) -> list[str]:
    """The 'fill' strategy: pack each piece as full as it goes, cutting at any clause punctuation."""
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


# Where a long sentence is best cut, strongest first: after ; or : (a full clause ends), after a dash, after a
# comma that a conjunction or relative word follows, after any other comma. CJK: ；： then ， then 、.
CONJUNCTIONS = frozenset(
    "and but or nor for yet so which who whom whose where when while whilst because although though if unless "
    "until that as since after before whereas lest than whether".split()
)
_CUT_RE = re.compile(r"(?:[;；:：]|——|—|–|\s-\s|[,，、])[\"'”’»)\]」』》】]*\s*")
_FIRST_WORD_RE = re.compile(r"\W*([A-Za-z]+)")


def _cut_rank(sentence: str, m: re.Match[str]) -> int:
    mark = m.group().strip()[:1]
    if mark in ";；":
        return 5
    if mark in ":：":
        # "3:15" and "Note:x" are not clause ends: a colon cuts only before a space or CJK text
        nxt = sentence[m.end() - len(m.group()) + 1 : m.end() - len(m.group()) + 2]
        return 5 if not nxt or nxt.isspace() or _CJK_RE.match(nxt) else 0
    if mark in "—–-":
        return 4
    if mark == "，":
        return 4
    if mark == ",":
        word = _FIRST_WORD_RE.match(sentence[m.end() :])
        return 3 if word and word.group(1).lower() in CONJUNCTIONS else 2
    return 1  # 、 (a list separator)


def _is_tiny(text: str, o: ChunkingOptions) -> bool:
    words, cjk = _size(text)
    return 2 * words / o.min_words + 2 * cjk / o.min_cjk_chars < 1.0


def _weight(text: str, o: ChunkingOptions) -> float:
    words, cjk = _size(text)
    return words / o.max_words + cjk / o.max_cjk_chars


def _best_cut(sentence: str, o: ChunkingOptions) -> int | None:
    """Cut position at the strongest clause boundary, preferring balanced halves and never a tiny piece."""
    total = _weight(sentence, o) or 1.0
    best: tuple[float, int] | None = None
    for m in _CUT_RE.finditer(sentence):
        rank, at = _cut_rank(sentence, m), m.end()
        if rank == 0 or at >= len(sentence) or not is_speakable(sentence[at:]):
            continue
        left, right = _weight(sentence[:at], o), _weight(sentence[at:], o)
        if _is_tiny(sentence[:at], o) or _is_tiny(sentence[at:], o):
            rank -= 2  # a piece of a few words would be a chunk of its own: only if nothing better exists
        balance = 1.0 - abs(left - right) / total
        score = rank + 0.9 * balance
        if best is None or score > best[0]:
            best = (score, at)
    return None if best is None else best[1]


def _clause_split(sentence: str, o: ChunkingOptions) -> list[str]:
    """The 'clause' strategy: cut recursively at the best clause boundary until every piece fits."""
    if _fits(sentence, o):
        return [sentence]
    at = _best_cut(sentence, o)
    if at is None:
        return _hard_split(sentence, o)
    return _clause_split(sentence[:at], o) + _clause_split(sentence[at:], o)


@dataclass
class _Unit:
    """A piece of a block on its way to becoming a chunk; ``end`` says how it ends: sentence, clause or line."""

    text: str
    end: str


def _merge_short(units: list[_Unit], o: ChunkingOptions) -> list[_Unit]:
    merged: list[_Unit] = []
    for unit in units:
        if merged and (not is_speakable(unit.text) or not is_speakable(merged[-1].text)):
            merged[-1] = _Unit(merged[-1].text + unit.text, unit.end)  # punctuation-only pieces join a neighbour
        elif merged and _is_short(merged[-1].text, o) and _fits(merged[-1].text + unit.text, o):
            merged[-1] = _Unit(merged[-1].text + unit.text, unit.end)
        else:
            merged.append(unit)
    if len(merged) > 1 and _is_short(merged[-1].text, o) and _fits(merged[-2].text + merged[-1].text, o):
        last = merged.pop()
        merged[-1] = _Unit(merged[-1].text + last.text, last.end)
    return merged


def _prose_units(text: str, o: ChunkingOptions) -> list[_Unit]:
    split = _clause_split if o.long_sentences == "clause" else _fill_split
    units: list[_Unit] = []
    for sentence in split_sentences(text):
        parts = split(sentence, o)
        units += [_Unit(p, "sentence" if i == len(parts) - 1 else "clause") for i, p in enumerate(parts)]
    return _merge_short(units, o)


_SENTENCE_END_RE = re.compile(r"[.!?…。！？][\"'”’»)\]」』》】]*\s*$")


def _verse_units(text: str, o: ChunkingOptions) -> list[_Unit]:
    """Whole lines per chunk: lines gather until a sentence ends after enough words or the next would not fit."""
    units: list[_Unit] = []
    group: list[str] = []

    def flush() -> None:
        if group:
            units.append(_Unit("\n".join(group), "line"))
            group.clear()

    for line in (ln.strip() for ln in text.split("\n")):
        if not line:
            continue
        if not _fits(line, o):  # a prose paragraph with a <br/>: split the long line like prose
            flush()
            pieces = _prose_units(line, o)
            units += pieces[:-1] + [_Unit(pieces[-1].text, "line")] if pieces else []
            continue
        if group and not _fits("\n".join([*group, line]), o):
            flush()
        group.append(line)
        if _SENTENCE_END_RE.search(line) and not _is_short(" ".join(group), o):
            flush()
    flush()
    return units


def split_block_text(text: str, o: ChunkingOptions) -> list[str]:
    """The chunks (original text, stripped) of one block (lines, when it has any, end chunks only at line ends)."""
    units = _verse_units(text, o) if "\n" in text.strip() else _prose_units(text, o)
    return [u.text.strip() for u in units if is_speakable(u.text)]


_LINE_END_PUNCT_RE = re.compile(r"[,.;:!?…—–\-，。；：！？、][\"'”’»)\]」』》】]*$")
_LONG_DASH_RE = re.compile("[⸺⸻]+")


def speech_text(text: str) -> str:
    """What is normalised for speech: a line end without punctuation becomes a comma (a short pause, not a
    run-on), the two- and three-em dashes of withheld names ("To the River ⸻") a plain dash."""
    text = _LONG_DASH_RE.sub("—", text)
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    out = ""
    for i, line in enumerate(lines):
        out += line
        if i < len(lines) - 1:
            out += " " if _LINE_END_PUNCT_RE.search(line) else ", "
    return out


def _block_units(block: BlockLike, o: ChunkingOptions) -> list[_Unit]:
    text = block.text
    lined = block.kind == "verse" or "\n" in text.strip()
    units = _verse_units(text, o) if lined else _prose_units(text, o)
    units = [_Unit(u.text.strip(), u.end) for u in units if is_speakable(u.text)]
    speaker = getattr(block, "speaker", "")
    if speaker and units:
        prefix = f"{speaker}: "
        first = units[0]
        if not _fits(prefix + first.text, o):  # make room for the name: cut the first piece once more
            tighter = ChunkingOptions(
                o.min_words, max(o.min_words, o.max_words - len(speaker.split()) - 1), o.min_cjk_chars,
                max(o.min_cjk_chars, o.max_cjk_chars - len(_CJK_RE.findall(speaker)) - 1),
                max(o.max_cjk_chars, o.max_chars - len(prefix)), o.normalize, o.long_sentences,
            )  # fmt: skip
            pieces = _clause_split(first.text, tighter) if "\n" not in first.text else [first.text]
            units[:1] = [_Unit(p.strip(), "clause") for p in pieces[:-1]] + [_Unit(pieces[-1].strip(), first.end)]
        units[0] = _Unit(prefix + units[0].text, units[0].end)
    return units


_END_BOUNDARY = {"sentence": Boundary.SENTENCE, "clause": Boundary.CLAUSE, "line": Boundary.VERSE_LINE}


def _is_speech(block: BlockLike) -> bool:
    return bool(getattr(block, "speaker", "")) or bool(getattr(block, "joined", False))


def _block_end(block: BlockLike, nxt: BlockLike | None) -> Boundary:
    """The boundary after a block's last chunk, from what the block is and what follows it."""
    kind = block.kind
    if kind == "heading":
        return Boundary.HEADING
    if nxt is None:
        return Boundary.PARAGRAPH
    if getattr(nxt, "joined", False):  # the same speech goes on
        if "stage_direction" in (kind, nxt.kind):
            return Boundary.ASIDE
        return Boundary.STANZA if kind == nxt.kind == "verse" else Boundary.PARAGRAPH
    if kind == "stage_direction":
        return Boundary.STAGE_DIRECTION
    if _is_speech(block) and (bool(getattr(nxt, "speaker", "")) or nxt.kind == "stage_direction"):
        return Boundary.SPEAKER
    if kind == "verse" and nxt.kind == "verse" and not getattr(nxt, "speaker", ""):
        return Boundary.STANZA
    return Boundary.PARAGRAPH


def chunk_blocks(blocks: Sequence[BlockLike], language: str, options: ChunkingOptions | None = None) -> list[TextChunk]:
    """Chunks of a chapter's blocks; the last chunk gets CHAPTER_END, a scene break marks the chunk before it."""
    o = options or ChunkingOptions()
    check_language(language)
    supported = {"zh", "en"} | ({"ja"} if language == "ja" or _ja_available() else set())
    chunks: list[TextChunk] = []
    spoken = [i for i, b in enumerate(blocks) if b.kind != "scene_break"]
    for index, block in enumerate(blocks):
        if block.kind == "scene_break":
            if chunks:
                chunks[-1] = _with_boundary(chunks[-1], Boundary.SCENE_BREAK)
            continue
        heading = block.kind == "heading"
        later = [i for i in spoken if i > index]
        nxt = blocks[later[0]] if later else None
        units = _block_units(block, o)
        for i, unit in enumerate(units):
            boundary = _block_end(block, nxt) if i == len(units) - 1 else _END_BOUNDARY[unit.end]
            lang = detect_language(unit.text, language)
            if lang not in supported:
                lang = language
            norm = normalize(speech_text(unit.text), lang, heading=heading) if o.normalize else unit.text
            chunks.append(TextChunk(unit.text, norm, lang, boundary, index))
    if chunks:
        chunks[-1] = _with_boundary(chunks[-1], Boundary.CHAPTER_END)
    return chunks


def starts_mid_clause(previous: str, current: str) -> bool:
    """Whether a chunk that follows ``previous`` inside the same paragraph starts in the middle of a clause.

    Not mid-clause: after a sentence end, after ; : or a dash, after a CJK comma, or after a comma when the
    chunk opens with a conjunction or relative word. Any other cut (a plain comma, a space) is mid-clause.
    """
    prev = previous.rstrip()
    if re.search(r"(?:[.!?…。！？]+|[;:；：—–])[\"'”’»)\]」』》】]*$", prev):
        return False
    if prev.endswith("，"):
        return False
    if prev.endswith(","):
        word = _FIRST_WORD_RE.match(current)
        return not (word and word.group(1).lower() in CONJUNCTIONS)
    return True


def _ja_available() -> bool:
    from renderer.text.g2p_ja import available

    return available()


def _with_boundary(chunk: TextChunk, boundary: Boundary) -> TextChunk:
    return TextChunk(chunk.text, chunk.normalized, chunk.language, boundary, chunk.block_index)
