"""The ``render`` command line.

``render BOOK --voice NAME`` is the main form (it runs ``render run``); the other commands are
subcommands. Library errors (typed, from ``renderer``, ``jobs`` and ``export``) are turned into one
friendly line and a non-zero exit code here and nowhere else.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import click

from export.errors import ExportError
from jobs.errors import JobsError
from renderer.errors import RendererError

if TYPE_CHECKING:
    from jobs.services import Services

#: Exit code for errors caused by the user's input (bad file, wrong option value).
EXIT_USER_ERROR = 2
#: Exit code when the job was interrupted (Ctrl-C / SIGTERM) after a clean shutdown.
EXIT_INTERRUPTED = 130


class RenderGroup(click.Group):
    """A group whose first argument may be a book path instead of a command name."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        first = next((a for a in args if not a.startswith("-")), None)
        help_only = any(a in ("--help", "-h") for a in args[:1])
        if first is not None and first not in self.commands and not help_only:
            args = ["run", *args]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (RendererError, JobsError, ExportError) as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            click.echo("interrupted; progress is saved, run the same command again to resume", err=True)
            ctx.exit(EXIT_INTERRUPTED)


@click.group(cls=RenderGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="audiobook-renderer", prog_name="render")
def cli() -> None:
    """Render EPUB books to chapter audio files with a GPT-SoVITS voice.

    \b
    Main form:
      render BOOK --voice NAME      plan, synthesize and export; resumes when run again
    """


def _register() -> None:
    from jobs.cli import bench, doctor, export_cmd, render_cmd, say, takes_cmd, text_cmd, voice

    for module in (render_cmd, takes_cmd, voice, export_cmd, bench, doctor, say, text_cmd):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main(argv: list[str] | None = None, services: Services | None = None) -> None:
    """Console-script entry point; ``services`` replaces the real engine, hooks or audio writer (tests)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    click.ClickException.exit_code = EXIT_USER_ERROR
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="render", obj=services)
