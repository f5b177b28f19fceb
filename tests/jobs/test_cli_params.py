"""``--batch-size auto|N``."""

from __future__ import annotations

import click
import pytest

from jobs.cli.params import BATCH_SIZE


def test_batch_size_accepts_auto_or_rows() -> None:
    assert BATCH_SIZE.convert("auto", None, None) == 0
    assert BATCH_SIZE.convert("AUTO", None, None) == 0
    assert BATCH_SIZE.convert("16", None, None) == 16
    for bad in ("many", "-3", "5000"):
        with pytest.raises(click.BadParameter):
            BATCH_SIZE.convert(bad, None, None)
