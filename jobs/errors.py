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


class StoreTooNewError(StoreError):
    """The job store was written by a newer version of the program (a higher schema version)."""

    def __init__(self, store: str, store_version: int, program_version: int) -> None:
        self.store = store
        self.store_version = store_version
        self.program_version = program_version
        super().__init__(
            f"the job store {store} has schema version {store_version}, newer than this program knows "
            f"(up to {program_version}): it was written by a newer audiobook-renderer. Upgrade this "
            "installation (pip install -U audiobook-renderer) or render into another --out folder; "
            "the store was not changed"
        )
