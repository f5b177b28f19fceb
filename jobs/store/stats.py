"""Statistics: per-batch figures the workers record, and the throughput `render status` shows."""

from __future__ import annotations

from dataclasses import asdict

from sqlalchemy import func, select

from jobs.db import BatchRow
from jobs.records import BatchRecord, Throughput
from jobs.store.session import Database


class BatchStats:
    """Per-batch figures (``store.stats``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record_batch(self, record: BatchRecord) -> None:
        """Store one batch's figures."""
        with self.db.transaction() as s:
            s.add(BatchRow(**asdict(record)))

    def throughput(self, book_id: int | None = None, window_s: float = 600.0) -> Throughput:
        """Figures over the batches that finished in the last ``window_s`` seconds of activity."""
        with self.db.transaction() as s:
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

    def batch_totals(self, book_id: int | None = None) -> dict[str, int]:
        """Sums over every recorded batch (used by tests to check that no update was lost)."""
        stmt = select(func.count(), func.coalesce(func.sum(BatchRow.chunks), 0))
        if book_id is not None:
            stmt = stmt.where(BatchRow.book_id == book_id)
        with self.db.transaction() as s:
            n, chunks = s.execute(stmt).one()
        return {"batches": int(n), "chunks": int(chunks)}
