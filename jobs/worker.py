"""The worker: claim a batch, synthesise it, write each chunk's audio, mark it done; repeat.

Errors are decided by type, and each cause is counted where it belongs (:mod:`jobs.store.queue`):
- out of memory (``MemoryError``, torch's ``OutOfMemoryError``, "out of memory" runtime errors):
  the batch is split and retried with a smaller engine batch; a chunk that does not fit alone counts
  an attempt (failed after ``max_attempts``);
- :class:`renderer.errors.TextError` (the chunk's text cannot be spoken): that chunk is ``failed`` at
  once (kind ``input``), the rest of the book continues; another ``RendererError`` for one chunk
  counts an attempt of it (kind ``engine``; a batch-level error is split until the culprit is isolated);
- ``OSError`` while writing audio (disk full, I/O error): every chunk this worker holds is released
  (refunded: not their fault), and :class:`AudioWriteError` stops the worker with a clear message;
- anything else: leases are released counting the attempt (kind ``engine``) and the error propagates;
- the worker itself dying (kill, crash, power loss, lost lease) is counted against the worker by
  whoever finds it dead, not against its chunks (:mod:`jobs.store.deaths`); a chunk whose workers
  keep dying is rendered alone, then failed.

SIGINT/SIGTERM: the first one abandons the batch in hand at once (the engine is interrupted between
two of its steps; chunks already written are kept, the rest released) and the worker stops; a second
one interrupts whatever runs (leases are still released).
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from jobs.audio_files import DEFAULT_SAMPLE_RATE, AudioWriter, chunk_relpath, write_chunk_audio, write_failure_message
from jobs.db import ERROR_ENGINE, ERROR_INPUT
from jobs.engines import RenderSetup, SetupCache
from jobs.errors import JobsError, StoreError
from jobs.events import JobHooks
from jobs.planner import DEFAULT_CHARS_PER_SECOND
from jobs.prefetch import FrontendPrefetch
from jobs.store import DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_DEATHS, BatchRecord, BookInfoRow, ClaimedChunk, Store
from jobs.take_loop import TakeKeeper, request_key
from renderer.errors import RendererError, TextError

if TYPE_CHECKING:
    from renderer.engine.api import SynthesisRequest, SynthesisResult
    from renderer.takes import Transcriber

log = logging.getLogger(__name__)

STAGES = ("prefill", "decode", "vocode")


class WorkerError(JobsError):
    """The worker stopped; its chunks were released and a rerun resumes."""


class AudioWriteError(WorkerError):
    """Chunk audio could not be written (disk full, I/O error)."""


class StopRendering(BaseException):  # noqa: N818 - a control-flow signal, like KeyboardInterrupt
    """Raised by the first SIGINT/SIGTERM inside an abandonable section: the batch in hand is given up."""


#: Rows the first claim plans for when the batch size is automatic (the engine reports its own after).
AUTO_FIRST_CLAIM_ROWS = 32
#: Seconds between two looks for dead workers on this host (their chunks are queued again at once).
REAP_INTERVAL_S = 5.0


@dataclass(frozen=True)
class WorkerOptions:
    """batch_size: rows the engine decodes at once (0 = the engine's automatic choice); a claim takes
    ``claim_factor`` times as many chunks so continuous batching can refill finished rows.
    lease_s: lease length (renewed every third).
    max_attempts: renders of a chunk ending in an exception after which it is failed. max_deaths: worker
    deaths while holding a chunk after which it is rendered alone (one more death fails it). follow: wait for
    new work forever. book_id: only this book. wait_for_others: when nothing is pending, wait while
    other workers still hold chunks (``render run`` does, to export a complete book)."""

    batch_size: int = 0
    claim_factor: int = 2
    lease_s: float = 120.0
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_deaths: int = DEFAULT_MAX_DEATHS
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
        if self.max_deaths < 0:
            raise JobsError(f"max worker deaths must be >= 0, got {self.max_deaths}")
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


def reap_dead_local_workers(store: Store, max_deaths: int = DEFAULT_MAX_DEATHS, own_id: str | None = None) -> int:
    """Workers on this host whose process is gone give their leases back now (no wait for expiry); the
    death is recorded against the worker, not its chunks."""
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
            cause = f"process {worker.pid} is gone (killed or crashed)"
            released += store.workers.mark_dead(worker.id, cause, max_deaths)
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
        self._abandonable = False  # inside the engine or the frontend: a stop signal may abandon the batch
        self._last_reap = 0.0
        self._book_id: int | None = None  # the book of the batch in hand
        self._sample_rate = DEFAULT_SAMPLE_RATE  # of the audio the engine makes (known after the first result)
        self._prefetch = FrontendPrefetch()
        self.takes = TakeKeeper(store, self.id, self.audio_root, transcriber)

    def request_stop(self) -> None:
        """Stop after the step in hand: the rest of the batch is released (a stop signal abandons it at once)."""
        self._stop_requested = True

    # ------------------------------------------------------------------------------ main loop

    def run(self) -> WorkerReport:
        self.store.workers.register(self.id, os.getpid(), process_start_time())
        self._reap()
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
            raise AudioWriteError(self._write_failure(exc)) from exc
        except (KeyboardInterrupt, StopRendering, StoreError):  # nobody's failure: the claims are refunded
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
            self.store.queue.requeue_expired(self.options.max_deaths)
            if time.monotonic() - self._last_reap > REAP_INTERVAL_S:
                self._reap()
            batch = self.store.queue.claim_batch(
                self.id,
                self._claim_size,
                self.options.lease_s,
                exclude_books=list(self.report.skipped_books),
                book_id=self.options.book_id,
                max_deaths=self.options.max_deaths,
            )
            if not batch:
                if self._should_wait():
                    self._reap()
                    time.sleep(self.options.poll_s)
                    continue
                return
            self.hooks.claimed(self.id, [c.id for c in batch])
            self._process(batch)
            self.report.batches += 1
            if self.on_batch is not None:
                self.on_batch(self.report)

    def _reap(self) -> None:
        self._last_reap = time.monotonic()
        reap_dead_local_workers(self.store, self.options.max_deaths, own_id=self.id)

    @property
    def _claim_size(self) -> int:
        """Chunks per claim: ``claim_factor`` engine batches, so finished rows can be refilled."""
        return self._engine_rows * self.options.claim_factor

    def _write_failure(self, exc: OSError) -> str:
        """What went wrong writing chunk audio, where, and (disk full) how much room the rest needs."""
        folder = Path(exc.filename).parent if exc.filename else self.audio_root
        if exc.errno != errno.ENOSPC or self._book_id is None:
            return write_failure_message(exc, folder)
        try:
            left = self.store.status.audio_estimate(self._book_id)
        except JobsError:
            return write_failure_message(exc, folder)
        seconds = left.chars_left * (left.seconds_per_char or 1.0 / DEFAULT_CHARS_PER_SECOND)
        needed = int(seconds * self._sample_rate * 4 * 1.05)  # float32 samples, 5% for headers and estimate error
        return write_failure_message(exc, folder, needed, left.chunks_left)

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
            log.warning("signal %d: abandoning the batch in hand (finished chunks are kept) and stopping", signum)
            self._stop_requested = True
            if self._abandonable:
                self._abandonable = False
                raise StopRendering

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore

    @contextmanager
    def _may_abandon(self) -> Iterator[None]:
        """A section a stop signal interrupts at once (engine steps, text preparation): nothing in it
        writes to the store or to disk, so giving it up loses only work that is redone later."""
        if self._stop_requested:
            raise StopRendering
        self._abandonable = True
        try:
            yield
        finally:
            self._abandonable = False

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
        self._book_id = book.id
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
        try:
            requests = self._frontend(setup, groups, figures)
            self._prefetch_next(setup)
            self._synthesize(book, requests, groups, figures)
        except StopRendering:
            self._release_all(refund=True, error=None)  # what is left of the batch; written chunks stay done
            return
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
        with self._may_abandon():
            prepared = prepare_requests(setup.frontend, todo)
        ready.update(prepared.requests)
        requests = []
        for key, chunks in groups.items():
            text_key = chunks[0].render_key
            if text_key in prepared.errors:
                self._fail(chunks, prepared.errors[text_key], ERROR_INPUT)
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
            results = iter(setup.engine.synthesize(list(waiting.values()), setup.options.sampling))
            while not self._stop_requested:
                with self._may_abandon():
                    result = next(results, None)
                if result is None:
                    break
                request = waiting.pop(result.key)
                self._finish(book, setup, result, len(request.phone_ids), groups[result.key], figures)
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
        chunks = groups[requests[0].key]
        if isinstance(exc, TextError):
            self._fail(chunks, f"text error: {exc}", ERROR_INPUT)
            return
        reason = f"out of memory even when rendered alone ({exc})" if oom else f"{type(exc).__name__}: {exc}"
        # An exception while rendering it: one attempt; failed once it used them all (kind engine).
        self.store.queue.release_chunks(self.id, [c.id for c in chunks], refund=False, error=reason,
                                        max_attempts=self.options.max_attempts)
        log.warning("chunk %s: %s", ", ".join(str(c.id) for c in chunks), reason)
        self.report.failed += sum(1 for c in chunks if c.attempts >= self.options.max_attempts)

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
        self._sample_rate = int(result.sample_rate)
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

    def _fail(self, chunks: list[ClaimedChunk], reason: str, kind: str = ERROR_ENGINE) -> None:
        for chunk in chunks:
            if self.store.queue.fail_chunk(self.id, chunk.id, reason, kind):
                self.report.failed += 1

    def _release_keys(self, keys: list[str], groups: dict[str, list[ClaimedChunk]]) -> None:
        ids = [c.id for k in keys for c in groups.get(k, [])]
        self.store.queue.release_chunks(self.id, ids, refund=True)
