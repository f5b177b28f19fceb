"""`render run` (the main form), `plan`, `status`, `worker`, `retry-failed`, `demo`."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from jobs.cli.outputs import listener_options, metrics_options, metrics_publisher
from jobs.cli.params import BATCH_SIZE, PRECISION, current_services
from jobs.cli.progress import BookProgress
from jobs.cli.status_view import print_status, status_json
from jobs.engines import EngineSettings, SetupCache
from jobs.errors import JobsError
from jobs.store import DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_DEATHS, BookInfoRow, Store
from jobs.takes import DEFAULT_MAX_TAKES

if TYPE_CHECKING:
    from jobs.pipeline import ReadSettings

#: A click command function being decorated with more options.
Command = TypeVar("Command", bound=Callable[..., Any])

FORMATS = ("mp3", "m4b", "flac", "wav")
PRESETS = ("acx", "podcast", "none")
#: Semantic tokens per chunk in `render demo` (25 tokens = 1 s of audio).
DEMO_MAX_TOKENS = 75
#: Takes per chunk in `render demo`: the random voice's takes are all bad, so more would only cost time.
DEMO_MAX_TAKES = 2
DEMO_REVIEW_NOTE = ("The sample voice has random weights: it never ends a chunk by itself, so every take "
                    "hits the token cap and is doubtful. The demo caps re-rolls at 2 takes per chunk "
                    "(--max-takes 2); a trained voice re-rolls only its few bad takes.")


def _common_store_options(func: Command) -> Command:
    func = click.option(
        "--audio-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Chunk audio folder. Default <out>/chunks; required with PostgreSQL: a folder every worker "
        "sees under the same path (e.g. NFS).",
    )(func)
    func = click.option(
        "--db",
        "db_url",
        envvar="RENDER_DB",
        help="Job store URL (default: SQLite at <out>/render.db). PostgreSQL: postgresql://user@host/db.",
    )(func)
    func = click.option(
        "--out",
        "out_dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Output folder (default: out/<book file name>).",
    )(func)
    return func


def _engine_options(func: Command) -> Command:
    func = click.option("--asr-model", type=click.Path(exists=True, file_okay=False, path_type=Path),
                        help="A local faster-whisper model folder: the word error rate of each take against "
                             "its text joins the take's score (needs the faster-whisper package; nothing "
                             "is downloaded).")(func)
    func = click.option("--max-deaths", type=click.IntRange(0, 100), default=DEFAULT_MAX_DEATHS, show_default=True,
                        hidden=True, help="Worker deaths while holding a chunk after which it is rendered alone "
                                          "(one more death fails it).")(func)
    func = click.option("--max-attempts", type=click.IntRange(1, 100), default=DEFAULT_MAX_ATTEMPTS,
                        show_default=True, hidden=True,
                        help="Renders of a chunk ending in an error after which it is failed.")(func)
    func = click.option("--lease", "lease_s", type=float, default=120.0, show_default=True, hidden=True,
                        help="Lease length in seconds.")(func)
    func = click.option("--voices-dir", type=click.Path(file_okay=False, path_type=Path),
                        help="Voice folder root (default: $RENDER_VOICES_DIR or ~/.local/share/...).")(func)
    func = click.option("--threads", type=int, help="CPU threads for the engine.")(func)
    func = click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, ...")(func)
    func = click.option("--backend", default="auto", show_default=True,
                        help="Engine backend: auto, torch, onnx, tensorrt (see `render doctor`).")(func)
    func = click.option("--batch-size", type=BATCH_SIZE, default="auto", show_default=True,
                        help="Rows the engine decodes at once, or 'auto': as many as the KV-cache memory "
                             "budget allows (32 fp32 / 64 bf16 on CPU). A worker claims twice as many chunks.")(func)
    return func


_READ_FLAGS = ("include_front", "include_back", "read_notes", "allow_missing", "lenient", "max_text_mb",
               "stage_directions", "speaker_names", "list_numbers")


def _read_options(func: Callable[..., None]) -> Callable[..., None]:
    """The options that say how a book is read; the command receives them as one ``read`` ReadSettings."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        from jobs.pipeline import ReadSettings

        kwargs["read"] = ReadSettings(**{name: kwargs.pop(name) for name in _READ_FLAGS})
        return func(*args, **kwargs)

    read_or_skip = click.Choice(["read", "skip"])
    wrapper = click.option("--list-numbers", type=read_or_skip, default="read", show_default=True,
                           help="A number or roman numeral leading a paragraph, list item or verse (\"11\", "
                                "\"IV.\", \"十一、\"): read it as a label followed by a pause, or skip it. It is "
                                "never run into the sentence.")(wrapper)
    wrapper = click.option("--speaker-names", type=read_or_skip, default="read", show_default=True,
                           help="Plays: read each speaker's name before the speech (same chunk, short pause), "
                                "or skip the names (e.g. when each character gets a voice).")(wrapper)
    wrapper = click.option("--stage-directions", type=read_or_skip, default="read", show_default=True,
                           help="Plays: read stage directions as asides with their own pauses, or skip them.")(wrapper)
    wrapper = click.option("--max-text-mb", type=click.IntRange(1, 4096), default=64, show_default=True,
                           help="The most a book's text documents may expand to (MiB); protects against zip "
                                "bombs. Raise it only for a file you trust.")(wrapper)
    wrapper = click.option("--lenient", is_flag=True,
                           help="Read an EPUB that lacks META-INF/container.xml by using its only .opf file.")(wrapper)
    wrapper = click.option("--allow-missing", is_flag=True,
                           help="Go on when parts of the book (spine documents) are missing or unreadable; the "
                                "export report then fails coverage and names them. Default: stop.")(wrapper)
    wrapper = click.option("--read-notes", is_flag=True,
                           help="Read footnotes/endnotes at the end of their chapter.")(wrapper)
    wrapper = click.option("--include-back", is_flag=True,
                           help="Read back matter that is skipped by default (colophon, index, notes, ...).")(wrapper)
    wrapper = click.option("--include-front", is_flag=True,
                           help="Read front matter that is skipped by default (cover, title page, copyright, "
                                "imprint, contents, ...). Dedications, prefaces and other text by the author are "
                                "read anyway.")(wrapper)
    return wrapper


def chosen(**options: Any) -> dict[str, Any]:
    """The options the user gave (None = not given: the voice's default or the built-in one applies)."""
    return {k: v for k, v in options.items() if v is not None}


@click.command("run")
@click.argument("book", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--voice", "voice_name", required=True, help="Voice name (see `render voice list`).")
@_common_store_options
@click.option("--chapters", help="Chapters to render, as numbered by `render plan`: e.g. 1-3,7.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Local worker processes (more only helps with spare cores or GPUs).")
@_engine_options
@click.option("--format", "export_format", type=click.Choice(FORMATS), default="mp3", show_default=True,
              help="Format of the exported chapter files.")
@click.option("--preset", type=click.Choice(PRESETS), default="acx", show_default=True,
              help="Loudness/encoding preset of the exported files.")
@click.option("--single-file", is_flag=True, help="Also export the whole book as one file.")
@click.option("--max-takes", type=click.IntRange(1, 20), default=DEFAULT_MAX_TAKES, show_default=True,
              help="Takes per chunk at most: a take whose checks fail (loop, token cap, too fast or slow, "
                   "long silence, clipping...) is rendered again with the chunk's next seed; the best is "
                   "kept, and chunks still doubtful are listed in review.html. 1 = check, never re-roll.")
@click.option("--review-note", "review_notes", multiple=True, hidden=True,
              help="A line shown at the top of review.html (the demo explains its random voice).")
@click.option("--seed", type=int, help="Base sampling seed (default: the voice's).")
@click.option("--temperature", type=float, help="Sampling temperature.")
@click.option("--top-k", type=int, help="Sampling top-k.")
@click.option("--top-p", type=float, help="Sampling top-p.")
@click.option("--speed", type=float, help="Speaking rate factor.")
@click.option("--max-tokens", type=int, help="Cap on semantic tokens per chunk (25 per second of audio).")
@click.option("--precision", type=PRECISION, default=None,
              help="Engine arithmetic [default: auto = bf16 (CPU) / fp16 (CUDA) only where the hardware has it "
                   "and a tolerance check against fp32 passed, else fp32]. Part of each chunk's render key.")
@_read_options
@listener_options
@metrics_options
def run(book: Path, voice_name: str, out_dir: Path | None, db_url: str | None, audio_dir: Path | None,
        chapters: str | None, workers: int, batch_size: int, backend: str, device: str, threads: int | None,
        voices_dir: Path | None, lease_s: float, max_attempts: int, max_deaths: int, export_format: str, preset: str,
        single_file: bool, max_takes: int, review_notes: tuple[str, ...], asr_model: Path | None,
        seed: int | None, temperature: float | None, top_k: int | None,
        top_p: float | None, speed: float | None, max_tokens: int | None, precision: str | None,
        read: ReadSettings, subtitles: str | None = None, read_along: bool = False,
        metrics_file: Path | None = None, metrics_port: int | None = None, metrics_host: str = "127.0.0.1") -> None:
    """Plan, synthesize and export BOOK (.epub, .txt, .md); resumes whatever exists.

    Run it again after a crash, a full disk or Ctrl-C: finished chunks are kept and only the rest
    is rendered. Chapter files, report.json and report.txt land in the output folder.
    """
    from jobs.pipeline import RenderSettings, default_out_dir, run_book

    if read_along:
        from jobs.exporting import check_read_along

        check_read_along(book)
    out = out_dir or default_out_dir(book)
    settings = RenderSettings(
        book=book, voice=voice_name, out_dir=out, db_url=db_url, audio_dir=audio_dir, chapters=chapters,
        batch_size=batch_size, workers=workers, engine=EngineSettings(backend, device, threads),
        voices_dir=voices_dir, overrides=chosen(seed=seed, temperature=temperature, top_k=top_k, top_p=top_p,
                                                speed=speed, max_tokens=max_tokens, precision=precision),
        read=read, export_format=export_format, preset=preset,
        single_file=single_file, lease_s=lease_s, max_attempts=max_attempts, max_deaths=max_deaths,
        subtitles=subtitles, read_along=read_along, max_takes=max_takes, asr_model=asr_model,
        review_notes=tuple(review_notes),
    )
    with BookProgress() as progress, metrics_publisher(metrics_file, metrics_port, metrics_host, device) as metrics:

        def on_batch(store: Any, book_id: int, report: Any) -> None:
            progress.update(store, book_id, report)
            if metrics is not None:
                metrics.metrics.watch_counts(lambda: store.status.counts(book_id))
                metrics.on_batch(report)

        result = run_book(settings, current_services(), on_batch=on_batch)
    if result.worker.interrupted:
        click.echo("stopped; progress is saved, run the same command again to resume", err=True)
        raise click.exceptions.Exit(130)
    counts = result.counts
    if result.adopted:
        click.echo(f"reused {result.adopted} chunk(s) whose audio was already on disk", err=True)
    click.echo(f"{counts['done']} chunks done, {counts['failed']} failed "
               f"({result.sync.added} newly planned, {result.worker.done} rendered now)")
    if result.exported is not None:
        click.echo(f"exported to {out}")
        missing = result.exported.coverage.missing_parts
        if missing:
            click.echo(f"report: FAIL (coverage): parts of the book were not rendered: {'; '.join(missing)}")
    takes = result.takes
    if takes.rerolled or takes.doubtful or takes.accepted:
        click.echo(f"takes: {takes.rerolled} re-rolled, {takes.doubtful} chunk(s) still doubtful, "
                   f"{takes.accepted} accepted by a person")
    if result.review is not None and takes.doubtful:
        click.echo(f"listen to the doubtful chunks: {result.review}")
    for failure in result.failures[:10]:
        click.echo(f"  failed: chapter {failure.chapter_number} chunk {failure.idx}: {failure.error}", err=True)
    if counts["failed"]:
        raise click.ClickException(
            f"{counts['failed']} chunk(s) failed; chapters with failures were not exported. "
            "See `render status`, then `render retry-failed BOOK` and run again."
        )


@click.command("plan")
@click.argument("book", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--voice", "voice_name", help="Voice (only needed to show render keys the way `render` will).")
@click.option("--chapters", help="Chapters to render, e.g. 1-3,7.")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON: book metadata, chapters with their chunks (text, boundary, pause), navigation "
                   "marks (every TOC entry with its chapter and start chunk) and missing parts.")
@click.option("--chunks", "show_chunks", is_flag=True,
              help="Also list each chapter's chunks: the text, the boundary after it and the pause it gets.")
@click.option("--voices-dir", type=click.Path(file_okay=False, path_type=Path), help="Voice folder root.")
@_read_options
def plan(book: Path, voice_name: str | None, chapters: str | None, as_json: bool, show_chunks: bool,
         voices_dir: Path | None, read: ReadSettings) -> None:
    """Show how BOOK would be rendered: chapters (and why front or back matter is read or skipped), chunk
    counts, estimated duration, navigation marks; with --chunks the chunks themselves. Renders nothing."""
    from export import PauseOptions
    from jobs.pipeline import make_plan

    setups = SetupCache(current_services().engines, voices_dir=voices_dir)
    result = make_plan(book, voice_name, setups, chapters=chapters, read_settings=read)
    data = result.to_json(pause_after=PauseOptions().after)
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    meta = data["book"]
    click.echo(f"{meta['title']} — {meta['author']} [{meta['language']}]")
    for ch in data["chapters"]:
        if ch["skipped"]:
            state = f"skipped: {ch['skip_reason']}"
        elif not ch["selected"]:
            state = "not selected"
        else:
            state = f"{ch['chunks']:4d} chunks {ch['characters']:7d} chars ~{_hms(ch['estimated_seconds'])}"
        click.echo(f"{ch['number']:3d}. {ch['title'][:48]:48s} {state}")
        if ch["kind"] != "body" or ch["skipped"]:
            click.echo(f"       why: {ch['why'] or ch['skip_reason']}")
        if show_chunks:
            for chunk in ch["chunk_list"]:
                text = chunk["text"].replace("\n", " / ")
                click.echo(f"     {chunk['idx']:4d} [{chunk['boundary']} {chunk['pause_s']:.2f}s] {text}")
    marks = data["navigation"]
    nested = sum(1 for m in marks if m["depth"] > 0)
    click.echo(f"total: {data['chunks']} chunks, {data['characters']} characters, "
               f"about {_hms(data['estimated_seconds'])} of audio; {len(marks)} navigation marks ({nested} nested)")
    for part in data["missing_parts"]:
        click.echo(f"MISSING: {part['href']} ({part['title']}): {part['reason']} - not rendered", err=True)
    for warning in data["warnings"]:
        click.echo(f"warning: {warning}", err=True)


def _hms(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def open_book_store(book: str | None, out_dir: Path | None, db_url: str | None) -> tuple[Store, BookInfoRow | None]:
    """(Store, BookInfoRow or None) for the status/export/retry commands."""
    from jobs.pipeline import default_out_dir, store_url

    if db_url is None and out_dir is None and book is not None and (Path(book) / "render.db").is_file():
        # `render status out/mybook/`: the output folder itself names the store (every book in it).
        out_dir, book = Path(book), None
    if db_url is None and out_dir is None:
        if book is None:
            raise JobsError("give BOOK, --out DIR or --db URL to say which job store to read")
        out_dir = default_out_dir(Path(book))
    if db_url is None and not (Path(out_dir or ".") / "render.db").is_file():
        raise JobsError(f"no job store in {out_dir}: render the book first (or pass --out/--db)")
    store = Store(store_url(Path(out_dir or "."), db_url))
    if book is None:
        return store, None
    found = store.status.find_book(str(Path(book).resolve()))
    if found is None and book.isdigit():
        found = store.status.book(int(book))
    if found is None:
        titles = ", ".join(f"{b.id}: {Path(b.source_path).name}" for b in store.status.books()) or "none"
        store.close()
        raise JobsError(f"{book} is not in this job store (books there: {titles})")
    return store, found


def open_one_book(book: str, out_dir: Path | None, db_url: str | None) -> tuple[Store, BookInfoRow]:
    """(Store, BookInfoRow) for the commands that act on one book (export, retry-failed)."""
    store, found = open_book_store(book, out_dir, db_url)
    if found is None:
        store.close()
        raise JobsError(f"{book} is an output folder: name the book in it (its file or its id, see `render status`)")
    return store, found


@click.command("status")
@click.argument("book", required=False)
@_common_store_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(book: str | None, out_dir: Path | None, db_url: str | None, audio_dir: Path | None,
           as_json: bool) -> None:
    """Progress of BOOK (or every book in the store): chunks per state, failures, throughput, ETA."""
    store, found = open_book_store(book, out_dir, db_url)
    with store:
        books = [found] if found is not None else store.status.books()
        if as_json:
            click.echo(json.dumps([status_json(store, b) for b in books], indent=2, ensure_ascii=False))
        else:
            for b in books:
                print_status(store, b)


@click.command("retry-failed")
@click.argument("book")
@_common_store_options
def retry_failed(book: str, out_dir: Path | None, db_url: str | None, audio_dir: Path | None) -> None:
    """Put BOOK's failed chunks back in the queue (then run `render BOOK ...` or a worker again)."""
    store, found = open_one_book(book, out_dir, db_url)
    with store:
        n = store.queue.retry_failed(found.id).retried
    click.echo(f"{n} failed chunk(s) queued again")


@click.command("worker")
@click.option("--db", "db_url", envvar="RENDER_DB", required=True,
              help="Job store URL shared by the workers (postgresql://... or a SQLite file).")
@click.option("--audio-dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Chunk audio folder, the same path on every worker (e.g. an NFS mount).")
@click.option("--follow", is_flag=True, help="Keep waiting for new work instead of stopping when the queue is empty.")
@_engine_options
@metrics_options
def worker(db_url: str, audio_dir: Path, follow: bool, batch_size: int, backend: str, device: str,
           threads: int | None, voices_dir: Path | None, lease_s: float, max_attempts: int, max_deaths: int,
           asr_model: Path | None, metrics_file: Path | None = None, metrics_port: int | None = None,
           metrics_host: str = "127.0.0.1") -> None:
    """Render chunks from a shared job store until the queue is empty (or forever with --follow).

    The worker needs the books' voices installed under the same names (same files) on its machine.
    """
    from jobs.worker import Worker, WorkerOptions
    from renderer.takes.asr import load_transcriber

    services = current_services()
    setups = SetupCache(services.engines, voices_dir=voices_dir, settings=EngineSettings(backend, device, threads))
    with Store(db_url, hooks=services.hooks) as store, \
            metrics_publisher(metrics_file, metrics_port, metrics_host, device) as metrics:
        options = WorkerOptions(batch_size=batch_size, lease_s=lease_s, follow=follow, max_attempts=max_attempts,
                                max_deaths=max_deaths)
        job = Worker(store, audio_dir, setups, options, hooks=services.hooks, write_audio=services.write_audio,
                     on_batch=metrics.on_batch if metrics else None, transcriber=load_transcriber(asr_model))
        if metrics is not None:
            metrics.metrics.worker_id = job.id
            metrics.metrics.watch_counts(store.status.counts)
            metrics.publish()
        report = job.run()
        store.db.verify()
    click.echo(f"worker {report.worker_id}: {report.done} chunks done, {report.failed} failed, "
               f"{report.audio_s:.1f} s of audio")
    for book_id, reason in report.skipped_books.items():
        click.echo(f"  skipped book {book_id}: {reason}", err=True)
    if report.interrupted:
        raise click.exceptions.Exit(130)


@click.command("demo")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("out/demo"),
              show_default=True, help="Output folder.")
@click.option("--voices-dir", type=click.Path(file_okay=False, path_type=Path), help="Voice folder root.")
@click.option("--format", "export_format", type=click.Choice(FORMATS), default="mp3", show_default=True,
              help="Format of the exported chapter files.")
@click.option("--version", "version", type=click.Choice(["v2", "v2Pro", "v2ProPlus"]), default="v2",
              show_default=True, help="SoVITS version of the sample voice (v2Pro/v2ProPlus add the speaker model).")
@click.pass_context
def demo(ctx: click.Context, out_dir: Path, voices_dir: Path | None, export_format: str, version: str) -> None:
    """Render the sample book with the sample voice (random weights: it sounds like noise) into OUT.

    Besides the chapter files it writes WebVTT subtitles and the read-along EPUB (sample-book.readalong.epub).

    Creates the sample voice first if it is missing (`render voice make-random sample --size tiny`;
    `sample-v2ProPlus` etc. for another --version). Each chunk is capped at 3 s of audio, since a
    random model seldom decides to stop by itself.
    """
    from jobs.cli.demo import ensure_sample_voice, sample_book

    voice_name = ensure_sample_voice(ctx, voices_dir, version)
    book = sample_book()
    # The random sample voice rarely emits EOS: cap each chunk at 3 s (75 tokens) so the demo takes minutes.
    # Every take of a random voice is bad (it runs to the token cap): re-rolls are capped at 2 takes, so the
    # demo shows the loop and the review page without tripling its time.
    ctx.invoke(run, book=book, voice_name=voice_name, out_dir=out_dir, voices_dir=voices_dir,
               export_format=export_format, batch_size=0, max_tokens=DEMO_MAX_TOKENS, subtitles="vtt",
               read_along=True, max_takes=DEMO_MAX_TAKES, review_notes=(DEMO_REVIEW_NOTE,))
    files = sorted(p for p in out_dir.iterdir() if p.is_file() and p.suffix not in (".db", ".db-wal", ".db-shm"))
    click.echo(f"demo files in {out_dir.resolve()}:")
    for path in files:
        click.echo(f"  {path.name}")


COMMANDS = [run, plan, status, retry_failed, worker, demo]
