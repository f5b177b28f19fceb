"""What a listener gets besides the audio: subtitle files and the read-along EPUB, made from the chunks'
places in the exported files (see :mod:`export.cues`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from export.assemble import ChunkPlacement
from export.cues import chapter_cues
from export.readalong import ReadAlongChapter, ReadAlongSource, write_read_along
from export.subtitles import write_subtitles


@dataclass(frozen=True)
class ListenerChapter:
    """One exported chapter: its number, its own file ('' inside an M4B), where its chunks landed, its
    start in the whole-book file (if any) and an MP3 of it for the read-along EPUB (if one was asked for)."""

    number: int
    file: str
    placements: Sequence[ChunkPlacement]
    book_offset_s: float = 0.0
    mp3: Path | None = None


def write_listener_outputs(chapters: Sequence[ListenerChapter], book_file: str | None, out_dir: Path,
                           subtitles: str | None, read_along: ReadAlongSource | None) -> list[dict[str, Any]]:
    """Subtitles next to every audio file and the read-along EPUB; returns their report entries."""
    written: list[dict[str, Any]] = []
    if subtitles:
        for ch in chapters:
            if ch.file:
                path = write_subtitles(out_dir / ch.file, chapter_cues(ch.placements), subtitles)
                written.append({"name": path.name, "kind": "subtitles", "chapter": ch.number})
        if book_file:
            cues = [cue for ch in chapters for cue in chapter_cues(ch.placements, ch.book_offset_s)]
            path = write_subtitles(out_dir / book_file, cues, subtitles)
            written.append({"name": path.name, "kind": "subtitles", "chapter": None})
    if read_along is not None:
        synced = [ReadAlongChapter(ch.number, ch.mp3, ch.placements) for ch in chapters if ch.mp3 is not None]
        result = write_read_along(read_along, synced, out_dir)
        written.append({"name": result.path.name, "kind": "read-along", "synced_sentences": result.sentences,
                        "unsynced_sentences": result.unsynced, "documents_with_overlay": result.documents})
    return written
