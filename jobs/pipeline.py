"""plan → render → export, resuming whatever already exists.

Where things go (``--out DIR``, default ``out/<book file stem>``):

- ``DIR/render.db``: the SQLite job store (WAL); ``--db URL`` replaces it (PostgreSQL);
- ``DIR/chunks/<book id>/<key[:2]>/<render key>.wav``: chunk audio (32-bit float WAV, 32 kHz); with
  PostgreSQL ``--audio-dir`` names a folder every worker sees under the same path (e.g. NFS);
- ``DIR/``: the exported chapter files and ``report.json`` / ``report.txt`` (written to
  ``DIR/.export-staging`` first and then published, so a crash mid-export leaves the
  previous files or the new ones, and a rerun simply exports again; see :mod:`jobs.exporting`).
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.audio_files import sweep_stale_temp_files
from jobs.db import ERROR_INPUT, is_sqlite, normalise_url, sqlite_url
from jobs.engines import EngineSettings, SetupCache, voice_defaults
from jobs.errors import JobsError
from jobs.exporting import export_from_store
from jobs.planner import BookPlan, VoiceRef, build_plan, parse_chapter_spec
from jobs.recovery import adopt_chunk_audio
from jobs.review import REVIEW_FILENAME, take_command, write_book_review
from jobs.services import Services
from jobs.store import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_DEATHS,
    Failure,
    RetryReport,
    Store,
    SyncReport,
)
from jobs.store.takes import TakeCounts
from jobs.takes import DEFAULT_MAX_TAKES, TakePolicy
from jobs.worker import Worker, WorkerOptions, WorkerReport, reap_dead_local_workers
from renderer.takes.asr import load_transcriber

if TYPE_CHECKING:
    from export import ExportReport
    from jobs.books.model import Book
    from renderer.protocols import RenderOptions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReadSettings:
    """How the book is read and shaped (``render --help`` describes each; validated by ``ReadOptions``)."""

    include_front: bool = False
    include_back: bool = False
    read_notes: bool = False
    allow_missing: bool = False
    lenient: bool = False
    max_text_mb: int = 64
    stage_directions: str = "read"
    speaker_names: str = "read"
    list_numbers: str = "read"


@dataclass(frozen=True)
class RenderSettings:
    """Everything ``render run`` needs; validated by the option dataclasses it feeds."""

    book: Path
    voice: str
    out_dir: Path
    db_url: str | None = None
    audio_dir: Path | None = None
    chapters: str | None = None
    batch_size: int = 0  # 0 = automatic (the engine's memory-budgeted choice)
    workers: int = 1
    engine: EngineSettings = EngineSettings()
    voices_dir: Path | None = None
    #: the options chosen on the command line (sampling fields and precision; absent = the voice's or the default)
    overrides: Mapping[str, Any] = field(default_factory=dict)
    read: ReadSettings = ReadSettings()
    export_format: str = "mp3"
    preset: str = "acx"
    single_file: bool = False
    subtitles: str | None = None
    read_along: bool = False
    lease_s: float = 120.0
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_deaths: int = DEFAULT_MAX_DEATHS
    #: takes per chunk at most (jobs.takes); stored with the book, not part of render keys
    max_takes: int = DEFAULT_MAX_TAKES
    #: a local faster-whisper model folder: the speech-recognition check joins the take score
    asr_model: Path | None = None
    #: lines at the top of review.html (e.g. the demo's note on its random voice)
    review_notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        TakePolicy(max_takes=self.max_takes)  # validates
        if self.workers < 1:
            raise JobsError(f"--workers must be >= 1, got {self.workers}")
        if self.batch_size < 0:
            raise JobsError(f"--batch-size must be 'auto' or >= 1, got {self.batch_size}")


@dataclass
class RunResult:
    book_id: int
    sync: SyncReport
    worker: WorkerReport
    counts: dict[str, int]
    exported: ExportReport | None = None
    out_dir: Path = Path(".")
    failures: list[Failure] = field(default_factory=list)
    retried: RetryReport = RetryReport()  # failed chunks of earlier runs queued again by this one
    adopted: int = 0  # chunks whose audio was found on disk (jobs.recovery), not rendered
    takes: TakeCounts = TakeCounts()
    review: Path | None = None  # review.html of the doubtful chunks


def default_out_dir(book: Path) -> Path:
    return Path("out") / Path(book).stem


def store_url(out_dir: Path, db_url: str | None) -> str:
    return normalise_url(db_url) if db_url else sqlite_url(out_dir)


def audio_root(out_dir: Path, db_url: str | None, audio_dir: Path | None) -> Path:
    """Chunk audio folder: ``--audio-dir``, else ``<out>/chunks`` (SQLite only; PostgreSQL needs a shared one)."""
    if audio_dir is not None:
        return Path(audio_dir).resolve()
    if db_url and not is_sqlite(normalise_url(db_url)):
        raise JobsError(
            "a PostgreSQL store needs --audio-dir: a folder every worker sees under the same path "
            "(e.g. an NFS mount), where chunk audio is written and read back for export"
        )
    return (Path(out_dir) / "chunks").resolve()


def read(book: Path, settings: ReadSettings) -> Book:
    from jobs.books import read_book
    from jobs.books.model import ReadOptions

    options = ReadOptions(
        include_front=settings.include_front,
        include_back=settings.include_back,
        read_notes="chapter_end" if settings.read_notes else False,
        allow_missing=settings.allow_missing,
        lenient=settings.lenient,
        max_text_bytes=settings.max_text_mb * 1024 * 1024,
        stage_directions=settings.stage_directions,
        speaker_names=settings.speaker_names,
        list_numbers=settings.list_numbers,
    )
    return read_book(book, options)


def resolve_options(voice: VoiceRef, overrides: Mapping[str, Any]) -> RenderOptions:
    """A book's render options: defaults < the voice's stored defaults < the command line's choices."""
    from renderer.protocols import RenderOptions

    return RenderOptions.resolve(voice_defaults(voice), overrides)


def make_plan(
    book_path: Path,
    voice_name: str | None,
    setups: SetupCache,
    *,
    overrides: Mapping[str, Any] | None = None,
    chapters: str | None = None,
    read_settings: ReadSettings = ReadSettings(),
    max_takes: int | None = None,
) -> BookPlan:
    """Read and plan a book (nothing is stored). Without a voice the render keys use a blank voice.
    ``max_takes`` is stored with the book's options (beside, not inside, what render keys hash)."""
    book = read(book_path, read_settings)
    voice = setups.voice(voice_name) if voice_name else VoiceRef(name="", voice_id="")
    options = resolve_options(voice, overrides or {})
    extra: dict[str, Any] = {"read": read_settings.__dict__, "chapters": chapters}
    if max_takes is not None:
        extra["takes"] = {"max_takes": max_takes}
    lexicon = book_lexicon(book_path)
    return build_plan(
        book,
        voice,
        options.to_dict(),
        setups.version,
        chunker=setups.engines.chunk,
        chapters=parse_chapter_spec(chapters),
        extra_options=extra,
        lexicon=lexicon,
    )


def book_lexicon(book_path: Path) -> Any:
    """The book's user lexicon: ``<book name>.lexicon.tsv`` beside the book, else ``lexicon.tsv`` there."""
    from renderer.errors import TextError
    from renderer.text.lexicon import Lexicon

    for path in (book_path.with_name(book_path.stem + ".lexicon.tsv"), book_path.with_name("lexicon.tsv")):
        if path.is_file():
            try:
                return Lexicon.from_tsv(path)
            except TextError as e:
                raise JobsError(f"{e}; fix the line or remove the file") from None
    return None


def _spawn_workers(
    settings: RenderSettings, command: tuple[str, ...], url: str, root: Path, n: int
) -> list[subprocess.Popen[bytes]]:
    """Extra local worker processes (``render worker``) on the same store.

    The store URL goes through the environment (``RENDER_DB``), never the command line: a PostgreSQL
    URL may hold a password, and every user of the machine can read command lines (``ps``), while a
    process's environment is readable only by its owner.
    """
    cmd = [
        *command,
        "worker",
        "--audio-dir",
        str(root),
        "--batch-size",
        str(settings.batch_size),
        "--backend",
        settings.engine.backend,
        "--device",
        settings.engine.device,
        "--lease",
        str(settings.lease_s),
        "--max-attempts",
        str(settings.max_attempts),
        "--max-deaths",
        str(settings.max_deaths),
    ]
    if settings.voices_dir:
        cmd += ["--voices-dir", str(settings.voices_dir)]
    if settings.asr_model:
        cmd += ["--asr-model", str(settings.asr_model)]
    env = {**os.environ, "RENDER_DB": url}
    return [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=env) for _ in range(n)]


def run_book(
    settings: RenderSettings,
    services: Services = Services(),
    on_batch: Callable[[Store, int, WorkerReport], None] | None = None,
) -> RunResult:
    """``render BOOK --voice NAME``: plan (idempotent), render what is missing, export complete chapters."""
    setups = SetupCache(services.engines, voices_dir=settings.voices_dir, settings=settings.engine)
    plan = make_plan(
        settings.book,
        settings.voice,
        setups,
        overrides=settings.overrides,
        chapters=settings.chapters,
        read_settings=settings.read,
        max_takes=settings.max_takes,
    )
    transcriber = load_transcriber(settings.asr_model)
    url = store_url(settings.out_dir, settings.db_url)
    root = audio_root(settings.out_dir, settings.db_url, settings.audio_dir)
    with Store(url, hooks=services.hooks) as store:
        sync = store.plans.sync_plan(plan)
        retried = _retry_earlier_failures(store, sync.book_id, settings.max_deaths)
        sweep_stale_temp_files(root / str(sync.book_id))
        adopted = adopt_chunk_audio(store, sync.book_id, root)
        helpers = _spawn_workers(settings, services.worker_command, url, root, settings.workers - 1)
        options = WorkerOptions(
            batch_size=settings.batch_size,
            lease_s=settings.lease_s,
            max_attempts=settings.max_attempts,
            max_deaths=settings.max_deaths,
            book_id=sync.book_id,
            wait_for_others=True,
        )
        callback = (lambda report: on_batch(store, sync.book_id, report)) if on_batch else None
        worker = Worker(store, root, setups, options, on_batch=callback, hooks=services.hooks,
                        write_audio=services.write_audio, transcriber=transcriber)
        if callback is not None:
            callback(worker.report)  # once before the first batch: progress and metrics start from the plan
        try:
            report = worker.run()
        finally:
            _stop_helpers(helpers, interrupted=worker.report.interrupted)
        store.db.verify()  # the store this run recorded its work in is still there and whole
        counts = store.status.counts(sync.book_id)
        result = RunResult(sync.book_id, sync, report, counts, out_dir=settings.out_dir, retried=retried,
                           adopted=adopted)
        if report.interrupted:
            return result
        result.exported = export_from_store(
            store,
            sync.book_id,
            root,
            settings.out_dir,
            export_format=settings.export_format,
            preset=settings.preset,
            single_file=settings.single_file,
            subtitles=settings.subtitles,
            read_along=settings.read_along,
            hooks=services.hooks,
        )
        result.failures = store.status.failures(sync.book_id)
        result.takes = store.takes.counts(sync.book_id)
        # Only a book with doubtful chunks gets a page; one written before is refreshed so it is never stale.
        if result.takes.doubtful or (Path(settings.out_dir) / REVIEW_FILENAME).exists():
            command = take_command(str(settings.book), settings.out_dir, settings.db_url, settings.audio_dir)
            result.review = write_book_review(store, sync.book_id, root, settings.out_dir, command,
                                              notes=settings.review_notes)
        store.db.verify()
        return result


def _retry_earlier_failures(store: Store, book_id: int, max_deaths: int) -> RetryReport:
    """Running the book again is the user asking for it to complete: failures that may be transient
    (engine errors, worker deaths) get another chance; text that cannot be spoken stays failed.

    Workers of earlier runs that died are accounted for first (their chunks may fail by it), so that
    "kill it anywhere, run the same command again" always completes a book of innocent chunks. A chunk
    that really kills its worker is then tried alone once per run; the warning names it and why.
    """
    reap_dead_local_workers(store, max_deaths)
    store.queue.requeue_expired(max_deaths)
    earlier = [f for f in store.status.failures(book_id) if f.kind != ERROR_INPUT]
    retried = store.queue.retry_failed(book_id, include_input=False)
    if retried.retried:
        named = "; ".join(f"chapter {f.chapter_number} chunk {f.idx}: {f.error}" for f in earlier[:3])
        more = f" (and {len(earlier) - 3} more)" if len(earlier) > 3 else ""
        log.warning("retrying %d chunk(s) that failed in an earlier run: %s%s", retried.retried, named, more)
    if retried.kept_input_errors:
        log.warning("%d chunk(s) stay failed: their text cannot be spoken (see `render status`; edit the book, "
                    "or `render retry-failed BOOK` to try anyway)", retried.kept_input_errors)
    return retried


def _stop_helpers(procs: list[subprocess.Popen[bytes]], interrupted: bool) -> None:
    for proc in procs:
        if interrupted and proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
