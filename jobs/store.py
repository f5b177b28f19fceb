"""Every query of the job store, in one place.

Workers, the planner and the CLI call these functions; nothing else issues SQL. Each public method
is one transaction. Database failures become :class:`jobs.errors.StoreError`.

Concurrency rules:
- claim: one ``UPDATE … WHERE id IN (SELECT … LIMIT n [FOR UPDATE SKIP LOCKED]) RETURNING``
  statement; SQLite runs it under ``BEGIN IMMEDIATE`` (see :mod:`jobs.db`), PostgreSQL skips rows
  another worker's open transaction holds;
- completion, failure, release and renewal are guarded by ``lease_owner`` and ``status`` (and the
  render key for completion), so a worker whose lease expired and was taken over cannot overwrite
  the new owner's state.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, aliased, sessionmaker

from jobs.db import (
    CHUNK_STATES,
    DONE,
    FAILED,
    LEASED,
    PENDING,
    BatchRow,
    BookRow,
    ChapterRow,
    ChunkRow,
    WorkerRow,
    is_sqlite,
    make_engine,
    normalise_url,
)
from jobs.errors import StoreError
from jobs.events import JobHooks
from jobs.planner import BookPlan, PlannedChapter
from jobs.records import (
    BookInfoRow,
    ChapterState,
    ClaimedChunk,
    Failure,
    ManifestChunk,
    SyncReport,
    Throughput,
    book_info_from_row,
    claimed_from_row,
)

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "BookInfoRow",
    "ChapterState",
    "ClaimedChunk",
    "Failure",
    "ManifestChunk",
    "Store",
    "SyncReport",
    "Throughput",
]

#: A chunk whose worker died this many times while holding it is failed instead of retried forever.
DEFAULT_MAX_ATTEMPTS = 3


def _claimed_columns() -> tuple[Any, ...]:
    """The chunk columns a :class:`ClaimedChunk` is built from (``claimed_from_row``)."""
    return (ChunkRow.id, ChunkRow.book_id, ChunkRow.chapter_id, ChunkRow.chapter_position, ChunkRow.idx,
            ChunkRow.render_key, ChunkRow.text, ChunkRow.normalized, ChunkRow.language, ChunkRow.attempts)


class Store:
    """The job store behind one URL (``sqlite:///…/render.db`` or ``postgresql+psycopg://…``)."""

    def __init__(self, url: str, *, hooks: JobHooks = JobHooks()) -> None:
        self.url = normalise_url(url)
        self.hooks = hooks
        self.is_sqlite = is_sqlite(self.url)
        self.engine = make_engine(self.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        try:
            with self._sessions.begin() as session:
                yield session
        except DBAPIError as exc:
            raise StoreError(f"job store error ({type(exc.orig).__name__}): {exc.orig}") from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"job store error: {exc}") from exc

    # ----------------------------------------------------------------------------- planning

    def sync_plan(self, plan: BookPlan) -> SyncReport:
        """Store a plan idempotently: unchanged chunks keep their state and audio.

        Chunks are matched by render key within their chapter, so inserting a sentence re-renders
        that sentence only; rows whose key no longer occurs are deleted, new keys start pending.
        """
        now = time.time()
        with self._tx() as s:
            book = s.execute(select(BookRow).where(BookRow.source_path == plan.source_path)).scalar_one_or_none()
            if book is None:
                book = BookRow(source_path=plan.source_path, created_at=now, updated_at=now)
                s.add(book)
            book_changed = _assign(
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
            totals = self._sync_chapters(s, book.id, plan.chapters)
            self.hooks.at("plan")
        return SyncReport(book_id=book.id, **totals)

    def _sync_chapters(self, s: Session, book_id: int, chapters: Sequence[PlannedChapter]) -> dict[str, int]:
        existing = {c.position: c for c in s.execute(select(ChapterRow).where(ChapterRow.book_id == book_id)).scalars()}
        totals = {"added": 0, "removed": 0, "kept": 0, "moved": 0, "chapters_changed": 0}
        for planned in chapters:
            row = existing.pop(planned.position, None)
            if row is None:
                row = ChapterRow(book_id=book_id, position=planned.position)
                s.add(row)
                totals["chapters_changed"] += 1
            changed = _assign(
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
            for key, value in self._sync_chunks(s, book_id, row, planned).items():
                totals[key] += value
        for row in existing.values():
            totals["removed"] += s.execute(
                select(func.count()).select_from(ChunkRow).where(ChunkRow.chapter_id == row.id)
            ).scalar_one()
            s.execute(delete(ChunkRow).where(ChunkRow.chapter_id == row.id))
            s.delete(row)
            totals["chapters_changed"] += 1
        return totals

    def _sync_chunks(self, s: Session, book_id: int, chapter: ChapterRow, planned: PlannedChapter) -> dict[str, int]:
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
                moved = _assign(
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

    # ----------------------------------------------------------------------------- workers

    def register_worker(self, worker_id: str, pid: int, process_started_at: float, host: str | None = None) -> None:
        now = time.time()
        with self._tx() as s:
            row = s.get(WorkerRow, worker_id)
            if row is None:
                row = WorkerRow(id=worker_id, started_at=now)
                s.add(row)
            _assign(
                row,
                host=host or socket.gethostname(),
                pid=pid,
                process_started_at=process_started_at,
                heartbeat_at=now,
                state="running",
            )

    def set_worker_state(self, worker_id: str, state: str) -> None:
        with self._tx() as s:
            s.execute(update(WorkerRow).where(WorkerRow.id == worker_id).values(state=state, heartbeat_at=time.time()))

    def local_workers(self, host: str | None = None) -> list[tuple[str, int, float]]:
        """(id, pid, process start time) of workers on this host still marked running."""
        host = host or socket.gethostname()
        with self._tx() as s:
            rows = s.execute(
                select(WorkerRow.id, WorkerRow.pid, WorkerRow.process_started_at).where(
                    WorkerRow.host == host, WorkerRow.state == "running"
                )
            ).all()
        return [(r[0], r[1], r[2]) for r in rows]

    def workers(self, *, running_only: bool = True) -> list[dict[str, Any]]:
        """Workers with their host, pid, state and seconds since their last heartbeat."""
        stmt = select(WorkerRow).order_by(WorkerRow.started_at)
        if running_only:
            stmt = stmt.where(WorkerRow.state == "running")
        now = time.time()
        with self._tx() as s:
            rows = list(s.execute(stmt).scalars())
        return [
            {
                "id": r.id,
                "host": r.host,
                "pid": r.pid,
                "state": r.state,
                "heartbeat_age_s": round(now - r.heartbeat_at, 1),
            }
            for r in rows
        ]

    def mark_worker_dead(self, worker_id: str, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> int:
        """A worker is known to be gone: its leases return to the queue now (not at lease expiry)."""
        with self._tx() as s:
            n = self._expire_leases(s, max_attempts, ChunkRow.lease_owner == worker_id)
            s.execute(update(WorkerRow).where(WorkerRow.id == worker_id).values(state="dead"))
        return n

    def requeue_expired(self, max_attempts: int = DEFAULT_MAX_ATTEMPTS, now: float | None = None) -> int:
        """Chunks whose lease expired go back to pending (or to failed after ``max_attempts`` claims)."""
        now = time.time() if now is None else now
        with self._tx() as s:
            return self._expire_leases(s, max_attempts, ChunkRow.lease_expires < now)

    @staticmethod
    def _expire_leases(s: Session, max_attempts: int, condition: Any) -> int:
        leased = (ChunkRow.status == LEASED) & condition
        message = (
            f"the worker stopped without finishing this chunk {max_attempts} times (crash, kill or lost lease); "
            "run `render retry-failed BOOK` to try again"
        )
        failed = _count(
            s,
            update(ChunkRow)
            .where(leased, ChunkRow.attempts >= max_attempts)
            .values(status=FAILED, lease_owner=None, lease_expires=None, last_error=message)
            .execution_options(synchronize_session=False),
        )
        requeued = _count(
            s,
            update(ChunkRow)
            .where(leased)
            .values(status=PENDING, lease_owner=None, lease_expires=None)
            .execution_options(synchronize_session=False),
        )
        return int(failed or 0) + int(requeued or 0)

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
        claimable = self._claimable(limit, exclude_books, book_id).cte("claimable").prefix_with("MATERIALIZED")
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
        with self._tx() as s:
            rows = s.execute(stmt).all()
            self.hooks.at("claim")
        return sorted((claimed_from_row(r) for r in rows), key=lambda c: (c.chapter_position, c.idx))

    def peek_pending(
        self, limit: int, *, exclude_books: Sequence[int] = (), book_id: int | None = None
    ) -> list[ClaimedChunk]:
        """The chunks the next ``claim_batch`` would most likely take, without leasing them (read-only;
        another worker may claim them first). Used to prepare their text while the engine is busy."""
        ids = self._claimable(limit, exclude_books, book_id, lock=False).subquery()
        stmt = (
            select(*_claimed_columns())
            .where(ChunkRow.id.in_(select(ids.c.id)))
            .order_by(ChunkRow.chapter_position, ChunkRow.idx)
        )
        with self._tx() as s:
            return [claimed_from_row(r) for r in s.execute(stmt).all()]

    @staticmethod
    def _claimable(limit: int, exclude_books: Sequence[int], book_id: int | None, lock: bool = True) -> Any:
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

    def renew_leases(self, worker_id: str, lease_s: float) -> int:
        """Push the expiry of every chunk this worker holds; also its heartbeat. Returns chunks renewed."""
        now = time.time()
        with self._tx() as s:
            n = _count(
                s,
                update(ChunkRow)
                .where(ChunkRow.lease_owner == worker_id, ChunkRow.status == LEASED)
                .values(lease_expires=now + lease_s)
                .execution_options(synchronize_session=False),
            )
            s.execute(update(WorkerRow).where(WorkerRow.id == worker_id).values(heartbeat_at=now))
        return int(n or 0)

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
        with self._tx() as s:
            n = _count(
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
        with self._tx() as s:
            n = _count(
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
        with self._tx() as s:
            n = 0
            if not refund:
                n += (
                    _count(
                        s,
                        update(ChunkRow)
                        .where(condition, ChunkRow.attempts >= max_attempts)
                        .values(status=FAILED, lease_owner=None, lease_expires=None, last_error=error)
                        .execution_options(synchronize_session=False),
                    )
                    or 0
                )
            n += (
                _count(
                    s, update(ChunkRow).where(condition).values(**values).execution_options(synchronize_session=False)
                )
                or 0
            )
        return int(n)

    def record_batch(self, **figures: Any) -> None:
        """Store one batch's figures (see :class:`jobs.db.BatchRow` for the fields)."""
        with self._tx() as s:
            s.add(BatchRow(**figures))

    # ----------------------------------------------------------------------------- reading

    def books(self) -> list[BookInfoRow]:
        with self._tx() as s:
            return [book_info_from_row(b) for b in s.execute(select(BookRow).order_by(BookRow.id)).scalars()]

    def book(self, book_id: int) -> BookInfoRow:
        with self._tx() as s:
            row = s.get(BookRow, book_id)
            if row is None:
                raise StoreError(f"no book with id {book_id} in the job store")
            return book_info_from_row(row)

    def find_book(self, source_path: str) -> BookInfoRow | None:
        with self._tx() as s:
            row = s.execute(select(BookRow).where(BookRow.source_path == source_path)).scalar_one_or_none()
            return book_info_from_row(row) if row is not None else None

    def counts(self, book_id: int | None = None, *, selected_only: bool = True) -> dict[str, int]:
        """Chunks per state (every state present, zero when none)."""
        stmt = select(ChunkRow.status, func.count()).select_from(ChunkRow)
        if selected_only:
            stmt = stmt.join(ChapterRow, ChapterRow.id == ChunkRow.chapter_id).where(ChapterRow.selected.is_(True))
        if book_id is not None:
            stmt = stmt.where(ChunkRow.book_id == book_id)
        with self._tx() as s:
            rows = s.execute(stmt.group_by(ChunkRow.status)).all()
        counts = dict.fromkeys(CHUNK_STATES, 0)
        counts.update({status: int(n) for status, n in rows})
        return counts

    def chapters(self, book_id: int, *, with_chunks: bool = False) -> list[ChapterState]:
        """Chapters in reading order with counts per state (and their done chunks when asked)."""
        with self._tx() as s:
            chapter_stmt = select(ChapterRow).where(ChapterRow.book_id == book_id).order_by(ChapterRow.position)
            chapters = list(s.execute(chapter_stmt).scalars())
            count_rows = s.execute(
                select(ChunkRow.chapter_id, ChunkRow.status, func.count())
                .where(ChunkRow.book_id == book_id)
                .group_by(ChunkRow.chapter_id, ChunkRow.status)
            ).all()
            chunk_rows: list[Any] = []
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
            done.setdefault(r.chapter_id, []).append(
                ManifestChunk(
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
            )
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
        with self._tx() as s:
            rows = s.execute(stmt).all()
        return [Failure(r[0].id, r[1], r[0].idx, r[0].text, r[0].last_error or "", r[0].attempts) for r in rows]

    def retry_failed(self, book_id: int) -> int:
        """Failed chunks of a book go back to pending with a fresh attempt budget."""
        with self._tx() as s:
            n = _count(
                s,
                update(ChunkRow)
                .where(ChunkRow.book_id == book_id, ChunkRow.status == FAILED)
                .values(status=PENDING, attempts=0, last_error=None)
                .execution_options(synchronize_session=False),
            )
        return int(n or 0)

    def throughput(self, book_id: int | None = None, window_s: float = 600.0) -> Throughput:
        """Figures over the batches that finished in the last ``window_s`` seconds of activity."""
        with self._tx() as s:
            latest_stmt = select(func.max(BatchRow.finished_at))
            if book_id is not None:
                latest_stmt = latest_stmt.where(BatchRow.book_id == book_id)
            latest = s.execute(latest_stmt).scalar_one_or_none()
            if latest is None:
                return Throughput(0, 0, 0, 0.0, 0.0, 0.0, {})
            stmt = select(BatchRow).where(BatchRow.finished_at >= latest - window_s)
            if book_id is not None:
                stmt = stmt.where(BatchRow.book_id == book_id)
            rows = list(s.execute(stmt).scalars())
        stages = {
            "frontend": sum(r.frontend_s for r in rows),
            "prefill": sum(r.prefill_s for r in rows),
            "decode": sum(r.decode_s for r in rows),
            "vocode": sum(r.vocode_s for r in rows),
            "write": sum(r.write_s for r in rows),
        }
        return Throughput(
            batches=len(rows),
            chunks=sum(r.chunks for r in rows),
            tokens=sum(r.tokens for r in rows),
            audio_s=sum(r.audio_s for r in rows),
            busy_s=sum(r.finished_at - r.started_at for r in rows),
            span_s=max(r.finished_at for r in rows) - min(r.started_at for r in rows),
            stage_s=stages,
        )

    def batch_totals(self, book_id: int | None = None) -> dict[str, float]:
        """Sums over every recorded batch (used by tests to check that no update was lost)."""
        stmt = select(func.count(), func.coalesce(func.sum(BatchRow.chunks), 0))
        if book_id is not None:
            stmt = stmt.where(BatchRow.book_id == book_id)
        with self._tx() as s:
            n, chunks = s.execute(stmt).one()
        return {"batches": int(n), "chunks": int(chunks)}

    def chunk_rows(self, book_id: int | None = None) -> list[dict[str, Any]]:
        """Every chunk as a plain dict, in reading order (status displays and tests)."""
        stmt = select(ChunkRow).order_by(ChunkRow.book_id, ChunkRow.chapter_position, ChunkRow.idx)
        if book_id is not None:
            stmt = stmt.where(ChunkRow.book_id == book_id)
        with self._tx() as s:
            rows = list(s.execute(stmt).scalars())
        return [{c.key: getattr(r, c.key) for c in ChunkRow.__table__.columns} for r in rows]


def _assign(row: Any, **values: Any) -> bool:
    """Set attributes that differ; True when anything changed (so unchanged re-plans write nothing)."""
    changed = False
    for name, value in values.items():
        if getattr(row, name, None) != value:
            setattr(row, name, value)
            changed = True
    return changed


def _count(s: Session, stmt: Any) -> int:
    """Rows an UPDATE/DELETE touched."""
    result = s.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)
