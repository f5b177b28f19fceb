"""Click parameter types and the services object shared by several commands."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from renderer.backends import PRECISIONS

if TYPE_CHECKING:
    from jobs.services import Services

#: `--precision` choices (part of every render key).
PRECISION = click.Choice(PRECISIONS)


def current_services() -> Services:
    """What the running command is built from: ``jobs.cli.main(services=...)`` or ``invoke(obj=...)`` in tests,
    else the real renderer."""
    from jobs.services import Services

    found = click.get_current_context().find_object(Services)
    return found if found is not None else Services()


class BatchSizeType(click.ParamType):
    """``auto`` (stored as 0: the engine chooses) or a number of rows from 1 to 4096."""

    name = "auto|N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        if str(value).strip().lower() in ("auto", "0"):
            return 0
        try:
            rows = int(value)
        except ValueError:
            self.fail(f"expected 'auto' or a number of rows, got {value!r}", param, ctx)
        if not 1 <= rows <= 4096:
            self.fail(f"batch size must be 'auto' or 1..4096, got {rows}", param, ctx)
        return rows


BATCH_SIZE = BatchSizeType()
