"""Pipeline overlap: the vocoder renders finished chunks while the GPT keeps decoding.

Two stages share one process and one pool of torch intra-op threads. The pool size is process-wide
(``torch.set_num_threads``), so :class:`ThreadBudget` gives each *busy* stage an equal share: with two
threads, one each while both run, both to whichever stage is still running. The cores are therefore never
oversubscribed, and a stage that scales badly with threads (the GPT step at large batch is bound by
memory traffic, not arithmetic) leaves its second core to a stage that uses it well (the vocoder's
convolutions). Re-sizing the pool costs a few milliseconds, so it happens only when a stage starts or
stops a job (a vocoder job is a chunk: seconds of work).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

import torch

Job = TypeVar("Job")
Out = TypeVar("Out")


class ThreadBudget:
    """Splits ``total`` torch threads evenly between the stages that are busy right now.

    ``total=None`` follows the process: whenever no stage is busy it re-reads ``torch.get_num_threads()``
    (so a later ``torch.set_num_threads`` by the application is respected).
    """

    def __init__(self, total: int | None = None) -> None:
        self._follow = total is None
        self.total = max(1, int(total if total is not None else torch.get_num_threads()))
        self._busy = 0
        self._lock = threading.Lock()
        self.resizes = 0

    @contextmanager
    def busy(self) -> Iterator[None]:
        """Mark one stage busy for the duration of the block."""
        self._change(+1)
        try:
            yield
        finally:
            self._change(-1)

    def _change(self, delta: int) -> None:
        with self._lock:
            if self._follow and self._busy == 0:
                self.total = max(1, torch.get_num_threads())
            self._busy += delta
            want = max(1, self.total // max(1, self._busy))
            if torch.get_num_threads() != want:
                torch.set_num_threads(want)
                self.resizes += 1


_SHARED: ThreadBudget | None = None
_SHARED_LOCK = threading.Lock()


def shared_budget() -> ThreadBudget:
    """The process's one budget: every stage that runs torch work concurrently (GPT decode, vocoder,
    the jobs worker's frontend prefetch) must share it, or the cores are oversubscribed."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = ThreadBudget()
        return _SHARED


@dataclass
class _Done(Generic[Out]):
    output: Out | None = None
    error: BaseException | None = None


_STOP = object()


class BackgroundStage(Generic[Job, Out]):
    """Runs ``work(job)`` for submitted jobs on one background thread, in submission order.

    ``ready()`` returns the outputs finished so far without waiting; ``finish()`` waits for the rest.
    An exception raised by ``work`` is re-raised in the caller's thread by the next ``ready``/``finish``.
    """

    def __init__(self, work: Callable[[Job], Out], budget: ThreadBudget | None, name: str = "stage") -> None:
        self._work = work
        self._budget = budget
        self._jobs: queue.Queue[object] = queue.Queue()
        self._outputs: queue.Queue[_Done[Out]] = queue.Queue()
        self._pending = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        self._pending += 1
        self._jobs.put(job)

    @property
    def pending(self) -> int:
        """Jobs submitted whose output has not been taken yet."""
        return self._pending

    def ready(self) -> list[Out]:
        out: list[Out] = []
        while True:
            try:
                done = self._outputs.get_nowait()
            except queue.Empty:
                return out
            out.append(self._take(done))

    def finish(self) -> Iterator[Out]:
        while self._pending:
            yield self._take(self._outputs.get())

    def close(self) -> None:
        """Stop the thread after the job in hand (jobs not started are dropped)."""
        while True:
            try:
                self._jobs.get_nowait()
            except queue.Empty:
                break
        self._jobs.put(_STOP)
        self._thread.join()

    def _take(self, done: _Done[Out]) -> Out:
        self._pending -= 1
        if done.error is not None:
            raise done.error
        assert done.output is not None
        return done.output

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _STOP:
                return
            try:
                if self._budget is None:
                    output = self._work(job)  # type: ignore[arg-type]
                else:
                    with self._budget.busy():
                        output = self._work(job)  # type: ignore[arg-type]
                self._outputs.put(_Done(output=output))
            except BaseException as exc:  # handed to the caller's thread
                self._outputs.put(_Done(error=exc))
