"""Worker registry: which workers exist, where they run, their heartbeat; a dead one's leases."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from sqlalchemy import select, update

from jobs.db import WORKER_DEAD, WORKER_RUNNING, ChunkRow, WorkerRow
from jobs.store.deaths import DEFAULT_MAX_DEATHS, bury_workers
from jobs.store.session import Database, assign


@dataclass(frozen=True)
class LocalWorker:
    """A worker process on this host, as registered (its pid and start time tell whether it still lives)."""

    id: str
    pid: int
    process_started_at: float


@dataclass(frozen=True)
class WorkerInfo:
    """A worker as `render status` shows it."""

    id: str
    host: str
    pid: int
    state: str
    heartbeat_age_s: float
    died_at: float | None = None
    death_cause: str | None = None
    chunks_lost: int = 0  # chunks it held when it died (queued again, not counted against them)


class WorkerRegistry:
    """Registered workers (``store.workers``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def register(self, worker_id: str, pid: int, process_started_at: float, host: str | None = None) -> None:
        now = time.time()
        with self.db.transaction() as s:
            row = s.get(WorkerRow, worker_id)
            if row is None:
                row = WorkerRow(id=worker_id, started_at=now)
                s.add(row)
            assign(
                row,
                host=host or socket.gethostname(),
                pid=pid,
                process_started_at=process_started_at,
                heartbeat_at=now,
                state=WORKER_RUNNING,
            )

    def set_state(self, worker_id: str, state: str) -> None:
        with self.db.transaction() as s:
            s.execute(update(WorkerRow).where(WorkerRow.id == worker_id).values(state=state, heartbeat_at=time.time()))

    def local(self, host: str | None = None) -> list[LocalWorker]:
        """Workers on this host still marked running."""
        host = host or socket.gethostname()
        with self.db.transaction() as s:
            rows = s.execute(
                select(WorkerRow.id, WorkerRow.pid, WorkerRow.process_started_at).where(
                    WorkerRow.host == host, WorkerRow.state == WORKER_RUNNING
                )
            ).all()
        return [LocalWorker(r[0], r[1], r[2]) for r in rows]

    def listed(self, *, running_only: bool = True) -> list[WorkerInfo]:
        """Workers with their host, pid, state and seconds since their last heartbeat, oldest first."""
        stmt = select(WorkerRow).order_by(WorkerRow.started_at)
        if running_only:
            stmt = stmt.where(WorkerRow.state == WORKER_RUNNING)
        now = time.time()
        with self.db.transaction() as s:
            rows = list(s.execute(stmt).scalars())
        return [WorkerInfo(r.id, r.host, r.pid, r.state, round(now - r.heartbeat_at, 1), r.died_at, r.death_cause,
                           r.chunks_lost) for r in rows]

    def deaths(self) -> list[WorkerInfo]:
        """Workers that died (killed, crashed, lost their leases), oldest death first."""
        return sorted((w for w in self.listed(running_only=False) if w.state == WORKER_DEAD),
                      key=lambda w: w.died_at or 0.0)

    def mark_dead(self, worker_id: str, cause: str, max_deaths: int = DEFAULT_MAX_DEATHS) -> int:
        """A worker is known to be gone (``cause``): its leases return to the queue now (not at lease expiry),
        the death counted against it, not its chunks (:mod:`jobs.store.deaths`). Returns chunks taken back."""
        with self.db.transaction() as s:
            n = bury_workers(s, max_deaths, ChunkRow.lease_owner == worker_id, cause)
            s.execute(
                update(WorkerRow)
                .where(WorkerRow.id == worker_id, WorkerRow.state != WORKER_DEAD)
                .values(state=WORKER_DEAD, died_at=time.time(), death_cause=cause[:2000])
            )
        return n
