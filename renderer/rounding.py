"""Rounding a length up to a whole number of steps (cache capacity, vocoder buckets, page boundaries)."""

from __future__ import annotations


def round_up(value: int, multiple: int) -> int:
    """``value`` rounded up to a multiple of ``multiple`` (``multiple`` <= 1: unchanged)."""
    return value if multiple <= 1 else -(-value // multiple) * multiple
