"""Book → chapters → chunks, with the render key that decides what must be (re)rendered.

:func:`build_plan` is pure (no database): ``render plan`` prints it, ``render run`` hands it to
``store.plans.sync_plan`` (:mod:`jobs.store.plans`), which stores it idempotently.

``render_key`` = sha256 over (normalised text, language, voice id, synthesis options, engine
version). The voice id already covers the voice's file hashes. Chunk audio is stored under its
render key, so a chunk whose key did not change keeps its audio, whatever else moved in the book.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from jobs.errors import JobsError

#: Rough speaking rates used only to estimate durations before anything is rendered.
CHARS_PER_SECOND = {"zh": 4.5, "ja": 7.0, "ko": 6.0}
DEFAULT_CHARS_PER_SECOND = 14.0


class ChunkLike(Protocol):
    """What a chunker returns per chunk (``renderer.text.TextChunk``)."""

    @property
    def text(self) -> str: ...

    @property
    def normalized(self) -> str: ...

    @property
    def language(self) -> str: ...

    @property
    def block_index(self) -> int: ...

    @property
    def boundary(self) -> Any: ...


#: (blocks, default language) -> chunks
Chunker = Callable[[list[Any], str], Sequence[ChunkLike]]


@dataclass(frozen=True)
class VoiceRef:
    """The identity of the voice a book is rendered with.

    voice_id: sha256 over the voice's name, model version and file hashes; any change to the voice
    changes every render key of the book. ``voice`` is the loaded voice when one was loaded.
    """

    name: str
    voice_id: str
    voice: Any = None


@dataclass(frozen=True)
class PlannedChunk:
    idx: int
    block_index: int
    text: str
    normalized: str
    language: str
    boundary: str
    render_key: str


@dataclass(frozen=True)
class NavMark:
    """A navigation point: one TOC entry, nested ones included, and where its audio starts.

    chapter: the plan's chapter number (reading order, 1-based) holding the entry; chunk: the index (within
    that chapter) of the first chunk at or after the entry, None when the chapter is not rendered.
    M4B chapter marks go at each mark; one file per top-level chapter stays as it is.
    """

    title: str
    depth: int
    chapter: int
    chunk: int | None
    href: str

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "depth": self.depth, "chapter": self.chapter, "chunk": self.chunk,
                "href": self.href}  # fmt: skip


@dataclass(frozen=True)
class PlannedChapter:
    position: int
    number: int
    index: int
    title: str
    href: str
    anchor: str | None
    kind: str
    skipped: bool
    skip_reason: str | None
    selected: bool
    paragraphs: int
    characters: int
    chunks: tuple[PlannedChunk, ...]
    estimated_s: float
    why: str = ""


@dataclass(frozen=True)
class BookPlan:
    source_path: str
    source_hash: str
    title: str
    author: str
    language: str
    identifier: str | None
    cover: bytes | None
    cover_mime: str | None
    voice_name: str
    voice_id: str
    engine_version: str
    options: dict[str, Any]
    chapters: tuple[PlannedChapter, ...]
    warnings: tuple[str, ...] = field(default_factory=tuple)
    navigation: tuple[NavMark, ...] = field(default_factory=tuple)
    # Spine documents that could not be read (read with allow_missing): {"href", "title", "reason"}.
    missing_parts: tuple[dict[str, str], ...] = field(default_factory=tuple)

    @property
    def n_chunks(self) -> int:
        return sum(len(c.chunks) for c in self.chapters if c.selected)

    @property
    def estimated_s(self) -> float:
        return sum(c.estimated_s for c in self.chapters if c.selected)

    def meta_json(self) -> dict[str, Any]:
        """What the store keeps with the book beside its chapters: navigation marks and missing parts."""
        return {"navigation": [m.to_json() for m in self.navigation], "missing_parts": list(self.missing_parts)}

    def to_json(self, pause_after: Callable[[str], float] | None = None) -> dict[str, Any]:
        """What ``render plan --json`` prints: book metadata, one entry per chapter with its chunks (text,
        boundary and, given ``pause_after``, the pause in seconds after each), navigation marks, missing parts."""
        chapters = []
        for c in self.chapters:
            chunks = [{"idx": k.idx, "text": k.text, "boundary": k.boundary, "language": k.language}
                      | ({"pause_s": pause_after(k.boundary)} if pause_after else {}) for k in c.chunks]
            chapters.append(
                {
                    "number": c.number,
                    "index": c.index,
                    "title": c.title,
                    "href": c.href,
                    "anchor": c.anchor,
                    "kind": c.kind,
                    "skipped": c.skipped,
                    "skip_reason": c.skip_reason,
                    "why": c.why,
                    "selected": c.selected,
                    "paragraphs": c.paragraphs,
                    "chunks": len(c.chunks),
                    "characters": c.characters,
                    "estimated_seconds": round(c.estimated_s, 1),
                    "chunk_list": chunks,
                }
            )
        return {
            "book": {
                "path": self.source_path,
                "sha256": self.source_hash,
                "title": self.title,
                "author": self.author,
                "language": self.language,
                "identifier": self.identifier,
                "has_cover": self.cover is not None,
            },
            "voice": self.voice_name or None,
            "chunks": self.n_chunks,
            "characters": sum(c.characters for c in self.chapters if c.selected),
            "estimated_seconds": round(self.estimated_s, 1),
            "warnings": list(self.warnings),
            "missing_parts": list(self.missing_parts),
            "navigation": [m.to_json() for m in self.navigation],
            "chapters": chapters,
        }


def render_key(normalized: str, language: str, voice_id: str, sampling: dict[str, Any], engine_version: str) -> str:
    """Hash of everything that determines a chunk's audio (canonical JSON, so dict order is irrelevant)."""
    payload = json.dumps(
        {"text": normalized, "lang": language, "voice": voice_id, "options": sampling, "engine": engine_version},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def parse_chapter_spec(spec: str | None) -> set[int] | None:
    """``"1-3,7"`` -> {1, 2, 3, 7}; None or "" -> None (all chapters)."""
    if not spec:
        return None
    numbers: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part:
                low, high = (int(x) for x in part.split("-", 1))
                if low > high:
                    raise ValueError
                numbers.update(range(low, high + 1))
            else:
                numbers.add(int(part))
        except ValueError:
            raise JobsError(f"--chapters: cannot read {part!r}; use numbers and ranges like 1-3,7") from None
    if not numbers or min(numbers) < 1:
        raise JobsError(f"--chapters {spec!r}: chapter numbers start at 1")
    return numbers


def default_chunker(blocks: list[Any], language: str) -> Sequence[ChunkLike]:
    """Split blocks with the text frontend's sentence chunker (``renderer.text.chunk_blocks``)."""
    from renderer.text import chunk_blocks

    return chunk_blocks(blocks, language)


@dataclass(frozen=True)
class SpeechBlock:
    """A block as the chunker reads it (the shape of ``renderer.text.Block``)."""

    kind: str
    text: str
    speaker: str = ""
    joined: bool = False


_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\u3040-\u30ff]")


def _with_ordinal(block: Any, read_numbers: bool) -> str:
    """A block's text with its leading list number as a label of its own: "11. text", "十一。text"."""
    ordinal = getattr(block, "ordinal", "")
    if not ordinal or not read_numbers:
        return block.text
    cjk = bool(_CJK.search(block.text[:20]))
    return f"{ordinal}。{block.text}" if cjk else f"{ordinal}. {block.text}"


def chapter_blocks(chapter: Any, options: Any = None) -> tuple[list[SpeechBlock], list[int]]:
    """The chunker's blocks of a chapter and, for each, the index of the book block it came from.

    Notes read at chapter end are spoken as paragraphs; speaker names and list numbers follow the book's
    read options (``speaker_names``, ``list_numbers``: 'read' or 'skip').
    """
    read_names = getattr(options, "speaker_names", "read") == "read"
    read_numbers = getattr(options, "list_numbers", "read") == "read"
    out: list[SpeechBlock] = []
    source: list[int] = []
    for i, block in enumerate(chapter.blocks):
        kind = "paragraph" if block.kind == "note" else block.kind
        text = _with_ordinal(block, read_numbers)
        if kind != "scene_break" and not text.strip():
            continue
        speaker = getattr(block, "speaker", "") if read_names else ""
        out.append(SpeechBlock(kind, text, speaker, bool(getattr(block, "joined", False))))
        source.append(i)
    return out, source


def estimate_seconds(text: str, language: str) -> float:
    return len(text) / CHARS_PER_SECOND.get(language.split("-")[0], DEFAULT_CHARS_PER_SECOND)


def _boundary_value(boundary: Any) -> str:
    return str(getattr(boundary, "value", boundary))


def first_chunk_at(chunks: Sequence[PlannedChunk], block: int) -> int | None:
    """Index of the first chunk made from chunker block ``block`` or a later one (None when there is none)."""
    return next((c.idx for c in chunks if c.block_index >= block), None)


def plan_chapter(
    chapter: Any,
    position: int,
    language: str,
    voice: VoiceRef,
    sampling: dict[str, Any],
    engine_version: str,
    chunker: Chunker,
    selected: set[int] | None,
    options: Any = None,
    lexicon: Any = None,
) -> PlannedChapter:
    number = position + 1
    blocks = [] if chapter.skipped else chapter_blocks(chapter, options)[0]
    chunks: list[PlannedChunk] = []
    if blocks and any(b.kind != "scene_break" for b in blocks):
        for i, piece in enumerate(chunker(blocks, language)):
            # The user lexicon rewrites the normalised text of the chunks it touches (and only those),
            # so their render keys change and nothing else re-renders.
            normalized = _with_lexicon(lexicon, piece)
            key = render_key(normalized, piece.language, voice.voice_id, sampling, engine_version)
            chunks.append(
                PlannedChunk(
                    idx=i,
                    block_index=piece.block_index,
                    text=piece.text,
                    normalized=normalized,
                    language=piece.language,
                    boundary=_boundary_value(piece.boundary),
                    render_key=key,
                )
            )
    counted = [(b.kind, b.text) for b in blocks] if blocks else [(b.kind, b.text) for b in chapter.blocks]
    characters = sum(len(text) for _, text in counted)
    estimated = sum(estimate_seconds(c.text, c.language) for c in chunks)
    return PlannedChapter(
        position=position,
        number=number,
        index=int(chapter.index),
        title=chapter.title or f"Chapter {number}",
        href=chapter.href or "",
        anchor=chapter.anchor,
        kind=getattr(chapter, "kind", "body"),
        skipped=bool(chapter.skipped),
        skip_reason=chapter.skip_reason,
        selected=(not chapter.skipped) and (selected is None or number in selected),
        paragraphs=sum(1 for kind, _ in counted if kind in ("paragraph", "verse")),
        characters=characters,
        chunks=tuple(chunks),
        estimated_s=estimated,
        why=getattr(chapter, "why", "") or "",
    )


def _with_lexicon(lexicon: Any, piece: ChunkLike) -> str:
    if lexicon is None or not (lexicon.matches(piece.text) or lexicon.matches(piece.normalized)):
        return piece.normalized
    from renderer.text.frontend import apply_lexicon

    heading = _boundary_value(piece.boundary) == "heading"
    return apply_lexicon(lexicon, piece.text, piece.language, heading=heading)


def unspoken_blocks(book: Any) -> list[str]:
    """Notices for paragraphs with text but nothing to speak (only emoji or symbols): they are skipped."""
    from renderer.text.normalize import is_speakable

    notices = []
    for pos, chapter in enumerate(book.chapters):
        if chapter.skipped:
            continue
        blocks, _ = chapter_blocks(chapter, getattr(book, "options", None))
        for k, (kind, text) in enumerate(((b.kind, b.text) for b in blocks), 1):
            if kind != "scene_break" and text.strip() and not is_speakable(text):
                shown = text.strip() if len(text.strip()) <= 24 else text.strip()[:24] + "…"
                what = f"chapter {pos + 1}, {kind} {k}"
                notices.append(f"{what}: nothing to speak in {shown!r} (emoji/symbols only), skipped")
    return notices


def navigation_marks(book: Any, planned: Sequence[PlannedChapter]) -> tuple[NavMark, ...]:
    """One mark per TOC entry, in order: the chapter that holds it and the first chunk at or after it."""
    options = getattr(book, "options", None)
    marks: list[NavMark] = []
    for entry in getattr(book, "toc", []):
        index = entry.chapter_index
        if index is None or not 0 <= index < len(planned):
            continue
        chapter, plan = book.chapters[index], planned[index]
        chunk = None
        if plan.selected and plan.chunks:
            _, source = chapter_blocks(chapter, options)
            wanted = getattr(entry, "block_index", None) or 0
            first = next((k for k, i in enumerate(source) if i >= wanted), None)
            chunk = first_chunk_at(plan.chunks, first) if first is not None else None
        marks.append(NavMark(entry.label or plan.title, entry.depth, plan.number, chunk, entry.href))
    return tuple(marks)


def build_plan(
    book: Any,
    voice: VoiceRef,
    sampling: dict[str, Any],
    engine_version: str,
    *,
    chunker: Chunker | None = None,
    chapters: set[int] | None = None,
    extra_options: dict[str, Any] | None = None,
    lexicon: Any = None,
) -> BookPlan:
    """Plan a book read by :func:`jobs.books.read_book` (pure; nothing is stored).

    ``chapters``: 1-based chapter numbers (reading order, as ``render plan`` prints them) to render;
    None = every chapter that is not skipped.
    """
    chunker = chunker or default_chunker
    meta = book.metadata
    language = meta.language or "en"
    # The text frontend speaks base languages ('en', 'zh'); EPUBs carry tags such as 'en-GB', 'zh-Hans-CN'.
    base_language = language.replace("_", "-").split("-")[0].lower() or "en"
    read_options = getattr(book, "options", None)
    planned = tuple(
        plan_chapter(ch, pos, base_language, voice, sampling, engine_version, chunker, chapters, read_options, lexicon)
        for pos, ch in enumerate(book.chapters)
    )
    if chapters is not None:
        unknown = sorted(n for n in chapters if n > len(planned))
        if unknown:
            raise JobsError(f"--chapters: the book has {len(planned)} chapters, no chapter {unknown[0]}")
    options = {"sampling": dict(sampling), **(extra_options or {})}
    return BookPlan(
        source_path=str(Path(book.path).resolve()),
        source_hash=book.source_hash,
        title=meta.title or Path(book.path).stem,
        author=meta.author or "",
        language=language,
        identifier=meta.identifier,
        cover=meta.cover,
        cover_mime=meta.cover_mime,
        voice_name=voice.name,
        voice_id=voice.voice_id,
        engine_version=engine_version,
        options=options,
        chapters=planned,
        warnings=tuple(book.warnings) + tuple(unspoken_blocks(book)),
        navigation=navigation_marks(book, planned),
        missing_parts=tuple(
            {"href": m.href, "title": m.title, "reason": m.reason} for m in getattr(book, "missing", [])
        ),
    )


def plan_summary(plan: BookPlan) -> dict[str, Any]:
    """Small dict used in logs and tests."""
    return {k: v for k, v in asdict(plan).items() if k not in ("chapters", "cover", "navigation")}
