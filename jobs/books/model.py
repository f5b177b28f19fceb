"""The book model every reader returns: blocks → chapters → book, plus the read options."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from jobs.errors import BookError

BLOCK_KINDS = ("paragraph", "heading", "scene_break", "note", "verse", "stage_direction")
CHAPTER_KINDS = ("body", "front", "back")
NOTE_MODES = ("skip", "chapter_end")
READ_OR_SKIP = ("read", "skip")

# Generous but finite: a novel's EPUB is a few MB uncompressed; 512 MB is far beyond any real book.
DEFAULT_MAX_UNCOMPRESSED_BYTES = 512 * 1024 * 1024
# Real XHTML compresses ~3-10x, a run of spaces maybe ~100x; a zip bomb reaches 1000x or more.
DEFAULT_MAX_COMPRESSION_RATIO = 200
# The text documents (XHTML, OPF, NCX) a book may expand to. The longest real books (a complete Shakespeare,
# a Bible) are ~10-15 MB of XHTML; 64 MiB leaves room for heavy markup while keeping parsing to seconds.
DEFAULT_MAX_TEXT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Block:
    """One block of readable text.

    kind: 'paragraph' | 'heading' | 'scene_break' (text is '') | 'note' (a foot/endnote read at chapter end) |
    'verse' (a stanza, or a speech in verse: its lines joined by '\\n') | 'stage_direction' (drama).
    Line breaks (``<br/>``, verse lines) are kept as '\\n' inside ``text``.
    ``synthetic`` is True for a heading the reader added (the TOC title of a chapter whose text starts
    without a heading), so the title is always spoken first; such text is not in the source file.
    ``speaker``: who speaks the block in a play (on the first block of a speech, name as printed, tidied).
    ``joined``: the block continues the speech or paragraph before it (an inline stage direction split them).
    ``ordinal``: a leading list or anecdote number taken off the text ("11", "IV", "十一"); never glued to it.
    ``marks``: indices into ``Book.toc`` of the entries that start at this block (navigation points).
    """

    kind: str
    text: str
    synthetic: bool = False
    speaker: str = ""
    joined: bool = False
    ordinal: str = ""
    marks: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in BLOCK_KINDS:
            raise ValueError(f"unknown block kind {self.kind!r}; expected one of {BLOCK_KINDS}")


@dataclass
class Chapter:
    """A chapter in reading order. Skipped chapters keep their blocks so a plan can show what was left out."""

    index: int
    title: str
    href: str
    anchor: str | None
    blocks: list[Block]
    skipped: bool = False
    skip_reason: str | None = None
    kind: str = "body"
    # Spine files (paths inside the archive) whose text this chapter covers, in order.
    files: list[str] = field(default_factory=list)
    # Why the chapter is read or skipped, in words (e.g. "dedication: the author's own text, read").
    why: str = ""

    @property
    def text(self) -> str:
        """All block text, blank-line separated (scene breaks omitted)."""
        return "\n\n".join(b.text for b in self.blocks if b.text)


@dataclass(frozen=True)
class TocEntry:
    """One table-of-contents entry, flattened in document order.

    depth: 0 for top level. href: archive path plus '#fragment' when present.
    chapter_index: the chapter that holds the entry's position (None when the target is unusable).
    is_chapter: True when the entry starts a chapter; deeper entries inside the same file become headings.
    block_index: the block of that chapter where the entry starts (a navigation point inside the chapter).
    """

    depth: int
    label: str
    href: str
    chapter_index: int | None = None
    is_chapter: bool = False
    block_index: int | None = None


@dataclass(frozen=True)
class MissingPart:
    """A spine document the book lists but that cannot be read: its text would be a silent hole."""

    href: str
    title: str
    reason: str  # 'missing file' | 'unreadable file'

    def describe(self) -> str:
        named = f" ({self.title!r})" if self.title else ""
        return f"{self.href}{named}: {self.reason}"


@dataclass
class BookMetadata:
    title: str
    author: str
    language: str
    cover: bytes | None = None
    cover_mime: str | None = None
    identifier: str | None = None


@dataclass
class Book:
    path: Path
    metadata: BookMetadata
    chapters: list[Chapter]
    warnings: list[str]
    source_hash: str
    toc: list[TocEntry] = field(default_factory=list)
    format: str = "epub"
    missing: list[MissingPart] = field(default_factory=list)
    options: ReadOptions | None = None

    @property
    def readable_chapters(self) -> list[Chapter]:
        """Chapters that are not skipped, in reading order."""
        return [c for c in self.chapters if not c.skipped]


@dataclass(frozen=True)
class ReadOptions:
    """How to read a book. Validated in ``__post_init__``: bad values raise :class:`BookError` for '<options>'.

    include_front / include_back: read front matter (cover, title page, imprint, copyright, TOC, epub:type
        frontmatter) / back matter (colophon, uncopyright, endnotes, epub:type backmatter) instead of skipping it.
    include_nonlinear: read spine items marked linear="no".
    read_notes: False/'skip' drops foot/endnotes (and their reference markers); True/'chapter_end' reads the
        notes a chapter references after its last block, as Block('note').
    image_alt: read the alt text of images as paragraphs.
    toc_depth: None = automatic (top-level TOC entries start chapters, and so do deeper entries that point at a
        different file than their parent; deeper entries inside the parent's file are sections, i.e. headings);
        N = every entry with depth < N starts a chapter.
    lenient: recover from a missing META-INF/container.xml by using the archive's single .opf file.
    allow_missing: go on when spine documents are missing or unreadable (default: stop with an error naming
        them); the parts are listed in ``Book.missing`` so the export report can fail coverage.
    max_text_bytes: the most the book's text documents may expand to (zip bombs stop here, not in memory).
    stage_directions: 'read' (as asides, with their own pause) or 'skip'.
    speaker_names: 'read' (before each speech, in the same chunk) or 'skip' (e.g. one voice per character).
    list_numbers: 'read' (a leading list/anecdote number is read as a label, then a pause) or 'skip'.
    """

    include_front: bool = False
    include_back: bool = False
    read_notes: bool | str = False
    image_alt: bool = False
    include_nonlinear: bool = False
    toc_depth: int | None = None
    lenient: bool = False
    max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED_BYTES
    max_compression_ratio: float = DEFAULT_MAX_COMPRESSION_RATIO
    allow_missing: bool = False
    max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES
    stage_directions: str = "read"
    speaker_names: str = "read"
    list_numbers: str = "read"

    def __post_init__(self) -> None:
        # The value is kept as given (False stays False, so `if options.read_notes:` means what it says).
        if not isinstance(self.read_notes, bool) and self.read_notes not in NOTE_MODES:
            raise BookError("<options>", f"read_notes must be one of {NOTE_MODES} or a bool, not {self.read_notes!r}")
        if self.toc_depth is not None and self.toc_depth < 1:
            raise BookError("<options>", f"toc_depth must be >= 1 or None, not {self.toc_depth}")
        if self.max_uncompressed_bytes <= 0 or self.max_compression_ratio <= 1 or self.max_text_bytes <= 0:
            raise BookError(
                "<options>", "max_uncompressed_bytes and max_text_bytes must be > 0 and max_compression_ratio > 1"
            )
        for name in ("stage_directions", "speaker_names", "list_numbers"):
            if getattr(self, name) not in READ_OR_SKIP:
                raise BookError("<options>", f"{name} must be one of {READ_OR_SKIP}, not {getattr(self, name)!r}")

    @property
    def notes_at_chapter_end(self) -> bool:
        return self.read_notes is True or self.read_notes == "chapter_end"

    def to_dict(self) -> dict[str, object]:
        """Plain values, e.g. for a plan's stored options; ``read_notes`` as 'skip' | 'chapter_end'."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["read_notes"] = "chapter_end" if self.notes_at_chapter_end else "skip"
        return out

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ReadOptions:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise BookError("<options>", f"unknown read options: {', '.join(unknown)}")
        return cls(**data)  # type: ignore[arg-type]
