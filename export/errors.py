"""Typed errors of the export stage."""

from __future__ import annotations


class ExportError(Exception):
    """Base class for every error raised by :mod:`export`."""


class EncoderUnavailableError(ExportError):
    """The requested output format needs a tool that is not installed (e.g. ffmpeg for M4B)."""
