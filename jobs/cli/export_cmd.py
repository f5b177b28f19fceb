"""`render export`: re-export a book's finished chapters from the stored chunk audio."""

from __future__ import annotations

from pathlib import Path

import click

from jobs.cli.outputs import listener_options
from jobs.cli.render_cmd import FORMATS, PRESETS, _common_store_options, open_one_book
from jobs.errors import JobsError


@click.command("export")
@click.argument("book")
@_common_store_options
@click.option("--format", "export_format", type=click.Choice(FORMATS), default="mp3", show_default=True,
              help="Format of the exported chapter files.")
@click.option("--preset", type=click.Choice(PRESETS), default="acx", show_default=True,
              help="acx: ACX loudness/peak/noise rules, MP3 44.1 kHz CBR; podcast: -16 LUFS; none: no mastering.")
@click.option("--single-file", is_flag=True, help="Also export the whole book as one file.")
@click.option("--to", "target", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the exported files (default: the output folder).")
@listener_options
def export(book: str, out_dir: Path | None, db_url: str | None, audio_dir: Path | None, export_format: str,
           preset: str, single_file: bool, target: Path | None, subtitles: str | None, read_along: bool) -> None:
    """Export BOOK's complete chapters again (other format, preset or loudness) without re-rendering.

    BOOK is the book file (or its id in the store, see `render status`). The folder then holds exactly
    this export: files an earlier export wrote and this one did not (other chapters, another format) are
    removed; files the program did not write are never touched.
    """
    from jobs.exporting import export_from_store
    from jobs.pipeline import audio_root, default_out_dir

    store, found = open_one_book(book, out_dir, db_url)
    out = out_dir or default_out_dir(Path(found.source_path))
    with store:
        root = audio_root(out, db_url, audio_dir)
        report = export_from_store(store, found.id, root, target or out, export_format=export_format,
                                   preset=preset, single_file=single_file, subtitles=subtitles,
                                   read_along=read_along)
        counts = store.status.counts(found.id)
    if report is None:
        raise JobsError("no chapter is complete yet: nothing to export (see `render status`)")
    click.echo(f"exported to {target or out}")
    missing = counts["pending"] + counts["leased"] + counts["failed"]
    if missing:
        click.echo(f"note: {missing} chunk(s) are not done; their chapters were left out", err=True)


COMMANDS = [export]
