"""Typed errors raised by the engine library.

Library code raises these; only the CLI (``jobs.cli``) turns them into friendly messages.
Every error carries enough context (file path, what was found, what to do) to be shown as-is.
"""

from __future__ import annotations


class RendererError(Exception):
    """Base class for every error raised by :mod:`renderer`."""


class CheckpointError(RendererError):
    """A weight file could not be loaded: wrong kind, unsupported version, corrupt or unsafe."""

    def __init__(self, path: object, problem: str, hint: str = "") -> None:
        self.path = str(path)
        self.problem = problem
        self.hint = hint
        message = f"{self.path}: {problem}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)


class UnsafeCheckpointError(CheckpointError):
    """The pickle inside a weight file asks for code we refuse to run."""


class VoiceError(RendererError):
    """A voice folder or a voice import input is missing or invalid."""


class TextError(RendererError):
    """The text frontend cannot process a piece of text."""


class OptionsError(RendererError, ValueError):
    """A user option is out of range; raised when option dataclasses are validated."""


class BackendUnavailableError(RendererError):
    """A requested backend or device is not installed or not usable on this machine."""
