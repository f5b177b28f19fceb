"""Status: books, chapters and chunks as they stand (what `render status`, export and tests read)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from jobs.db import CHUNK_STATES, DONE, FAILED, BookRow, ChapterRow, ChunkRow
from jobs.errors import StoreError
from jobs.records import BookInfoRow, ChapterState, Failure, ManifestChunk, book_info_from_row
from jobs.store.session import Database


class StatusQueries:
    """Read-only views of the books in the store (``store.status``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def books(self) -> list[BookInfoRow]:
        with self.db.transaction() as s:
            return [book_info_from_row(b) for b in s.execute(select(BookRow).order_by(BookRow.id)).scalars()]

    def book(self, book_id: int) -> BookInfoRow:
        with self.db.transaction() as s:
            row = s.get(BookRow, book_id)
            if row is None:
                raise StoreError(f"no book with id {book_id} in the job store")
            return book_info_from_row(row)

    def find_book(self, source_path: str) -> BookInfoRow | None:
        with self.db.transaction() as s:
            row = s.execute(select(BookRow).where(BookRow.source_path == source_path)).scalar_one_or_none()
            return book_info_from_row(row) if row is not None else None

    def counts(self, book_id: int | None = None, *, selected_only: bool = True) -> dict[str, int]:
        """Chunks per state (every state present, zero when none)."""
        stmt = select(ChunkRow.status, func.count()).select_from(ChunkRow)
        if selected_only:
            stmt = stmt.join(ChapterRow, ChapterRow.id == ChunkRow.chapter_id).where(ChapterRow.selected.is_(True))
        if book_id is not None:
            stmt = stmt.where(ChunkRow.book_id == book_id)
        with self.db.transaction() as s:
            rows = s.execute(stmt.group_by(ChunkRow.status)).all()
        counts = dict.fromkeys(CHUNK_STATES, 0)
        counts.update({status: int(n) for status, n in rows})
        return counts

    def chapters(self, book_id: int, *, with_chunks: bool = False) -> list[ChapterState]:
        """Chapters in reading order with counts per state (and their done chunks when asked)."""
        with self.db.transaction() as s:
            chapter_stmt = select(ChapterRow).where(ChapterRow.book_id == book_id).order_by(ChapterRow.position)
            chapters = list(s.execute(chapter_stmt).scalars())
            count_rows = s.execute(
                select(ChunkRow.chapter_id, ChunkRow.status, func.count())
                .where(ChunkRow.book_id == book_id)
                .group_by(ChunkRow.chapter_id, ChunkRow.status)
            ).all()
            chunk_rows: list[ChunkRow] = []
            if with_chunks:
                chunk_rows = list(
                    s.execute(
                        select(ChunkRow)
                        .where(ChunkRow.book_id == book_id, ChunkRow.status == DONE)
                        .order_by(ChunkRow.chapter_position, ChunkRow.idx)
                    ).scalars()
                )
        per_chapter: dict[int, dict[str, int]] = {}
        for chapter_id, status, n in count_rows:
            per_chapter.setdefault(chapter_id, dict.fromkeys(CHUNK_STATES, 0))[status] = int(n)
        done: dict[int, list[ManifestChunk]] = {}
        for r in chunk_rows:
            done.setdefault(r.chapter_id, []).append(_manifest_chunk(r))
        return [
            ChapterState(
                id=c.id,
                position=c.position,
                number=c.number,
                title=c.title,
                href=c.href,
                anchor=c.anchor,
                skipped=c.skipped,
                skip_reason=c.skip_reason,
                selected=c.selected,
                counts=per_chapter.get(c.id, dict.fromkeys(CHUNK_STATES, 0)),
                chunks=done.get(c.id, []),
            )
            for c in chapters
        ]

    def failures(self, book_id: int | None = None, limit: int = 100) -> list[Failure]:
        stmt = (
            select(ChunkRow, ChapterRow.number)
            .join(ChapterRow, ChapterRow.id == ChunkRow.chapter_id)
            .where(ChunkRow.status == FAILED)
            .order_by(ChunkRow.book_id, ChunkRow.chapter_position, ChunkRow.idx)
            .limit(limit)
        )
        if book_id is not None:
            stmt = stmt.where(ChunkRow.book_id == book_id)
        with self.db.transaction() as s:
            rows = s.execute(stmt).all()
        return [Failure(r[0].id, r[1], r[0].idx, r[0].text, r[0].last_error or "", r[0].attempts) for r in rows]

    def chunk_rows(self, book_id: int | None = None) -> list[dict[str, Any]]:
        """Every chunk as a plain dict, in reading order (status displays and tests)."""
        stmt = select(ChunkRow).order_by(ChunkRow.book_id, ChunkRow.chapter_position, ChunkRow.idx)
        if book_id is not None:
            stmt = stmt.where(ChunkRow.book_id == book_id)
        with self.db.transaction() as s:
            rows = list(s.execute(stmt).scalars())
        return [{c.key: getattr(r, c.key) for c in ChunkRow.__table__.columns} for r in rows]


def _manifest_chunk(r: ChunkRow) -> ManifestChunk:
    return ManifestChunk(
        id=r.id,
        idx=r.idx,
        audio_path=r.audio_path or "",
        boundary=r.boundary,
        text=r.text,
        render_key=r.render_key,
        n_phones=r.n_phones or 0,
        n_tokens=r.n_tokens or 0,
        duration_s=r.duration_s or 0.0,
    )
