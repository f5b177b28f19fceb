"""The worker: claim a batch, synthesise it, write each chunk's audio, mark it done; repeat.

Errors are decided by type:
- out of memory (``MemoryError``, torch's ``OutOfMemoryError``, "out of memory" runtime errors):
  the batch is split and retried with a smaller engine batch; a chunk that does not fit alone fails;
- :class:`renderer.errors.RendererError` for one chunk (e.g. ``TextError``): that chunk is
  ``failed`` with the reason, the rest of the book continues (a batch-level error is split until
  the culprit is isolated);
- ``OSError`` while writing audio (disk full, I/O error): every chunk this worker holds is
  released, and :class:`AudioWriteError` stops the worker with a clear message (rerun resumes);
- anything else: leases are released without refunding the attempt and the error propagates, so a
  chunk that keeps crashing workers ends ``failed`` after ``max_attempts`` instead of looping.

SIGINT/SIGTERM: the worker finishes the chunk in hand, releases the rest of the batch and stops;
a second signal interrupts at once (leases are still released).
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from jobs.audio_files import AudioWriter, chunk_relpath, write_chunk_audio
from jobs.engines import RenderSetup, SetupCache
from jobs.errors import JobsError
from jobs.events import JobHooks
from jobs.prefetch import FrontendPrefetch
from jobs.store import DEFAULT_MAX_ATTEMPTS, BatchRecord, BookInfoRow, ClaimedChunk, Store
from jobs.take_loop import TakeKeeper, request_key
from renderer.errors import RendererError

if TYPE_CHECKING:
    from renderer.engine.api import SynthesisRequest, SynthesisResult
    from renderer.takes import Transcriber

log = logging.getLogger(__name__)

STAGES = ("prefill", "decode", "vocode")


class WorkerError(JobsError):
    """The worker stopped; its chunks were released and a rerun resumes."""


class AudioWriteError(WorkerError):
    """Chunk audio could not be written (disk full, I/O error)."""


#: Rows the first claim plans for when the batch size is automatic (the engine reports its own after).
AUTO_FIRST_CLAIM_ROWS = 32


@dataclass(frozen=True)
class WorkerOptions:
    """batch_size: rows the engine decodes at once (0 = the engine's automatic choice); a claim takes
    ``claim_factor`` times as many chunks so continuous batching can refill finished rows.
    lease_s: lease length (renewed every third).
    max_attempts: claims after which a chunk that keeps killing workers is failed. follow: wait for
    new work forever. book_id: only this book. wait_for_others: when nothing is pending, wait while
    other workers still hold chunks (``render run`` does, to export a complete book)."""

    batch_size: int = 0
    claim_factor: int = 2
    lease_s: float = 120.0
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    follow: bool = False
    poll_s: float = 1.0
    book_id: int | None = None
    wait_for_others: bool = False
    handle_signals: bool = True

    def __post_init__(self) -> None:
        if self.batch_size < 0:
            raise JobsError(f"batch size must be 0 (automatic) or >= 1, got {self.batch_size}")
        if self.claim_factor < 1:
            raise JobsError(f"claim factor must be >= 1, got {self.claim_factor}")
        if self.lease_s < 1:
            raise JobsError(f"lease must be >= 1 s, got {self.lease_s}")
        if self.max_attempts < 1:
            raise JobsError(f"max attempts must be >= 1, got {self.max_attempts}")
        if self.poll_s <= 0:
            raise JobsError(f"poll interval must be > 0, got {self.poll_s}")


@dataclass
class BatchFigures:
    started_at: float = field(default_factory=time.time)
    finished_at: float = 0.0
    claimed: int = 0  # chunks in the claim; batch fill = claimed / capacity
    capacity: int = 0  # chunks the claim could have held
    chunks: int = 0
    tokens: int = 0
    audio_s: float = 0.0
    frontend_s: float = 0.0
    write_s: float = 0.0
    stages: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))


@dataclass
class WorkerReport:
    worker_id: str
    batches: int = 0
    done: int = 0
    failed: int = 0
    rerolled: int = 0  # takes queued again because their check failed (jobs.takes)
    doubtful: int = 0  # chunks done with a take that is still bad after --max-takes
    audio_s: float = 0.0
    interrupted: bool = False
    skipped_books: dict[int, str] = field(default_factory=dict)
    last_batch: BatchFigures | None = None  # the figures of the latest batch (run metrics read them)


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    # CUDA says "out of memory"; torch's CPU allocator "can't allocate memory"
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def process_start_time(pid: int | None = None) -> float:
    import psutil

    return float(psutil.Process(pid or os.getpid()).create_time())


def reap_dead_local_workers(store: Store, max_attempts: int, own_id: str | None = None) -> int:
    """Workers on this host whose process is gone give their leases back now (no wait for expiry)."""
    import psutil

    released = 0
    for worker in store.workers.local():
        if worker.id == own_id:
            continue
        try:
            proc = psutil.Process(worker.pid)
            alive = abs(proc.create_time() - worker.process_started_at) < 1.0 and proc.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            alive = False
        if not alive:
            released += store.workers.mark_dead(worker.id, max_attempts)
    return released


class _Heartbeat(threading.Thread):
    """Renews this worker's leases every third of the lease while a batch is being rendered."""

    def __init__(self, store: Store, worker_id: str, lease_s: float) -> None:
        super().__init__(name="lease-heartbeat", daemon=True)
        self.store, self.worker_id, self.lease_s = store, worker_id, lease_s
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(max(0.2, self.lease_s / 3)):
            try:
                self.store.queue.renew_leases(self.worker_id, self.lease_s)
            except Exception as exc:  # noqa: BLE001 - a missed beat is retried; expiry is the safety net
                log.warning("lease renewal failed: %s", exc)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


class Worker:
    """Renders chunks from a store until the queue is empty (or forever with ``follow``)."""

    def __init__(
        self,
        store: Store,
        audio_root: Path,
        setups: SetupCache,
        options: WorkerOptions = WorkerOptions(),
        on_batch: Callable[[WorkerReport], None] | None = None,
        worker_id: str | None = None,
        *,
        hooks: JobHooks = JobHooks(),
        write_audio: AudioWriter = write_chunk_audio,
        transcriber: Transcriber | None = None,
    ) -> None:
        self.store = store
        self.audio_root = Path(audio_root)
        self.setups = setups
        self.options = options
        self.on_batch = on_batch
        self.hooks = hooks
        self.write_audio = write_audio
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.batch_size = options.batch_size  # 0 = automatic: the engine's choice, known once it is built
        self._engine_rows = options.batch_size or AUTO_FIRST_CLAIM_ROWS
        self.report = WorkerReport(worker_id=self.id)
        self._stop_requested = False
        self._prefetch = FrontendPrefetch()
        self.takes = TakeKeeper(store, self.id, self.audio_root, transcriber)

    def request_stop(self) -> None:
        """Finish the chunk in hand, release the rest, stop (what the first SIGINT/SIGTERM does)."""
        self._stop_requested = True

    # ------------------------------------------------------------------------------ main loop

    def run(self) -> WorkerReport:
        self.store.workers.register(self.id, os.getpid(), process_start_time())
        reap_dead_local_workers(self.store, self.options.max_attempts, own_id=self.id)
        heartbeat = _Heartbeat(self.store, self.id, self.options.lease_s)
        heartbeat.start()
        restore = self._install_signals()
        try:
            self.hooks.worker_started(self.id)
            self._loop()
            self.report.interrupted = self._stop_requested
            return self.report
        except OSError as exc:
            self._release_all(refund=True, error=f"released after an I/O error: {exc}")
            raise AudioWriteError(_io_message(exc)) from exc
        except KeyboardInterrupt:
            self._release_all(refund=True, error=None)
            raise
        except BaseException as exc:
            self._release_all(refund=False, error=f"worker error: {type(exc).__name__}: {exc}")
            raise
        finally:
            self._prefetch.close()
            heartbeat.stop()
            restore()
            try:
                self.store.workers.set_state(self.id, "stopped")
            except JobsError as exc:
                log.warning("could not record that worker %s stopped: %s", self.id, exc)

    def _loop(self) -> None:
        while not self._stop_requested:
            self.store.queue.requeue_expired(self.options.max_attempts)
            batch = self.store.queue.claim_batch(
                self.id,
                self._claim_size,
                self.options.lease_s,
                exclude_books=list(self.report.skipped_books),
                book_id=self.options.book_id,
            )
            if batch:
                self.hooks.claimed(self.id, [c.id for c in batch])
            batch = self._isolate_suspects(batch)
            if not batch:
                if self._should_wait():
                    time.sleep(self.options.poll_s)
                    continue
                return
            self._process(batch)
            self.report.batches += 1
            if self.on_batch is not None:
                self.on_batch(self.report)

    @property
    def _claim_size(self) -> int:
        """Chunks per claim: ``claim_factor`` engine batches, so finished rows can be refilled."""
        return self._engine_rows * self.options.claim_factor

    def _isolate_suspects(self, batch: list[ClaimedChunk]) -> list[ClaimedChunk]:
        """A chunk claimed before by a worker that died may be what killed it: render it alone,
        so that if it crashes again only its own attempt count grows."""
        suspects = [c for c in batch if c.attempts > 1]
        if not suspects or len(batch) == 1:
            return batch
        keep = suspects[0]
        self.store.queue.release_chunks(self.id, [c.id for c in batch if c.id != keep.id], refund=True)
        return [keep]

    def _should_wait(self) -> bool:
        if self.options.follow:
            return True
        if self.options.wait_for_others:
            counts = self.store.status.counts(self.options.book_id)
            return counts["leased"] > 0
        return False

    def _release_all(self, *, refund: bool, error: str | None) -> None:
        try:
            self.store.queue.release_chunks(self.id, refund=refund, error=error, max_attempts=self.options.max_attempts)
        except JobsError as exc:  # the store is unreachable: leases expire on their own
            log.warning("could not release leases of %s: %s", self.id, exc)

    def _install_signals(self) -> Callable[[], None]:
        if not self.options.handle_signals or threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handler(signum: int, _frame: FrameType | None) -> None:
            if self._stop_requested:
                raise KeyboardInterrupt
            log.warning("signal %d: finishing the current chunk, then stopping", signum)
            self._stop_requested = True

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore

    # ------------------------------------------------------------------------------ one batch

    def _book(self, book_id: int) -> BookInfoRow:
        # Read per batch, not cached: a book re-planned with another voice or options must not be
        # rendered with the old ones by a long-running (--follow) worker.
        return self.store.status.book(book_id)

    def _setup(self, book: BookInfoRow) -> RenderSetup:
        setup = self.setups.setup(book.voice_name, book.voice_id, book.options.get("sampling", {}), self.batch_size)
        self._engine_rows = setup.batch_size
        return setup

    def _process(self, batch: list[ClaimedChunk]) -> None:
        book = self._book(batch[0].book_id)
        figures = BatchFigures(claimed=len(batch), capacity=self._claim_size)
        try:
            setup = self._setup(book)
        except RendererError as exc:
            self.store.queue.release_chunks(self.id, [c.id for c in batch], refund=True, error=str(exc))
            if self.options.book_id is not None:
                raise
            log.warning("skipping book %d (%s): %s", book.id, book.title, exc)
            self.report.skipped_books[book.id] = str(exc)
            return
        self.takes.begin(book, self.setups.voice(book.voice_name).voice)
        groups: dict[str, list[ClaimedChunk]] = {}  # by request key: chunks of one text share a take
        for chunk in batch:
            groups.setdefault(request_key(chunk), []).append(chunk)
        requests = self._frontend(setup, groups, figures)
        self._prefetch_next(setup)
        self._synthesize(book, requests, groups, figures)
        finished = figures.finished_at = time.time()
        self.report.last_batch = figures
        self.store.stats.record_batch(BatchRecord(
            worker_id=self.id,
            book_id=book.id,
            started_at=figures.started_at,
            finished_at=finished,
            batch_size=len(batch),
            chunks=figures.chunks,
            tokens=figures.tokens,
            audio_s=figures.audio_s,
            frontend_s=figures.frontend_s,
            prefill_s=figures.stages["prefill"],
            decode_s=figures.stages["decode"],
            vocode_s=figures.stages["vocode"],
            write_s=figures.write_s,
        ))

    def _frontend(
        self, setup: RenderSetup, groups: dict[str, list[ClaimedChunk]], figures: BatchFigures
    ) -> list[SynthesisRequest]:
        """One request per distinct request key (render key and take; its text prepared in the background
        while the previous batch rendered, where possible); unspeakable text fails its chunks."""
        from dataclasses import replace

        from renderer.engine.text_requests import prepare_requests

        started = time.perf_counter()
        ready: dict[str, SynthesisRequest] = {}  # by render key: the text is the same for every take
        todo: dict[str, tuple[str, str]] = {}
        for chunks in groups.values():
            text_key = chunks[0].render_key
            prefetched = self._prefetch.take(text_key)
            if prefetched is not None:
                ready[text_key] = prefetched
            elif text_key not in ready:
                todo[text_key] = (chunks[0].normalized, chunks[0].language)
        prepared = prepare_requests(setup.frontend, todo)
        ready.update(prepared.requests)
        requests = []
        for key, chunks in groups.items():
            text_key = chunks[0].render_key
            if text_key in prepared.errors:
                self._fail(chunks, prepared.errors[text_key])
            elif text_key in ready:
                requests.append(replace(ready[text_key], key=key))
        figures.frontend_s += time.perf_counter() - started
        return requests

    def _prefetch_next(self, setup: RenderSetup) -> None:
        """Start preparing the text of the chunks the next claim will most likely take."""
        if self._stop_requested:
            return
        try:
            upcoming = self.store.queue.peek_pending(
                self._claim_size,
                exclude_books=list(self.report.skipped_books),
                book_id=self.options.book_id,
            )
        except JobsError as exc:  # only an optimisation: the next claim prepares its own text
            log.warning("could not look ahead at the next chunks: %s", exc)
            return
        self._prefetch.start(setup.frontend, upcoming)

    def _synthesize(
        self,
        book: BookInfoRow,
        requests: list[SynthesisRequest],
        groups: dict[str, list[ClaimedChunk]],
        figures: BatchFigures,
    ) -> None:
        if not requests:
            return
        if self._stop_requested:
            self._release_keys([r.key for r in requests], groups)
            return
        waiting = {r.key: r for r in requests}
        try:
            setup = self._setup(book)
            for result in setup.engine.synthesize(list(waiting.values()), setup.options.sampling):
                request = waiting.pop(result.key)
                self._finish(book, setup, result, len(request.phone_ids), groups[result.key], figures)
                if self._stop_requested:
                    break
        except Exception as exc:
            if not (is_out_of_memory(exc) or isinstance(exc, RendererError)):
                raise
            self._recover(book, exc, list(waiting.values()), groups, figures)
            return
        if waiting:
            self._release_keys(list(waiting), groups)

    def _recover(
        self,
        book: BookInfoRow,
        exc: Exception,
        requests: list[SynthesisRequest],
        groups: dict[str, list[ClaimedChunk]],
        figures: BatchFigures,
    ) -> None:
        """Split a failed batch: OOM shrinks the engine batch; a chunk error is isolated, then failed."""
        oom = is_out_of_memory(exc)
        if len(requests) > 1:
            if oom:
                self.batch_size = max(1, min(self._engine_rows, len(requests)) // 2)
                log.warning("out of memory; retrying with batch size %d", self.batch_size)
            half = max(1, len(requests) // 2) if oom else 1
            for start in range(0, len(requests), half):
                self._synthesize(book, requests[start : start + half], groups, figures)
            return
        key = requests[0].key
        if oom:
            self._fail(groups[key], f"out of memory even when rendered alone ({exc})")
        else:
            self._fail(groups[key], f"{type(exc).__name__}: {exc}")

    def _finish(
        self,
        book: BookInfoRow,
        setup: RenderSetup,
        result: SynthesisResult,
        n_phones: int,
        chunks: list[ClaimedChunk],
        figures: BatchFigures,
    ) -> None:
        """Write one result's audio, score the take and record it for its chunks (those sharing its render
        key and take): done, or queued again for the next take (:mod:`jobs.take_loop`)."""
        self.hooks.at("synth")
        relpath = chunk_relpath(book.id, result.key)
        started = time.perf_counter()
        self.write_audio(self.audio_root / relpath, result.audio, result.sample_rate)
        figures.write_s += time.perf_counter() - started
        self.hooks.at("rename")
        duration_s = len(result.audio) / float(result.sample_rate)
        timings = {k: float(v) for k, v in dict(result.timings or {}).items()}
        n_tokens = len(result.tokens)
        scored = self.takes.score(chunks[0], result, n_phones, setup.options.sampling.seed)
        for chunk in chunks:
            outcome = self.takes.keep(chunk, scored, relpath, duration_s, n_tokens, n_phones, timings)
            if not outcome.recorded or outcome.decision is None:
                log.warning("chunk %d was taken over or re-planned; its result is not recorded", chunk.id)
            elif outcome.decision.reroll:
                self.report.rerolled += 1
            else:
                self.report.done += 1
                self.report.doubtful += int(outcome.decision.doubtful)
                figures.chunks += 1
            self.hooks.at("done")
        figures.tokens += n_tokens
        figures.audio_s += duration_s
        for stage in STAGES:
            figures.stages[stage] += float(timings.get(stage, 0.0))
        self.report.audio_s += duration_s

    def _fail(self, chunks: list[ClaimedChunk], reason: str) -> None:
        for chunk in chunks:
            if self.store.queue.fail_chunk(self.id, chunk.id, reason):
                self.report.failed += 1

    def _release_keys(self, keys: list[str], groups: dict[str, list[ClaimedChunk]]) -> None:
        ids = [c.id for k in keys for c in groups.get(k, [])]
        self.store.queue.release_chunks(self.id, ids, refund=True)


def _io_message(exc: OSError) -> str:
    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno == errno.ENOSPC:
        return (
            f"disk full while writing chunk audio{where}; finished chunks are kept and the rest was "
            "released: free some space and run the same command again"
        )
    return f"I/O error while writing chunk audio{where}: {exc.strerror or exc}; run the same command again to resume"
