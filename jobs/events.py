"""Named moments in a job's life, told to a :class:`JobHooks` object (the product's does nothing).

Crash and concurrency tests pass their own through :class:`jobs.services.Services` (``tests/fakes``): to
stop a process at a named point and kill it there, to hold workers until all are ready, to log claims.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

#: plan: inside the transaction that stores a plan; claim: inside the claim transaction; synth: a chunk's
#: audio made, nothing written; rename: its file in place, the chunk not yet marked done; done: a chunk
#: marked done; export: chapter files in the staging folder; publish: one exported file moved into place.
Point = Literal["plan", "claim", "synth", "rename", "done", "export", "publish"]


class JobHooks:
    """Observer of a job's moments; every method is a no-op here."""

    def at(self, point: Point) -> None:
        """The job passes ``point`` (see :data:`Point`)."""

    def worker_started(self, worker_id: str) -> None:
        """A worker registered itself and is about to claim its first batch."""

    def claimed(self, worker_id: str, chunk_ids: Sequence[int]) -> None:
        """A worker leased these chunks (called after every claim that got some)."""
