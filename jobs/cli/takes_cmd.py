"""`render review` (the doubtful chunks as a page to listen to) and `render take` (a person's decision)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from jobs.cli.params import current_services
from jobs.cli.render_cmd import _common_store_options, _engine_options, open_one_book
from jobs.engines import EngineSettings, SetupCache
from jobs.errors import JobsError
from jobs.store import BookInfoRow, Store

if TYPE_CHECKING:
    from jobs.worker import WorkerOptions


def _located(book: str, out_dir: Path | None, db_url: str | None,
             audio_dir: Path | None) -> tuple[Store, BookInfoRow, Path, Path]:
    """(store, book, output folder, chunk audio folder) for BOOK as the other commands find it."""
    from jobs.pipeline import audio_root, default_out_dir

    if out_dir is None and db_url is None and (Path(book) / "render.db").is_file():
        raise JobsError(f"{book} is an output folder: give the book too, e.g. `render review BOOK --out {book}`")
    store, found = open_one_book(book, out_dir, db_url)
    out = Path(out_dir) if out_dir is not None else default_out_dir(Path(book))
    return store, found, out, audio_root(out, db_url, audio_dir)


def _rewrite_review(store: Store, found: BookInfoRow, book: str, out: Path, root: Path, db_url: str | None,
                    audio_dir: Path | None, out_dir: Path | None, embed_audio: bool = False) -> Path:
    from jobs.review import take_command, write_book_review

    command = take_command(book, out_dir, db_url, audio_dir)
    return write_book_review(store, found.id, root, out, command, embed_audio=embed_audio)


@click.command("review")
@click.argument("book")
@_common_store_options
@click.option("--embed-audio", is_flag=True,
              help="Put the takes' audio inside the page (one portable file, larger) instead of linking the "
                   "chunk files beside it.")
def review(book: str, out_dir: Path | None, db_url: str | None, audio_dir: Path | None, embed_audio: bool) -> None:
    """Write review.html in the output folder: BOOK's doubtful chunks, worst first, each take with its
    reasons, waveform and player, and the `render take` commands that resolve it. Opens from disk."""
    store, found, out, root = _located(book, out_dir, db_url, audio_dir)
    with store:
        path = _rewrite_review(store, found, book, out, root, db_url, audio_dir, out_dir, embed_audio)
        counts = store.takes.counts(found.id)
    click.echo(f"{counts.doubtful} doubtful chunk(s), {counts.rerolled} take(s) re-rolled, "
               f"{counts.accepted} accepted by a person: {path}")


@click.command("take")
@click.argument("book")
@click.argument("chunk", type=int)
@_common_store_options
@click.option("--reroll", is_flag=True, help="Render one more take of CHUNK now; the best of all its takes is kept.")
@click.option("--accept", is_flag=True, help="Keep the take in use as it is.")
@click.option("--use", "use", type=click.IntRange(1, 1000), help="Keep take N (its audio must still exist).")
@_engine_options
def take(book: str, chunk: int, out_dir: Path | None, db_url: str | None, audio_dir: Path | None,
         reroll: bool, accept: bool, use: int | None, batch_size: int, backend: str, device: str,
         threads: int | None, voices_dir: Path | None, lease_s: float, max_attempts: int, max_deaths: int,
         asr_model: Path | None) -> None:
    """Decide on CHUNK of BOOK (its number on the review page): --reroll, --accept or --use N.

    Accepting or choosing a take deletes the other takes' audio. Then `render export BOOK` (or running
    `render BOOK --voice ...` again) puts the chosen takes into the chapter files.
    """
    if [reroll, accept, use is not None].count(True) != 1:
        raise click.UsageError("give exactly one of --reroll, --accept and --use N")
    store, found, out, root = _located(book, out_dir, db_url, audio_dir)
    with store:
        if reroll:
            from jobs.worker import WorkerOptions

            number = store.takes.reroll(found.id, chunk)
            engine = EngineSettings(backend, device, threads)
            options = WorkerOptions(batch_size=batch_size, lease_s=lease_s, max_attempts=max_attempts,
                                    max_deaths=max_deaths, book_id=found.id, wait_for_others=True)
            _render_book(store, root, voices_dir, engine, options, asr_model)
            outcome = _describe(store, chunk)
            click.echo(f"chunk {chunk}: rendered take {number}; {outcome}")
        else:
            discarded = store.takes.accept(found.id, chunk, use)
            for relpath in discarded:
                (root / relpath).unlink(missing_ok=True)
            click.echo(f"chunk {chunk}: {_describe(store, chunk)} (accepted; {len(discarded)} other take(s) deleted)")
        path = _rewrite_review(store, found, book, out, root, db_url, audio_dir, out_dir)
    click.echo(f"review page rewritten: {path}")
    click.echo("run `render export BOOK` to put the chosen takes into the chapter files")


def _render_book(store: Store, root: Path, voices_dir: Path | None, engine: EngineSettings, options: WorkerOptions,
                 asr_model: Path | None) -> None:
    from jobs.worker import Worker
    from renderer.takes.asr import load_transcriber

    services = current_services()
    setups = SetupCache(services.engines, voices_dir=voices_dir, settings=engine)
    Worker(store, root, setups, options, hooks=services.hooks, write_audio=services.write_audio,
           transcriber=load_transcriber(asr_model)).run()


def _describe(store: Store, chunk_id: int) -> str:
    in_use, _state = store.takes.in_use(chunk_id)
    takes = {t.take: t for t in store.takes.takes(chunk_id)}
    kept = takes.get(in_use)
    verdict = "clean" if kept is not None and not kept.bad else "still doubtful"
    score = f", score {kept.score:.2f}" if kept is not None else ""
    return f"take {in_use} of {len(takes)} in use ({verdict}{score})"


COMMANDS = [review, take]  # render bench-takes: jobs/cli/bench.py (benchmarks)
