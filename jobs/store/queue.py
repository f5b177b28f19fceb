"""Claims and leases: the chunk queue workers take work from and hand results back to.

Concurrency rules:
- claim: one ``UPDATE … WHERE id IN (SELECT … LIMIT n [FOR UPDATE SKIP LOCKED]) RETURNING``
  statement; SQLite runs it under ``BEGIN IMMEDIATE`` (see :mod:`jobs.db`), PostgreSQL skips rows
  another worker's open transaction holds;
- completion, failure, release and renewal are guarded by ``lease_owner`` and ``status`` (and the
  render key for completion), so a worker whose lease expired and was taken over cannot overwrite
  the new owner's state.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, case, select, update
from sqlalchemy.orm import Session, aliased

from jobs.db import DONE, FAILED, LEASED, PENDING, ChapterRow, ChunkRow, WorkerRow
from jobs.events import JobHooks
from jobs.records import ClaimedChunk, claimed_from_row
from jobs.store.session import Database, count

#: A chunk whose worker died this many times while holding it is failed instead of retried forever.
DEFAULT_MAX_ATTEMPTS = 3


def _claimed_columns() -> tuple[Any, ...]:
    """The chunk columns a :class:`ClaimedChunk` is built from (``claimed_from_row``)."""
    return (ChunkRow.id, ChunkRow.book_id, ChunkRow.chapter_id, ChunkRow.chapter_position, ChunkRow.idx,
            ChunkRow.render_key, ChunkRow.text, ChunkRow.normalized, ChunkRow.language, ChunkRow.attempts,
            ChunkRow.boundary, ChunkRow.take)


class ChunkQueue:
    """Claims, leases and the end states of chunks (``store.queue``)."""

    def __init__(self, db: Database, hooks: JobHooks) -> None:
        self.db = db
        self.hooks = hooks

    def claim_batch(
        self,
        worker_id: str,
        limit: int,
        lease_s: float,
        *,
        exclude_books: Sequence[int] = (),
        book_id: int | None = None,
    ) -> list[ClaimedChunk]:
        """Atomically lease up to ``limit`` pending chunks of one book, in reading order."""
        now = time.time()
        # Aliases, so the subqueries never correlate with the UPDATE's own table.
        # A materialised CTE: PostgreSQL evaluates the locking SELECT exactly once (an IN (subquery)
        # may be re-run per row, claiming more than `limit` rows).
        claimable = _claimable(limit, exclude_books, book_id).cte("claimable").prefix_with("MATERIALIZED")
        stmt = (
            update(ChunkRow)
            .where(ChunkRow.id == claimable.c.id, ChunkRow.status == PENDING)
            .values(
                status=LEASED,
                lease_owner=worker_id,
                lease_expires=now + lease_s,
                attempts=ChunkRow.attempts + 1,
                last_error=None,
            )
            .returning(*_claimed_columns())
            .execution_options(synchronize_session=False)
        )
        with self.db.transaction() as s:
            rows = s.execute(stmt).all()
            self.hooks.at("claim")
        return sorted((claimed_from_row(r) for r in rows), key=lambda c: (c.chapter_position, c.idx))

    def peek_pending(
        self, limit: int, *, exclude_books: Sequence[int] = (), book_id: int | None = None
    ) -> list[ClaimedChunk]:
        """The chunks the next ``claim_batch`` would most likely take, without leasing them (read-only;
        another worker may claim them first). Used to prepare their text while the engine is busy."""
        ids = _claimable(limit, exclude_books, book_id, lock=False).subquery()
        stmt = (
            select(*_claimed_columns())
            .where(ChunkRow.id.in_(select(ids.c.id)))
            .order_by(ChunkRow.chapter_position, ChunkRow.idx)
        )
        with self.db.transaction() as s:
            return [claimed_from_row(r) for r in s.execute(stmt).all()]

    def renew_leases(self, worker_id: str, lease_s: float) -> int:
        """Push the expiry of every chunk this worker holds; also its heartbeat. Returns chunks renewed."""
        now = time.time()
        with self.db.transaction() as s:
            n = count(
                s,
                update(ChunkRow)
                .where(ChunkRow.lease_owner == worker_id, ChunkRow.status == LEASED)
                .values(lease_expires=now + lease_s)
                .execution_options(synchronize_session=False),
            )
            s.execute(update(WorkerRow).where(WorkerRow.id == worker_id).values(heartbeat_at=now))
        return n

    def complete_chunk(
        self,
        worker_id: str,
        chunk_id: int,
        render_key: str,
        audio_path: str,
        duration_s: float,
        n_tokens: int,
        n_phones: int,
        timings: dict[str, float] | None = None,
    ) -> bool:
        """Mark a leased chunk done. False when this worker no longer owns it (lease lost / re-planned)."""
        with self.db.transaction() as s:
            n = count(
                s,
                update(ChunkRow)
                .where(
                    ChunkRow.id == chunk_id,
                    ChunkRow.lease_owner == worker_id,
                    ChunkRow.status == LEASED,
                    ChunkRow.render_key == render_key,
                )
                .values(
                    status=DONE,
                    audio_path=audio_path,
                    duration_s=float(duration_s),
                    n_tokens=int(n_tokens),
                    n_phones=int(n_phones),
                    timings=timings,
                    lease_owner=None,
                    lease_expires=None,
                    last_error=None,
                    completed_by=worker_id,
                    completed_at=time.time(),
                )
                .execution_options(synchronize_session=False),
            )
        return n == 1

    def fail_chunk(self, worker_id: str, chunk_id: int, reason: str) -> bool:
        """Permanent failure of one leased chunk (the rest of the book continues)."""
        with self.db.transaction() as s:
            n = count(
                s,
                update(ChunkRow)
                .where(ChunkRow.id == chunk_id, ChunkRow.lease_owner == worker_id, ChunkRow.status == LEASED)
                .values(status=FAILED, last_error=reason[:2000], lease_owner=None, lease_expires=None)
                .execution_options(synchronize_session=False),
            )
        return n == 1

    def release_chunks(
        self,
        worker_id: str,
        chunk_ids: Sequence[int] | None = None,
        *,
        refund: bool = True,
        error: str | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> int:
        """Give leased chunks back to the queue.

        ``refund=True`` (clean stop, transient error) undoes the claim's attempt. Without refund (the
        worker hit an unexpected error) a chunk that used up ``max_attempts`` is failed instead.
        """
        condition = (ChunkRow.lease_owner == worker_id) & (ChunkRow.status == LEASED)
        if chunk_ids is not None:
            if not chunk_ids:
                return 0
            condition = condition & ChunkRow.id.in_(list(chunk_ids))
        values: dict[str, Any] = {"status": PENDING, "lease_owner": None, "lease_expires": None, "last_error": error}
        if refund:
            values["attempts"] = case((ChunkRow.attempts > 0, ChunkRow.attempts - 1), else_=0)
        with self.db.transaction() as s:
            n = 0
            if not refund:
                n += count(
                    s,
                    update(ChunkRow)
                    .where(condition, ChunkRow.attempts >= max_attempts)
                    .values(status=FAILED, lease_owner=None, lease_expires=None, last_error=error)
                    .execution_options(synchronize_session=False),
                )
            released = update(ChunkRow).where(condition).values(**values).execution_options(synchronize_session=False)
            n += count(s, released)
        return n

    def requeue_expired(self, max_attempts: int = DEFAULT_MAX_ATTEMPTS, now: float | None = None) -> int:
        """Chunks whose lease expired go back to pending (or to failed after ``max_attempts`` claims)."""
        now = time.time() if now is None else now
        with self.db.transaction() as s:
            return expire_leases(s, max_attempts, ChunkRow.lease_expires < now)

    def retry_failed(self, book_id: int) -> int:
        """Failed chunks of a book go back to pending with a fresh attempt budget."""
        with self.db.transaction() as s:
            return count(
                s,
                update(ChunkRow)
                .where(ChunkRow.book_id == book_id, ChunkRow.status == FAILED)
                .values(status=PENDING, attempts=0, last_error=None)
                .execution_options(synchronize_session=False),
            )


def expire_leases(s: Session, max_attempts: int, condition: ColumnElement[bool]) -> int:
    """Leased chunks matching ``condition`` go back to pending, or to failed once they used ``max_attempts``."""
    leased = (ChunkRow.status == LEASED) & condition
    message = (
        f"the worker stopped without finishing this chunk {max_attempts} times (crash, kill or lost lease); "
        "run `render retry-failed BOOK` to try again"
    )
    failed = count(
        s,
        update(ChunkRow)
        .where(leased, ChunkRow.attempts >= max_attempts)
        .values(status=FAILED, lease_owner=None, lease_expires=None, last_error=message)
        .execution_options(synchronize_session=False),
    )
    requeued = count(
        s,
        update(ChunkRow)
        .where(leased)
        .values(status=PENDING, lease_owner=None, lease_expires=None)
        .execution_options(synchronize_session=False),
    )
    return failed + requeued


def _claimable(limit: int, exclude_books: Sequence[int], book_id: int | None, lock: bool = True) -> Select[Any]:
    """SELECT of the ids to claim: pending chunks of selected chapters of the first book that has any."""

    def pending(chunk: Any, chapter: Any) -> Any:
        condition = (chunk.status == PENDING) & chapter.selected.is_(True) & chapter.skipped.is_(False)
        if exclude_books:
            condition = condition & chunk.book_id.not_in(list(exclude_books))
        if book_id is not None:
            condition = condition & (chunk.book_id == book_id)
        return condition

    chunk_a, chapter_a = aliased(ChunkRow), aliased(ChapterRow)
    first_book = (
        select(chunk_a.book_id)
        .join(chapter_a, chapter_a.id == chunk_a.chapter_id)
        .where(pending(chunk_a, chapter_a))
        .order_by(chunk_a.book_id)
        .limit(1)
        .scalar_subquery()
    )
    chunk_b, chapter_b = aliased(ChunkRow), aliased(ChapterRow)
    query = (
        select(chunk_b.id)
        .join(chapter_b, chapter_b.id == chunk_b.chapter_id)
        .where(pending(chunk_b, chapter_b), chunk_b.book_id == first_book)
        .order_by(chunk_b.chapter_position, chunk_b.idx)
        .limit(max(1, int(limit)))
    )
    return query.with_for_update(skip_locked=True, of=chunk_b) if lock else query
