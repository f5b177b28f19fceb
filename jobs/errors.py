"""Typed errors of the application layer (books, store, workers)."""

from __future__ import annotations


class JobsError(Exception):
    """Base class for every error raised by :mod:`jobs`."""


class BookError(JobsError):
    """A book file cannot be read: names the file, what is wrong and what to do."""

    def __init__(self, path: object, problem: str, hint: str = "") -> None:
        self.path = str(path)
        self.problem = problem
        self.hint = hint
        message = f"{self.path}: {problem}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)


class StoreError(JobsError):
    """The job store (SQLite/PostgreSQL) cannot be opened or is inconsistent."""
