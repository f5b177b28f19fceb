"""Claims and leases: the chunk queue workers take work from and hand results back to.

Concurrency rules:
- claim: one ``UPDATE … WHERE id IN (SELECT … LIMIT n [FOR UPDATE SKIP LOCKED]) RETURNING``
  statement; SQLite runs it under ``BEGIN IMMEDIATE`` (see :mod:`jobs.db`), PostgreSQL skips rows
  another worker's open transaction holds;
- completion, failure, release and renewal are guarded by ``lease_owner`` and ``status`` (and the
  render key for completion), so a worker whose lease expired and was taken over cannot overwrite
  the new owner's state.

Failure accounting, by cause (``last_error_kind``):
- ``input``: the chunk's text cannot be spoken; failed at once, permanent until the text changes;
- ``engine``: an exception while rendering it; counts as an attempt (``attempts``), failed at
  ``max_attempts``;
- ``worker``: its worker died while holding it; counted in ``worker_deaths``, not as an attempt
  (:mod:`jobs.store.deaths`).
A clean release (stop signal, full disk) refunds the claim: it was nobody's failure.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, select, update
from sqlalchemy.orm import Session, aliased

from jobs.db import (
    DONE,
    ERROR_ENGINE,
    ERROR_INPUT,
    ERROR_WORKER,
    FAILED,
    LEASED,
    PENDING,
    ChapterRow,
    ChunkRow,
    WorkerRow,
)
from jobs.events import JobHooks
from jobs.records import ClaimedChunk, RetryReport, claimed_from_row
from jobs.store.deaths import DEFAULT_MAX_DEATHS, bury_workers
from jobs.store.session import Database, count

#: ``completed_by`` of a chunk whose audio was found on disk rather than rendered by a worker.
ADOPTED_BY = "found on disk"
#: Renders of a chunk that ended in an exception after which it is failed (kind ``engine``).
DEFAULT_MAX_ATTEMPTS = 3


def _claimed_columns() -> tuple[Any, ...]:
    """The chunk columns a :class:`ClaimedChunk` is built from (``claimed_from_row``)."""
    return (ChunkRow.id, ChunkRow.book_id, ChunkRow.chapter_id, ChunkRow.chapter_position, ChunkRow.idx,
            ChunkRow.render_key, ChunkRow.text, ChunkRow.normalized, ChunkRow.language, ChunkRow.attempts,
            ChunkRow.worker_deaths, ChunkRow.boundary, ChunkRow.take)


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
        max_deaths: int = DEFAULT_MAX_DEATHS,
    ) -> list[ClaimedChunk]:
        """Atomically lease up to ``limit`` pending chunks of one book, in reading order.

        A suspect is leased alone (a claim that would include one takes only the first): a chunk whose
        workers died ``max_deaths`` times (:mod:`jobs.store.deaths`), or whose last render ended in an
        exception (``attempts`` > 0), so that a chunk that breaks its batch is told apart from the innocent
        chunks beside it and only its own attempts grow.
        """
        now = time.time()
        # One transaction: the SELECT locks its rows (PostgreSQL: FOR UPDATE SKIP LOCKED, so concurrent
        # claims skip them; SQLite: BEGIN IMMEDIATE holds the write lock), the UPDATE leases them.
        with self.db.transaction() as s:
            candidates = s.execute(_claimable(limit, exclude_books, book_id)).all()
            suspects = [row.id for row in candidates if row.worker_deaths >= max_deaths or row.attempts > 0]
            ids = suspects[:1] if suspects else [row.id for row in candidates]
            if not ids:
                return []
            stmt = (
                update(ChunkRow)
                .where(ChunkRow.id.in_(ids), ChunkRow.status == PENDING)
                .values(status=LEASED, lease_owner=worker_id, lease_expires=now + lease_s,
                        attempts=ChunkRow.attempts + 1)
                .returning(*_claimed_columns())
                .execution_options(synchronize_session=False)
            )
            rows = s.execute(stmt).all()
            self.hooks.at("claim")
        return sorted((claimed_from_row(r) for r in rows), key=lambda c: (c.chapter_position, c.idx))

    def peek_pending(
        self, limit: int, *, exclude_books: Sequence[int] = (), book_id: int | None = None
    ) -> list[ClaimedChunk]:
        """The chunks the next ``claim_batch`` would most likely take, without leasing them (read-only;
        another worker may claim them first). Used to prepare their text while the engine is busy."""
        ids = _claimable(limit, exclude_books, book_id, lock=False).subquery()  # id, worker_deaths, attempts
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
                    last_error_kind=None,
                    completed_by=worker_id,
                    completed_at=time.time(),
                )
                .execution_options(synchronize_session=False),
            )
        return n == 1

    def adopt_audio(self, found: Sequence[tuple[int, str, str, float]]) -> int:
        """Mark pending chunks done from audio files already on disk: ``(chunk id, render key, audio path,
        duration in seconds)``, each file checked by the caller. Guarded by status and key, so a chunk
        another worker claimed meanwhile is left to it. Returns how many were adopted."""
        now = time.time()
        adopted = 0
        with self.db.transaction() as s:
            for chunk_id, render_key, audio_path, duration_s in found:
                adopted += count(
                    s,
                    update(ChunkRow)
                    .where(ChunkRow.id == chunk_id, ChunkRow.status == PENDING, ChunkRow.render_key == render_key)
                    .values(status=DONE, audio_path=audio_path, duration_s=float(duration_s), n_tokens=0,
                            n_phones=0, timings=None, last_error=None, last_error_kind=None,
                            completed_by=ADOPTED_BY, completed_at=now)
                    .execution_options(synchronize_session=False),
                )
        return adopted

    def fail_chunk(self, worker_id: str, chunk_id: int, reason: str, kind: str = ERROR_INPUT) -> bool:
        """Failure of one leased chunk (the rest of the book continues); ``kind``: ERROR_INPUT (its
        text cannot be spoken: permanent until the text changes) or ERROR_ENGINE."""
        with self.db.transaction() as s:
            n = count(
                s,
                update(ChunkRow)
                .where(ChunkRow.id == chunk_id, ChunkRow.lease_owner == worker_id, ChunkRow.status == LEASED)
                .values(status=FAILED, last_error=reason[:2000], last_error_kind=kind, lease_owner=None,
                        lease_expires=None)
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
        """Give leased chunks back to the queue (all this worker holds when ``chunk_ids`` is None).

        ``refund=True`` (clean stop, full disk: nobody's failure) undoes the claim's attempt; ``error``
        is kept as a note. ``refund=False``: an exception while rendering them (kind ``engine``) counts
        as an attempt, and a chunk that used up ``max_attempts`` is failed instead.
        """
        condition = (ChunkRow.lease_owner == worker_id) & (ChunkRow.status == LEASED)
        if chunk_ids is not None:
            if not chunk_ids:
                return 0
            condition = condition & ChunkRow.id.in_(list(chunk_ids))
        note = error[:2000] if error else None
        values: dict[str, Any] = {"status": PENDING, "lease_owner": None, "lease_expires": None, "last_error": note}
        if refund:
            values["attempts"] = case((ChunkRow.attempts > 0, ChunkRow.attempts - 1), else_=0)
        else:
            values["last_error_kind"] = ERROR_ENGINE
        with self.db.transaction() as s:
            n = 0
            if not refund:
                n += count(
                    s,
                    update(ChunkRow)
                    .where(condition, ChunkRow.attempts >= max_attempts)
                    .values(status=FAILED, lease_owner=None, lease_expires=None, last_error=note,
                            last_error_kind=ERROR_ENGINE)
                    .execution_options(synchronize_session=False),
                )
            released = update(ChunkRow).where(condition).values(**values).execution_options(synchronize_session=False)
            n += count(s, released)
        return n

    def requeue_expired(self, max_deaths: int = DEFAULT_MAX_DEATHS, now: float | None = None) -> int:
        """Chunks whose lease expired go back to pending: their worker is taken for dead (no heartbeat
        renewed the lease), which counts against it, not them (:mod:`jobs.store.deaths`)."""
        now = time.time() if now is None else now
        with self.db.transaction() as s:
            return bury_workers(s, max_deaths, ChunkRow.lease_expires < now, "its lease expired: no heartbeat")

    def retry_failed(self, book_id: int, *, include_input: bool = True) -> RetryReport:
        """Failed chunks of a book go back to pending with a fresh attempt budget.

        ``include_input=False`` (what ``render BOOK`` run again does) leaves chunks whose text cannot
        be spoken failed: retrying them cannot help until the text changes. A chunk failed by its
        workers' deaths keeps their count, so it is rendered alone (and failed by one more death).
        """
        failed = (ChunkRow.book_id == book_id) & (ChunkRow.status == FAILED)
        is_input = ChunkRow.last_error_kind == ERROR_INPUT
        retry = failed if include_input else failed & (is_input.is_not(True))
        with self.db.transaction() as s:
            kept = 0 if include_input else count_rows(s, failed & is_input)
            kinds = select(ChunkRow.last_error_kind, func.count()).where(retry).group_by(ChunkRow.last_error_kind)
            by_kind: dict[str | None, int] = {kind: int(n) for kind, n in s.execute(kinds).all()}
            s.execute(update(ChunkRow).where(retry).values(status=PENDING, attempts=0)
                      .execution_options(synchronize_session=False))
        return RetryReport(
            retried=sum(by_kind.values()),
            after_worker_deaths=by_kind.get(ERROR_WORKER, 0),
            kept_input_errors=kept,
        )


def count_rows(s: Session, condition: ColumnElement[bool]) -> int:
    return int(s.execute(select(func.count()).select_from(ChunkRow).where(condition)).scalar_one())


def _claimable(
    limit: int, exclude_books: Sequence[int], book_id: int | None, lock: bool = True
) -> Select[int, int, int]:
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
        select(chunk_b.id, chunk_b.worker_deaths, chunk_b.attempts)
        .join(chapter_b, chapter_b.id == chunk_b.chapter_id)
        .where(pending(chunk_b, chapter_b), chunk_b.book_id == first_book)
        .order_by(chunk_b.chapter_position, chunk_b.idx)
        .limit(max(1, int(limit)))
    )
    return query.with_for_update(skip_locked=True, of=chunk_b) if lock else query
