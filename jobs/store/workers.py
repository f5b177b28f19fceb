"""Worker registry: which workers exist, where they run, their heartbeat; a dead one's leases."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from sqlalchemy import select, update

from jobs.db import ChunkRow, WorkerRow
from jobs.store.queue import DEFAULT_MAX_ATTEMPTS, expire_leases
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
                state="running",
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
                    WorkerRow.host == host, WorkerRow.state == "running"
                )
            ).all()
        return [LocalWorker(r[0], r[1], r[2]) for r in rows]

    def listed(self, *, running_only: bool = True) -> list[WorkerInfo]:
        """Workers with their host, pid, state and seconds since their last heartbeat, oldest first."""
        stmt = select(WorkerRow).order_by(WorkerRow.started_at)
        if running_only:
            stmt = stmt.where(WorkerRow.state == "running")
        now = time.time()
        with self.db.transaction() as s:
            rows = list(s.execute(stmt).scalars())
        return [WorkerInfo(r.id, r.host, r.pid, r.state, round(now - r.heartbeat_at, 1)) for r in rows]

    def mark_dead(self, worker_id: str, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> int:
        """A worker is known to be gone: its leases return to the queue now (not at lease expiry)."""
        with self.db.transaction() as s:
            n = expire_leases(s, max_attempts, ChunkRow.lease_owner == worker_id)
            s.execute(update(WorkerRow).where(WorkerRow.id == worker_id).values(state="dead"))
        return n
