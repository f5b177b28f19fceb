"""Typed errors of the export stage."""

from __future__ import annotations


class ExportError(Exception):
    """Base class for every error raised by :mod:`export`."""


class EncoderUnavailableError(ExportError):
    """The requested output format needs a tool that is not installed (e.g. ffmpeg for M4B)."""


class ReadAlongError(ExportError):
    """The read-along EPUB cannot be made from this book (not an EPUB 3, changed since it was planned, ...)."""


class DiskFullError(ExportError):
    """The disk filled up during the export; nothing half-written was left in place of the output files."""

    def __init__(self, folder: object, needed_bytes: int, free_bytes: int) -> None:
        self.folder, self.needed_bytes, self.free_bytes = folder, needed_bytes, free_bytes
        super().__init__(
            f"disk full while exporting to {folder}: the export needs about {_megabytes(needed_bytes)} free there "
            f"({_megabytes(free_bytes)} free now). Nothing was replaced and the rendered chunks are kept: free some "
            "space (or export to another folder with `render export BOOK --to DIR`) and run the command again")


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n < 10e9 else f"{n / 1e9:.1f} GB"
