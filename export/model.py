"""Inputs of the export stage: chunk audio files grouped into chapters, and book metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from export.errors import ExportError

BOUNDARIES = ("sentence", "paragraph", "heading", "scene_break", "chapter_end",
              "clause", "verse_line", "stanza", "speaker", "stage_direction", "aside")


@dataclass(frozen=True)
class ChunkAudio:
    """One rendered chunk. ``boundary`` is the boundary AFTER this chunk (it picks the pause that follows)."""

    path: Path
    boundary: str
    text: str
    key: str
    n_phones: int = 0
    n_tokens: int = 0
    duration_s: float = 0.0  # rendered length when known (sizes the disk-space estimate), else 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        boundary = getattr(self.boundary, "value", self.boundary)  # accept renderer.text.Boundary members
        object.__setattr__(self, "boundary", str(boundary))
        if self.boundary not in BOUNDARIES:
            raise ExportError(f"chunk {self.key!r}: unknown boundary {self.boundary!r} (expected one of {BOUNDARIES})")
        if self.n_phones < 0 or self.n_tokens < 0:
            raise ExportError(f"chunk {self.key!r}: n_phones and n_tokens must be >= 0")


@dataclass(frozen=True)
class NavMark:
    """A navigation point inside a chapter (a TOC entry, nested ones included): where an M4B chapter mark goes.

    chunk: index into the chapter's ``chunks`` of the first chunk at the mark; depth: 0 for top-level entries.
    """

    title: str
    depth: int
    chunk: int


@dataclass(frozen=True)
class ChapterManifest:
    """One chapter to export. ``index`` is the plan's chapter number: it names the file ("07 - Title.mp3")
    and its track number, whichever other chapters are exported with it. ``marks``: navigation points
    inside the chapter (none: the chapter itself is the only mark)."""

    index: int
    title: str
    chunks: list[ChunkAudio] = field(default_factory=list)
    marks: list[NavMark] = field(default_factory=list)  # in chunk order

    def __post_init__(self) -> None:
        if not self.chunks:
            raise ExportError(f"chapter {self.index} ({self.title!r}) has no chunks")
        if self.index < 1:
            raise ExportError(f"chapter {self.title!r}: chapter numbers start at 1, got {self.index}")
        for mark in self.marks:
            if not 0 <= mark.chunk < len(self.chunks):
                raise ExportError(f"chapter {self.index}: mark {mark.title!r} points at chunk {mark.chunk}, "
                                  f"but the chapter has {len(self.chunks)} chunks")


@dataclass(frozen=True)
class BookInfo:
    """Book metadata for tags. ``narrator`` is the voice's name; ``year``/``description``/``publisher``
    come from the OPF when the book has them. ``chapter_count``: chapters in the plan (the N of track
    n/N and the width of file numbers); 0 = the highest exported chapter number."""

    title: str
    author: str
    language: str
    cover: bytes | None = None
    cover_mime: str | None = None
    narrator: str = ""
    year: str = ""
    description: str = ""
    publisher: str = ""
    chapter_count: int = 0
    # Parts of the book that could not be read (e.g. "text/ch5.xhtml ('Chapter 5'): missing file"): the
    # export report fails coverage and names them.
    missing_parts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.cover is not None and self.cover_mime is None:
            object.__setattr__(self, "cover_mime", guess_image_mime(self.cover))
        if self.chapter_count < 0:
            raise ExportError(f"chapter_count must be >= 0, got {self.chapter_count}")


def guess_image_mime(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"GIF8"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "image/jpeg"
