"""The job store: every query of the application lives in this package, one module per concern.

``Store(url)`` opens the database once and offers its parts; a caller uses the part it needs:

- ``store.plans`` (:mod:`.plans`): store a book's plan idempotently;
- ``store.queue`` (:mod:`.queue`): claims, leases, completion, failure, release, retries;
- ``store.workers`` (:mod:`.workers`): the worker registry (heartbeats, dead workers' leases:
  :mod:`.deaths`);
- ``store.status`` (:mod:`.status`): books, chapters, chunk counts and failures as they stand;
- ``store.stats`` (:mod:`.stats`): per-batch figures and throughput;
- ``store.takes`` (:mod:`.takes`): every take of a chunk, the re-roll loop, the review's doubtful chunks.

Each public method is one transaction (:meth:`.session.Database.transaction`); database failures become
:class:`jobs.errors.StoreError`. The tables are defined in :mod:`jobs.db`; nothing outside this package
issues SQL.
"""

from __future__ import annotations

from jobs.events import JobHooks
from jobs.records import (
    BatchRecord,
    BookInfoRow,
    ChapterState,
    ClaimedChunk,
    Failure,
    ManifestChunk,
    RetryReport,
    SyncReport,
    Throughput,
)
from jobs.store.deaths import DEFAULT_MAX_DEATHS
from jobs.store.plans import PlanSync
from jobs.store.queue import DEFAULT_MAX_ATTEMPTS, ChunkQueue
from jobs.store.session import Database
from jobs.store.stats import BatchStats
from jobs.store.status import StatusQueries
from jobs.store.takes import TakeStore
from jobs.store.workers import LocalWorker, WorkerInfo, WorkerRegistry

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_DEATHS",
    "BatchRecord",
    "BookInfoRow",
    "ChapterState",
    "ClaimedChunk",
    "Failure",
    "LocalWorker",
    "ManifestChunk",
    "RetryReport",
    "Store",
    "SyncReport",
    "Throughput",
    "WorkerInfo",
]


class Store:
    """The job store behind one URL (``sqlite:///…/render.db`` or ``postgresql+psycopg://…``).

    ``hooks`` is told when a migration, a plan or a claim is inside its transaction (crash tests stop there).
    """

    def __init__(self, url: str, *, hooks: JobHooks = JobHooks()) -> None:
        self.db = Database(url, hooks)
        self.plans = PlanSync(self.db, hooks)
        self.queue = ChunkQueue(self.db, hooks)
        self.workers = WorkerRegistry(self.db)
        self.status = StatusQueries(self.db)
        self.stats = BatchStats(self.db)
        self.takes = TakeStore(self.db)

    @property
    def url(self) -> str:
        return self.db.url

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
