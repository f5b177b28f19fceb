"""The book stage of ``render bench``: a fixed book rendered by the real worker path, start to finish.

``samples/bench-book.md`` (English and Chinese public-domain text, 224 chunks; ``--quick``: its first four
chapters, 32 chunks) is planned into a fresh store and rendered by :func:`jobs.pipeline.run_book`, exactly
as ``render BOOK --voice NAME`` does: claims, continuous batching, the frontend prefetch, chunk files,
then the export (MP3, ACX preset) with its report.

Random weights never emit EOS, so each chunk decodes a fixed number of semantic tokens proportional to its
phones (:func:`tokens_for`): the rows are teacher-forced with random tokens (sampling still runs for every
token), through a bench-side engine factory injected with :class:`jobs.services.Services`; the product is
not changed. The rule is the pace of narrated speech (:data:`TOKENS_PER_PHONE`, the derivation is there).

Where the time goes is measured exactly, without sampling: :class:`ActivityClock` reads the wall clock and
the process's CPU time (all threads) whenever the worker's thread moves from one activity to another
(planning, text frontend, prefill, decode steps, the decode loop's host work, vocoder, writing chunk
files, the store, export). Idle CPU of an activity is ``threads x wall - CPU``: core time nobody used.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from typing import Any

import numpy as np

from jobs.bench.measure import Figure, RssPeak
from jobs.engines import EngineSettings, RendererFactory
from jobs.events import JobHooks, Point
from jobs.planner import VoiceRef
from renderer.tuning import EngineTuning

#: The fixed book (see its header for the sources) and the chapters ``--quick`` renders.
BOOK_PATH = Path(__file__).resolve().parents[2] / "samples" / "bench-book.md"
QUICK_CHAPTERS = "1-4"

#: Semantic tokens (25 per second of audio) per phone of the frontend, by language. The pace of narration:
#: * en: 155 words per minute, the pace ACX (Audible) assumes for audiobooks (9,300 words per finished hour),
#:   at 3.57 phones per word (the bench book's English text through this project's G2P, punctuation
#:   symbols included): 9.2 phones/s, so 25 / 9.2 = 2.7 tokens per phone;
#: * zh: 4 characters per second (240 per minute, the pace usually quoted for Mandarin read aloud) at 2.14
#:   phones per character (initial + final, punctuation included; measured on the bench book): 8.6 phones/s,
#:   so 2.9 tokens per phone.
#: Real GPT-SoVITS voices speak at their reference's pace; these give an audiobook's audio per chunk.
TOKENS_PER_PHONE = {"en": 2.7, "zh": 2.9}
#: Semantic tokens per second of audio (1280 samples at 32 kHz each).
TOKENS_PER_SECOND = 25


def tokens_for(n_phones: int, language: str, scale: float = 1.0) -> int:
    """Tokens a chunk of ``n_phones`` target phones decodes in the book stage (``scale``: a shorter book for
    tests of the stage itself)."""
    return max(1, round(scale * TOKENS_PER_PHONE.get(language, TOKENS_PER_PHONE["en"]) * n_phones))


# ------------------------------------------------------------------------------------------ where time goes
@dataclass
class Activity:
    """Wall seconds spent in one activity and the process's CPU seconds (all threads) meanwhile."""

    wall_s: float = 0.0
    cpu_s: float = 0.0
    entries: int = 0
    peak_rss_mb: float = 0.0
    #: seconds this process's threads were ready to run but waited for a core (other processes had them)
    wait_s: float = 0.0


class ActivityClock:
    """Wall and CPU time per activity of one thread (the worker's); other threads' calls are ignored.

    ``push``/``pop`` nest activities (an engine call inside the worker loop); ``switch`` replaces the
    current one. Each change closes the interval of the activity that was running.
    """

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.activities: dict[str, Activity] = {}
        self._stack: list[str] = []
        self._thread: int | None = None
        self._since = (0.0, 0.0)
        self._last_wait: float | None = None

    def start(self, name: str) -> None:
        self._thread = threading.get_ident()
        self._stack = [name]
        self._since = (time.perf_counter(), time.process_time())

    def stop(self) -> None:
        self._close()
        self._stack = []

    @property
    def current(self) -> str | None:
        """The activity running now (read by the memory sampler's thread)."""
        stack = self._stack
        return stack[-1] if stack else None

    def note_rss(self, rss_mb: float) -> None:
        """Sampled while the current activity runs: memory (its peak is kept) and the time the process's
        threads waited for a core since the last sample (``/proc/self/task/*/schedstat``)."""
        name = self.current
        wait = run_queue_wait_s()
        waited, self._last_wait = wait - self._last_wait if self._last_wait is not None else 0.0, wait
        if name is not None:
            act = self.activities.setdefault(name, Activity())
            act.peak_rss_mb = max(act.peak_rss_mb, rss_mb)
            act.wait_s += max(0.0, waited)

    def _mine(self) -> bool:
        return bool(self._stack) and threading.get_ident() == self._thread

    def _close(self) -> None:
        now = (time.perf_counter(), time.process_time())
        if self._stack:
            act = self.activities.setdefault(self._stack[-1], Activity())
            act.wall_s += now[0] - self._since[0]
            act.cpu_s += now[1] - self._since[1]
            act.entries += 1
        self._since = now

    def switch(self, name: str) -> None:
        if self._mine() and self._stack[-1] != name:
            self._close()
            self._stack[-1] = name

    def push(self, name: str) -> bool:
        if not self._mine():
            return False
        self._close()
        self._stack.append(name)
        return True

    def pop(self) -> None:
        self._close()
        self._stack.pop()

    @contextmanager
    def activity(self, name: str) -> Iterator[None]:
        pushed = self.push(name)
        try:
            yield
        finally:
            if pushed:
                self.pop()

    def wrap(self, obj: Any, method: str, name: str) -> None:
        """Count every call of ``obj.method`` (made on the clock's thread) as activity ``name``."""
        inner = getattr(obj, method)

        @wraps(inner)
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.activity(name):
                return inner(*args, **kwargs)

        setattr(obj, method, timed)

    def summary(self) -> dict[str, dict[str, float]]:
        """activity -> wall_s, cpu_s, share of the total wall time, wait_s (ready threads waiting for a core
        that another process held) and idle_cpu_s: threads x wall - CPU - wait, core time left unused."""
        total = sum(a.wall_s for a in self.activities.values()) or 1.0
        return {name: {"wall_s": a.wall_s, "cpu_s": a.cpu_s, "share": a.wall_s / total, "wait_s": a.wait_s,
                       "idle_cpu_s": max(0.0, self.threads * a.wall_s - a.cpu_s - a.wait_s),
                       "peak_rss_mb": a.peak_rss_mb}
                for name, a in sorted(self.activities.items(), key=lambda kv: -kv[1].wall_s)}


def run_queue_wait_s() -> float:
    """Seconds this process's threads have spent ready to run but not running (0 where Linux does not say)."""
    total = 0
    try:
        for task in Path("/proc/self/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue  # a thread that ended meanwhile
    except OSError:
        return 0.0
    return total / 1e9


class BookHooks(JobHooks):
    """Moves the clock between the worker's activities at the job's named moments."""

    def __init__(self, clock: ActivityClock) -> None:
        self.clock = clock
        self.total_chunks = 0
        self.done = 0

    def worker_started(self, worker_id: str) -> None:
        self.clock.switch("worker")

    def at(self, point: Point) -> None:
        if point == "synth":
            self.clock.switch("write chunk files")
        elif point == "rename":
            self.clock.switch("store")
        elif point == "done":
            self.done += 1
            # the last chunk done: what follows (the worker finding the queue empty) leads into the export
            self.clock.switch("export" if self.done >= self.total_chunks > 0 else "worker")
        elif point == "export":
            self.clock.switch("publish")


# ------------------------------------------------------------------------------------------ the engine seam
@dataclass
class BookEngines:
    """The real engine factory, with the bench's tuning, fixed token counts and the clock around every stage."""

    tuning: EngineTuning
    clock: ActivityClock
    token_scale: float = 1.0
    inner: RendererFactory = field(default_factory=RendererFactory)
    engines: list[Any] = field(default_factory=list)
    #: (live rows, slots) of every decode step
    step_rows: list[tuple[int, int]] = field(default_factory=list)

    @property
    def version(self) -> str:
        return self.inner.version

    def load_voice(self, name: str, voices_dir: Path | None) -> VoiceRef:
        return self.inner.load_voice(name, voices_dir)

    def engine(self, voice: VoiceRef, precision: str, batch_size: int | None, settings: EngineSettings) -> Any:
        from renderer.backends import open_engine

        tuning = self.tuning.with_overrides(batch_size=batch_size or self.tuning.batch_size)
        with self.clock.activity("engine load"):
            engine = open_engine(voice.voice, backend=settings.backend, device=settings.device, precision=precision,
                                 tuning=tuning)
        self._instrument(engine)
        self.engines.append(engine)
        return engine

    def _instrument(self, engine: Any) -> None:
        prepare = engine.prepare

        def prepare_fixed_length(request: Any, options: Any) -> Any:
            row = prepare(request, options)
            n_tokens = tokens_for(len(request.phone_ids), request.language, self.token_scale)
            row.forced = np.random.default_rng(row.seed).integers(0, 1024, n_tokens)
            return row

        engine.prepare = prepare_fixed_length
        synthesize = engine.synthesize
        clock = self.clock

        def synthesize_timed(requests: Any, options: Any) -> Iterator[Any]:
            results = synthesize(requests, options)
            while True:
                with clock.activity("decode loop (host)"):
                    result = next(results, None)
                if result is None:
                    return
                yield result

        engine.synthesize = synthesize_timed
        backend = engine.backend
        step = backend.step
        rows = self.step_rows

        def counted_step(inputs: Any, *args: Any, **kwargs: Any) -> Any:
            rows.append((int(np.count_nonzero(inputs.cache_lens)), len(inputs.cache_lens)))
            return step(inputs, *args, **kwargs)

        backend.step = counted_step
        for method, name in (("prefill", "prefill"), ("step", "decode steps"), ("vocode", "vocoder"),
                             ("start", "KV cache"), ("ensure_capacity", "KV cache"), ("compact", "KV cache"),
                             ("release", "KV cache")):
            if hasattr(backend, method):
                self.clock.wrap(backend, method, name)

    def frontend(self, voice: VoiceRef, device: str, bert_dir: Path | None = None) -> Any:
        frontend = self.inner.frontend(voice, device, bert_dir)
        for method in ("phonemize", "bert_features"):
            self.clock.wrap(frontend, method, "text frontend")
        return frontend

    def chunk(self, blocks: list[Any], language: str) -> Sequence[Any]:
        return self.inner.chunk(blocks, language)


# ------------------------------------------------------------------------------------------ the stage
@dataclass
class BookRun:
    """What one rendering of the book gave."""

    wall_s: float
    audio_s: float
    chunks: int
    tokens: int
    phones: int
    peak_rss_mb: float
    activities: dict[str, dict[str, float]]
    batch_size: int
    vocoder_batch: int | None
    precision: str
    failed: int
    threads: int = 1
    overlap: bool = False
    #: decode steps, and the rows they decoded (live) and held (slots) on average
    steps: int = 0
    mean_live_rows: float = 0.0
    mean_slots: float = 0.0
    #: FLOPs and bytes each stage needs (:func:`jobs.bench.floors.book_work`)
    work: dict[str, float] = field(default_factory=dict)

    @property
    def rtf(self) -> float:
        return self.wall_s / self.audio_s if self.audio_s else float("inf")


def render_book(voice_name: str, voices_dir: Path | None, precision: str, tuning: EngineTuning, quick: bool,
                backend: str = "torch", device: str = "cpu", log: Callable[[str], None] = print,
                token_scale: float = 1.0) -> BookRun:
    """Plan the bench book into a fresh store in a temporary folder, render and export it; its figures.

    ``token_scale`` shortens every chunk's audio by that factor (tests of the stage; figures use 1)."""
    from jobs.db import sqlite_url
    from jobs.pipeline import RenderSettings, run_book
    from jobs.services import Services
    from jobs.store import Store

    threads = tuning.threads or 1
    clock = ActivityClock(threads)
    engines = BookEngines(tuning, clock, token_scale)
    hooks = BookHooks(clock)
    with tempfile.TemporaryDirectory(prefix="bench-book-") as tmp:
        out = Path(tmp) / "out"
        settings = RenderSettings(book=BOOK_PATH, voice=voice_name, out_dir=out,
                                  chapters=QUICK_CHAPTERS if quick else None, batch_size=tuning.batch_size or 0,
                                  engine=EngineSettings(backend, device, tuning.threads), voices_dir=voices_dir,
                                  overrides={"precision": precision})
        hooks.total_chunks = _count_chunks(settings)
        selection = f" (chapters {QUICK_CHAPTERS})" if quick else ""
        log(f"book: {hooks.total_chunks} chunks of {BOOK_PATH.name}{selection}")
        with RssPeak(on_sample=clock.note_rss) as rss:
            clock.start("plan")
            start = time.perf_counter()
            result = run_book(settings, Services(engines=engines, hooks=hooks))
            wall = time.perf_counter() - start
            clock.stop()
        with Store(sqlite_url(out)) as store:
            rows = [r for r in store.status.chunk_rows(result.book_id) if r["status"] == "done"]
    engine = engines.engines[-1] if engines.engines else None
    vocoder = getattr(getattr(engine, "backend", None), "vocoder", None)
    chunks = [(int(r["n_phones"] or 0), int(r["n_tokens"] or 0)) for r in rows]
    return BookRun(wall_s=wall, audio_s=sum(r["duration_s"] or 0.0 for r in rows), chunks=len(rows),
                   tokens=sum(r["n_tokens"] or 0 for r in rows), phones=sum(r["n_phones"] or 0 for r in rows),
                   peak_rss_mb=rss.peak_mb, activities=clock.summary(),
                   batch_size=int(getattr(engine, "batch_size", 0)),
                   vocoder_batch=getattr(vocoder, "max_batch", None),
                   precision=str(getattr(getattr(engine, "backend", None), "precision", precision)),
                   failed=result.worker.failed, threads=threads, overlap=bool(getattr(engine, "overlaps", False)),
                   steps=len(engines.step_rows), mean_live_rows=_mean(r[0] for r in engines.step_rows),
                   mean_slots=_mean(r[1] for r in engines.step_rows), work=_work(engine, chunks))


def _work(engine: Any, chunks: list[tuple[int, int]]) -> dict[str, float]:
    """The book's work per stage (empty without a torch GPT to read the shapes from)."""
    from jobs.bench.floors import book_work, vocoder_flops_per_token
    from jobs.bench.voices import voice_shape

    backend = getattr(engine, "backend", None)
    gpt, cache = getattr(backend, "gpt", None), getattr(backend, "cache", None)
    if gpt is None or cache is None:
        return {}
    ref_phones, prompt_tokens = voice_shape(engine.voice)
    return book_work(chunks, ref_phones + prompt_tokens, gpt.config.d_model, gpt.config.n_layer,
                     cache.dtype.itemsize, vocoder_flops_per_token(engine, chunks)).to_dict()


def _mean(values: Any) -> float:
    listed = list(values)
    return sum(listed) / len(listed) if listed else 0.0


def _count_chunks(settings: Any) -> int:
    """Chunks the book's plan holds (the planner run once more, cheaply: no engine, no voice files read)."""
    from jobs.engines import SetupCache
    from jobs.pipeline import make_plan

    return make_plan(settings.book, None, SetupCache(RendererFactory()), chapters=settings.chapters).n_chunks


def book_figure(run: BookRun) -> Figure:
    """The book stage's figure: RTF (wall / audio seconds) with everything else measured beside it."""
    idle = sum(a["idle_cpu_s"] for a in run.activities.values())
    waited = sum(a["wait_s"] for a in run.activities.values())
    cpu = sum(a["cpu_s"] for a in run.activities.values())
    return Figure("book_rtf", "RTF", run.rtf, run.rtf, run.rtf, 1, {
        "chunks": run.chunks, "failed": run.failed, "audio_seconds": run.audio_s, "wall_seconds": run.wall_s,
        "tokens": run.tokens, "tokens_per_s": run.tokens / run.wall_s, "phones": run.phones,
        "peak_rss_mb": run.peak_rss_mb, "idle_cpu_s": idle, "idle_cpu_share": idle / (run.wall_s * run.threads),
        "cpu_seconds": cpu, "waited_for_cpu_s": waited,
        # what the run would take with the machine to itself and no idle core: CPU / threads / audio
        "cpu_rtf": cpu / run.threads / run.audio_s if run.audio_s else None,
        "activities": run.activities, "batch_size": run.batch_size, "vocoder_batch": run.vocoder_batch,
        "overlap": run.overlap, "precision": run.precision, "decode_steps": run.steps,
        "mean_live_rows": run.mean_live_rows, "mean_slots": run.mean_slots, "tokens_per_phone": TOKENS_PER_PHONE,
        "work": run.work})


def format_activities(activities: dict[str, dict[str, float]]) -> list[str]:
    """Table lines: activity, wall seconds and share, CPU seconds, idle core-seconds."""
    lines = [f"  {'activity':<22}{'wall s':>9}{'share':>8}{'CPU s':>9}{'waited s':>10}{'idle core-s':>13}"
             f"{'peak MB':>9}"]
    for name, a in activities.items():
        lines.append(f"  {name:<22}{a['wall_s']:>9.1f}{100 * a['share']:>7.1f}%{a['cpu_s']:>9.1f}"
                     f"{a.get('wait_s', 0.0):>10.1f}{a['idle_cpu_s']:>13.1f}{a.get('peak_rss_mb', 0.0):>9.0f}")
    return lines
