"""Plan sync: a book's plan stored idempotently (books, chapters, chunks rows)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from jobs.db import PENDING, BookRow, ChapterRow, ChunkRow
from jobs.events import JobHooks
from jobs.planner import BookPlan, PlannedChapter
from jobs.records import SyncReport
from jobs.store.session import Database, assign

Totals = dict[str, int]


class PlanSync:
    """Stores plans (``store.plans``)."""

    def __init__(self, db: Database, hooks: JobHooks) -> None:
        self.db = db
        self.hooks = hooks

    def sync_plan(self, plan: BookPlan) -> SyncReport:
        """Store a plan idempotently: unchanged chunks keep their state and audio.

        Chunks are matched by render key within their chapter, so inserting a sentence re-renders
        that sentence only; rows whose key no longer occurs are deleted, new keys start pending.
        """
        now = time.time()
        with self.db.transaction() as s:
            book = s.execute(select(BookRow).where(BookRow.source_path == plan.source_path)).scalar_one_or_none()
            if book is None:
                book = BookRow(source_path=plan.source_path, created_at=now, updated_at=now)
                s.add(book)
            book_changed = assign(
                book,
                source_hash=plan.source_hash,
                title=plan.title,
                author=plan.author,
                language=plan.language,
                identifier=plan.identifier,
                cover=plan.cover,
                cover_mime=plan.cover_mime,
                voice_name=plan.voice_name,
                voice_id=plan.voice_id,
                engine_version=plan.engine_version,
                options=plan.options,
                meta=plan.meta_json(),
            )
            if book_changed:
                book.updated_at = now
            s.flush()
            totals = _sync_chapters(s, book.id, plan.chapters)
            self.hooks.at("plan")
        return SyncReport(book_id=book.id, **totals)


def _sync_chapters(s: Session, book_id: int, chapters: Sequence[PlannedChapter]) -> Totals:
    existing = {c.position: c for c in s.execute(select(ChapterRow).where(ChapterRow.book_id == book_id)).scalars()}
    totals = {"added": 0, "removed": 0, "kept": 0, "moved": 0, "chapters_changed": 0}
    for planned in chapters:
        row = existing.pop(planned.position, None)
        if row is None:
            row = ChapterRow(book_id=book_id, position=planned.position)
            s.add(row)
            totals["chapters_changed"] += 1
        changed = assign(
            row,
            number=planned.number,
            title=planned.title,
            href=planned.href,
            anchor=planned.anchor,
            kind=planned.kind,
            skipped=planned.skipped,
            skip_reason=planned.skip_reason,
            selected=planned.selected,
            paragraphs=planned.paragraphs,
            characters=planned.characters,
        )
        totals["chapters_changed"] += int(changed and row.id is not None)
        s.flush()
        for key, value in _sync_chunks(s, book_id, row, planned).items():
            totals[key] += value
    for row in existing.values():
        totals["removed"] += s.execute(
            select(func.count()).select_from(ChunkRow).where(ChunkRow.chapter_id == row.id)
        ).scalar_one()
        s.execute(delete(ChunkRow).where(ChunkRow.chapter_id == row.id))
        s.delete(row)
        totals["chapters_changed"] += 1
    return totals


def _sync_chunks(s: Session, book_id: int, chapter: ChapterRow, planned: PlannedChapter) -> Totals:
    rows = list(s.execute(select(ChunkRow).where(ChunkRow.chapter_id == chapter.id)).scalars())
    by_key: dict[str, list[ChunkRow]] = {}
    for row in sorted(rows, key=lambda r: r.idx):
        by_key.setdefault(row.render_key, []).append(row)
    counts = {"added": 0, "removed": 0, "kept": 0, "moved": 0}
    for chunk in planned.chunks:
        candidates = by_key.get(chunk.render_key)
        if candidates:
            same = next((r for r in candidates if r.idx == chunk.idx), candidates[0])
            candidates.remove(same)
            moved = assign(
                same,
                idx=chunk.idx,
                block_index=chunk.block_index,
                text=chunk.text,
                boundary=chunk.boundary,
                chapter_position=planned.position,
            )
            counts["moved" if moved else "kept"] += 1
            continue
        s.add(
            ChunkRow(
                book_id=book_id,
                chapter_id=chapter.id,
                chapter_position=planned.position,
                idx=chunk.idx,
                block_index=chunk.block_index,
                text=chunk.text,
                normalized=chunk.normalized,
                language=chunk.language,
                boundary=chunk.boundary,
                render_key=chunk.render_key,
                status=PENDING,
                attempts=0,
            )
        )
        counts["added"] += 1
    for leftovers in by_key.values():
        for row in leftovers:
            s.delete(row)
            counts["removed"] += 1
    return counts
