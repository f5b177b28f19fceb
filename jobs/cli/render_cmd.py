"""`render run` (the main form), `plan`, `status`, `worker`, `retry-failed`, `demo`."""

from __future__ import annotations

import click


@click.command("run")
@click.argument("book", type=click.Path(dir_okay=False))
@click.option("--voice", "voice_name", required=True, help="Voice name (see `render voice list`).")
def run(book: str, voice_name: str) -> None:
    """Plan, synthesize and export BOOK; resumes whatever exists."""
    raise click.ClickException("not implemented yet")


COMMANDS = [run]
