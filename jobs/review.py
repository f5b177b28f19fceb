"""``render review``: the doubtful chunks of a book, from the store, as ``export.review``'s page.

Where each chunk sits in its chapter file comes from the last export's ``report.json`` (chunk intervals by
chunk key); before an export the page says "not exported yet". The commands on the page are complete:
the same book argument and store options the user gave, so they can be pasted as they are.
"""

from __future__ import annotations

import json
import logging
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from export.review import ReviewChunk, ReviewPage, ReviewTake, write_review
from jobs.store import Store

__all__ = ["REVIEW_FILENAME", "chunk_report_key", "review_page", "take_command", "write_book_review"]

log = logging.getLogger(__name__)

#: The review page's name in the output folder.
REVIEW_FILENAME = "review.html"
#: Shown on the page of a book in a shared (PostgreSQL) store.
SHARED_STORE_NOTE = "The commands find the shared job store through RENDER_DB: set it to your --db URL first."


def chunk_report_key(chapter_number: int, idx: int, render_key: str) -> str:
    """The key a chunk has in the export report (unique even for repeated text)."""
    return f"{chapter_number}.{idx}:{render_key[:16]}"


def take_command(book: str, out_dir: Path | None, db_url: str | None, audio_dir: Path | None) -> list[str]:
    """``render take BOOK`` with the options that find the same store: ``--out`` (or a SQLite ``--db``) for
    an embedded store; for a shared one only ``--audio-dir``: its URL may hold a password, so it is not
    written into the page (the commands read it from ``RENDER_DB``; see :data:`SHARED_STORE_NOTE`)."""
    command = ["render", "take", book]
    if db_url is None:
        if out_dir is not None:
            command += ["--out", str(out_dir)]
    elif db_url.startswith("sqlite"):
        command += ["--db", db_url]
    if audio_dir is not None:
        command += ["--audio-dir", str(audio_dir)]
    return command


def review_page(store: Store, book_id: int, audio_root: Path, out_dir: Path, command: Sequence[str],
                notes: Sequence[str] = ()) -> ReviewPage:
    """The page's data. ``command``: ``render take BOOK`` plus the store options, to which the chunk and the
    action are appended."""
    book = store.status.book(book_id)
    counts = store.takes.counts(book_id)
    places = _export_places(Path(out_dir))
    chunks = []
    for chunk in store.takes.doubtful(book_id):
        base = [*command[:3], str(chunk.id), *command[3:]]
        takes = tuple(
            ReviewTake(number=t.take, seed=t.seed, score=t.score, reasons=t.reasons,
                       audio=None if t.audio_path is None else Path(audio_root) / t.audio_path,
                       kept=t.take == chunk.take, use_command=shlex.join([*base, "--use", str(t.take)]))
            for t in chunk.takes)
        kept_score = next((t.score for t in chunk.takes if t.take == chunk.take), 0.0)
        place = places.get(chunk_report_key(chunk.chapter_number, chunk.idx, chunk.render_key))
        chunks.append(ReviewChunk(
            chunk_id=chunk.id, chapter_number=chunk.chapter_number, chapter_title=chunk.chapter_title,
            text=chunk.text, score=kept_score, takes=takes,
            reroll_command=shlex.join([*base, "--reroll"]), accept_command=shlex.join([*base, "--accept"]),
            chapter_file=None if place is None else place[0], start_s=None if place is None else place[1]))
    total = sum(store.status.counts(book_id).values())
    return ReviewPage(book_title=book.title, author=book.author, chunks=tuple(chunks),
                      counts={"chunks": total, **counts.to_dict()}, notes=tuple(notes))


def write_book_review(store: Store, book_id: int, audio_root: Path, out_dir: Path, command: Sequence[str], *,
                      embed_audio: bool = False, notes: Sequence[str] = ()) -> Path:
    """Write ``<out_dir>/review.html`` and return its path (with a shared store, a note on finding it)."""
    notes = tuple(notes) + (() if store.db.is_sqlite else (SHARED_STORE_NOTE,))
    page = review_page(store, book_id, audio_root, out_dir, command, notes)
    return write_review(page, Path(out_dir) / REVIEW_FILENAME, embed_audio=embed_audio)


def _export_places(out_dir: Path) -> dict[str, tuple[str, float]]:
    """chunk key -> (chapter file name, start in that file in seconds), from the last export's report."""
    path = out_dir / "report.json"
    if not path.is_file():
        return {}
    try:
        report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("%s: unreadable (%s); the review page shows no chapter times", path, exc)
        return {}
    places: dict[str, tuple[str, float]] = {}
    for chapter in report.get("chapters", []):
        for chunk in chapter.get("chunks", []):
            if "key" in chunk and "start_s" in chunk:
                places[str(chunk["key"])] = (str(chapter.get("file", "")), float(chunk["start_s"]))
    return places
