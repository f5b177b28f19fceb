"""The README's command reference, generated from the CLI's own help texts.

``make readme`` (``python -m jobs.cli.reference README.md``) rewrites the part of the README between the
two marker lines; a test fails when it is stale. Every command, subcommand and visible option appears with
the help text ``--help`` prints, so a command added to the CLI is documented by writing its help.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from pathlib import Path

import click

BEGIN = "<!-- BEGIN COMMAND REFERENCE: generated from the CLI's help by `make readme`; do not edit by hand -->"
END = "<!-- END COMMAND REFERENCE -->"


def commands(group: click.Group, ctx: click.Context) -> Iterator[tuple[click.Command, click.Context]]:
    """Every visible command under ``group`` with its context (``run`` first, then by name), depth first."""
    names = sorted(group.list_commands(ctx), key=lambda name: (name != "run", name))
    for name in names:
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        sub = click.Context(command, info_name=name, parent=ctx, **command.context_settings)
        yield command, sub
        if isinstance(command, click.Group):
            yield from commands(command, sub)


def help_text(command: click.Command) -> str:
    """The command's help as ``--help`` shows it (click's no-rewrap markers removed)."""
    text = inspect.cleandoc(command.help or "")
    return "\n".join(line for line in text.splitlines() if line.strip() != "\b").strip()


def options(command: click.Command, ctx: click.Context) -> list[tuple[str, str]]:
    """(option names with their value, help with its default) of every visible option, as ``--help`` prints them."""
    found = []
    help_option = command.get_help_option(ctx)
    for param in command.get_params(ctx):
        if not isinstance(param, click.Option) or param.hidden or param is help_option:
            continue
        record = param.get_help_record(ctx)
        if record is not None:
            found.append(record)
    return found


def command_reference(cli: click.Group | None = None) -> str:
    """Markdown: a table of commands, then each command's usage, description and options."""
    if cli is None:
        from jobs.cli import cli as render_cli

        cli = render_cli
    root = click.Context(cli, info_name="render", **cli.context_settings)
    listed = list(commands(cli, root))
    lines = ["`render BOOK --voice NAME` is short for `render run BOOK --voice NAME`. Every command takes `--help`.",
             "", "| Command | What it does |", "|---|---|"]
    for command, ctx in listed:
        summary = command.get_short_help_str(limit=200).replace("|", "\\|")
        lines.append(f"| `{ctx.command_path}` | {summary} |")
    lines += ["", "<details><summary>Options of every command</summary>", ""]
    for command, ctx in listed:
        usage = command.get_usage(ctx).removeprefix("Usage: ")
        lines += [f"#### `{ctx.command_path}`", "", "```", usage, "```", "", help_text(command), ""]
        for names, text in options(command, ctx):
            lines.append(f"- `{names}`: {' '.join(text.split())}")
        lines.append("")
    lines.append("</details>")
    return "\n".join(lines)


def _bounds(text: str) -> tuple[int, int]:
    try:
        start = text.index(BEGIN) + len(BEGIN)
        return start, text.index(END, start)
    except ValueError:
        raise ValueError(f"the README lacks the command reference markers:\n{BEGIN}\n{END}") from None


def readme_section(text: str) -> str:
    """What is between the markers of a README (a :class:`ValueError` when they are missing)."""
    start, end = _bounds(text)
    return text[start:end].strip("\n")


def update_readme(path: Path) -> bool:
    """Rewrite the command reference in ``path``; True when it changed."""
    text = path.read_text(encoding="utf-8")
    fresh = command_reference()
    if readme_section(text) == fresh:
        return False
    start, end = _bounds(text)
    path.write_text(f"{text[:start]}\n{fresh}\n{text[end:]}", encoding="utf-8")
    return True


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    print(f"{target}: {'updated' if update_readme(target) else 'up to date'}")
