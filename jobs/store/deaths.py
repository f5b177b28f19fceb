"""Worker deaths: what happens to the chunks a worker held when it died (kill, crash, power loss, lost lease).

A death is the worker's failure, not its chunks': each chunk it held goes back to the queue with its
claim refunded (``attempts`` counts only the renders that ended, in a result or an exception) and one
more ``worker_deaths``; the worker's row records the death (``state='dead'``, ``died_at``,
``death_cause``, ``chunks_lost``).

A chunk that kills every worker that renders it (e.g. out of memory each time) must not loop forever,
yet an innocent chunk that merely happened to be in flight at each kill must not fail. So a chunk whose
workers died ``max_deaths`` times is claimed alone from then on (:meth:`jobs.store.queue.ChunkQueue.claim_batch`);
if its worker dies once more while rendering it alone, it is ``failed`` with the reason (kind
``worker``). Such a failure is not permanent: ``render BOOK`` run again retries it (alone).
"""

from __future__ import annotations

import time

from sqlalchemy import ColumnElement, case, select, update
from sqlalchemy.orm import Session

from jobs.db import ERROR_WORKER, FAILED, LEASED, PENDING, WORKER_DEAD, ChunkRow, WorkerRow
from jobs.store.session import count

#: Worker deaths while holding a chunk after which it is rendered alone; one more death alone fails it.
DEFAULT_MAX_DEATHS = 3


def died_message(owner: str | None, cause: str) -> str:
    return f"its worker {owner or '?'} died while rendering it ({cause}); queued again"


def failed_message(deaths: int) -> str:
    return (
        f"its worker died {deaths} times while rendering it, the last time rendering it alone: this chunk "
        "probably crashes the worker (e.g. out of memory). Running `render BOOK` again retries it alone; "
        "`render status` lists the workers' deaths"
    )


def bury_workers(s: Session, max_deaths: int, condition: ColumnElement[bool], cause: str) -> int:
    """Leased chunks matching ``condition`` belong to dead workers: return them, counting the deaths.

    Returns how many chunks were taken back (queued again or failed). Each worker's death is recorded
    with the chunks this call really took back from it: two workers may bury the same dead one at once
    (PostgreSQL), and the second then finds its chunks already returned.
    """
    leased = (ChunkRow.status == LEASED) & condition
    now = time.time()
    owners = s.execute(select(ChunkRow.lease_owner).where(leased).distinct()).scalars().all()
    taken = 0
    for owner in owners:
        held = leased & (ChunkRow.lease_owner == owner if owner is not None else ChunkRow.lease_owner.is_(None))
        n = _fail_doomed(s, held, max_deaths) + _requeue(s, held, owner, cause)
        if n and owner is not None:
            _record_death(s, owner, n, cause, now)
        taken += n
    return taken


def _fail_doomed(s: Session, held: ColumnElement[bool], max_deaths: int) -> int:
    """Chunks of ``held`` whose workers' deaths pass ``max_deaths`` with this one are failed."""
    deaths = ChunkRow.worker_deaths + 1
    failed = 0
    doomed = select(ChunkRow.id, ChunkRow.worker_deaths).where(held, deaths > max_deaths)
    for chunk_id, before in s.execute(doomed).all():
        failed += count(
            s,
            update(ChunkRow)
            .where(ChunkRow.id == chunk_id, held)
            .values(status=FAILED, lease_owner=None, lease_expires=None, worker_deaths=deaths,
                    attempts=_refunded(), last_error=failed_message(before + 1), last_error_kind=ERROR_WORKER)
            .execution_options(synchronize_session=False),
        )
    return failed


def _requeue(s: Session, held: ColumnElement[bool], owner: str | None, cause: str) -> int:
    return count(
        s,
        update(ChunkRow)
        .where(held)
        .values(status=PENDING, lease_owner=None, lease_expires=None, worker_deaths=ChunkRow.worker_deaths + 1,
                attempts=_refunded(), last_error=died_message(owner, cause)[:2000], last_error_kind=ERROR_WORKER)
        .execution_options(synchronize_session=False),
    )


def _refunded() -> ColumnElement[int]:
    """The claim's attempt given back: the chunk did not fail, its worker did."""
    return case((ChunkRow.attempts > 0, ChunkRow.attempts - 1), else_=0)


def _record_death(s: Session, owner: str | None, chunks_lost: int, cause: str, now: float) -> None:
    if owner is None:
        return
    s.execute(
        update(WorkerRow)
        .where(WorkerRow.id == owner)
        .values(state=WORKER_DEAD, died_at=now, death_cause=cause[:2000],
                chunks_lost=WorkerRow.chunks_lost + chunks_lost)
        .execution_options(synchronize_session=False)
    )
