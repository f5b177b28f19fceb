"""Store → export: the chapter manifests (with their navigation marks), book metadata (with the parts that
could not be read) and read-along source of a stored book, exported
into a staging folder and then published (see :mod:`export.publish`), so the output folder holds exactly
the latest export, numbered by the plan's chapter numbers."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.errors import JobsError
from jobs.events import JobHooks
from jobs.records import BookInfoRow, ChapterState
from jobs.store import Store

STAGING_DIRNAME = ".export-staging"
READ_ALONG_SUFFIX = ".readalong.epub"

if TYPE_CHECKING:
    from export import BookInfo, ChapterManifest, ExportReport, NavMark
    from export.readalong import ReadAlongSource


def navigation_marks(meta: dict[str, Any]) -> dict[int, list[NavMark]]:
    """The stored navigation marks (BookPlan.meta_json) as export NavMarks per chapter number, in order."""
    from export import NavMark

    marks: dict[int, list[NavMark]] = {}
    for mark in meta.get("navigation", []):
        if mark.get("chunk") is not None:
            marks.setdefault(int(mark["chapter"]), []).append(NavMark(mark["title"], int(mark["depth"]), mark["chunk"]))
    return marks


def _manifests(chapters: list[ChapterState], root: Path, marks: dict[int, list[NavMark]]) -> list[ChapterManifest]:
    from export import ChapterManifest, ChunkAudio

    manifests = []
    for chapter in chapters:
        if not chapter.complete:
            continue
        chunks = [
            ChunkAudio(
                path=root / c.audio_path,
                boundary=c.boundary,
                text=c.text,
                key=f"{chapter.number}.{c.idx}:{c.render_key[:16]}",  # unique even for repeated text
                n_phones=c.n_phones,
                n_tokens=c.n_tokens,
                duration_s=c.duration_s,
            )
            for c in chapter.chunks
        ]
        for chunk in chunks:
            if not chunk.path.is_file():
                hint = "is --audio-dir the shared folder the workers used?"
                raise JobsError(f"chunk audio missing: {chunk.path} ({hint})")
        manifests.append(ChapterManifest(index=chapter.number, title=chapter.title, chunks=chunks,
                                         marks=marks.get(chapter.number, [])))
    return manifests


def _is_current_epub(book: BookInfoRow) -> bool:
    """Whether the book file is an EPUB still on disk unchanged since it was planned."""
    from renderer.files import sha256_file

    path = Path(book.source_path)
    return path.suffix.lower() == ".epub" and path.is_file() and sha256_file(path) == book.source_hash


def book_info(book: BookInfoRow, chapter_count: int) -> BookInfo:
    """Tags: title/author/language/cover as planned, narrator = the voice, year/description/publisher from
    the OPF (when the EPUB is still there and unchanged; without them otherwise)."""
    from export import BookInfo
    from export.epub import OpfMetadata, opf_metadata
    from export.errors import ReadAlongError

    extra = OpfMetadata()
    if _is_current_epub(book):
        try:
            extra = opf_metadata(Path(book.source_path))
        except ReadAlongError:
            pass  # the plan's metadata is enough for tags
    missing = tuple(f"{m['href']} ({m['title']!r}): {m['reason']}" if m.get("title") else f"{m['href']}: {m['reason']}"
                    for m in book.meta.get("missing_parts", []))
    return BookInfo(
        title=book.title, author=book.author, language=book.language, cover=book.cover, cover_mime=book.cover_mime,
        narrator=book.voice_name, year=extra.year, description=extra.description, publisher=extra.publisher,
        chapter_count=chapter_count, missing_parts=missing,
    )  # fmt: skip


def check_read_along(path: Path) -> None:
    """Before rendering: a book the read-along EPUB cannot be made from is refused now, not hours later."""
    from export.readalong import check_source

    if path.suffix.lower() != ".epub":
        raise JobsError(f"--read-along needs an EPUB book; {path.name} is not one (try --subtitles instead)")
    check_source(path)


def read_along_source(book: BookInfoRow, chapters: list[ChapterState]) -> ReadAlongSource:
    from export.readalong import ChapterStart, ReadAlongSource

    path = Path(book.source_path)
    if path.suffix.lower() != ".epub":
        raise JobsError(f"--read-along needs an EPUB book; {path.name} is not one (try --subtitles instead)")
    starts = tuple(ChapterStart(c.number, c.href, c.anchor) for c in chapters)
    return ReadAlongSource(path, path.stem + READ_ALONG_SUFFIX, starts, book.source_hash, book.voice_name)


def export_from_store(
    store: Store,
    book_id: int,
    root: Path,
    out_dir: Path,
    *,
    export_format: str = "mp3",
    preset: str = "acx",
    single_file: bool = False,
    subtitles: str | None = None,
    read_along: bool = False,
    hooks: JobHooks = JobHooks(),
) -> ExportReport | None:
    """Export every complete chapter from stored chunk audio; returns the export report (None if nothing to do).

    The files are made in ``out_dir/.export-staging`` and published when all of them are ready: a failure
    (a full disk, an encoder error) leaves the previous export in place and nothing half-written."""
    from export import ExportOptions, TakeSummary, export_book
    from export.errors import DiskFullError
    from export.publish import publish
    from export.space import estimate_bytes, free_bytes, is_disk_full

    book = store.status.book(book_id)
    chapters = store.status.chapters(book_id, with_chunks=True)
    manifests = _manifests(chapters, root, navigation_marks(book.meta))
    if not manifests:
        return None
    options = ExportOptions(format=export_format, preset=preset, single_file=single_file, subtitles=subtitles)
    source = read_along_source(book, chapters) if read_along else None
    staging = Path(out_dir) / STAGING_DIRNAME
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
        counts = store.takes.counts(book_id)
        takes = TakeSummary(rerolled=counts.rerolled, doubtful=counts.doubtful, accepted=counts.accepted)
        report = export_book(book_info(book, len(chapters)), manifests, staging, options, source, takes=takes)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, DiskFullError) or (isinstance(exc, OSError) and is_disk_full(exc, Path(out_dir))):
            # Name the folder the user chose (not our staging folder inside it), with the space now free.
            needed = getattr(exc, "needed_bytes", 0) or estimate_bytes(manifests, options)
            raise DiskFullError(Path(out_dir), needed, free_bytes(Path(out_dir))) from exc
        raise
    hooks.at("export")
    publish(staging, Path(out_dir), on_step=lambda _name: hooks.at("publish"))
    return report
