"""Every command of the `render` CLI prints its help; unknown options give a clear error."""

from __future__ import annotations

import click
from click.testing import CliRunner

from jobs.cli import cli


def _all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for name, command in sorted(group.commands.items()):
        paths.append((*prefix, name))
        if isinstance(command, click.Group):
            paths.extend(_all_commands(command, (*prefix, name)))
    return paths


def test_top_level_help_lists_commands() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "render BOOK --voice NAME" in result.output


def test_every_command_has_help() -> None:
    runner = CliRunner()
    paths = _all_commands(cli)
    assert len(paths) >= 1
    for path in paths:
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output, path


def test_unknown_option_is_a_clear_error() -> None:
    result = CliRunner().invoke(cli, ["run", "book.epub", "--voice", "x", "--no-such-option"])
    assert result.exit_code == 2
    assert "No such option" in result.output
