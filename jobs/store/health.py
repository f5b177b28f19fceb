"""What a failing store means for the user, and whether the store a run used is still whole.

SQLite reports a damaged file as "database disk image is malformed", a read-only folder as "unable to
open database file", a full disk as "database or disk is full": true, but they name no file and no
remedy. :func:`explain` turns a database or file-system error into a :class:`StoreError` that says
which file or folder, what is wrong and what to do. :class:`StoreFile` notices a store that was
deleted, replaced or damaged while a run used it (SQLite keeps serving its cached pages and
write-ahead log, so such a run would otherwise end "successfully" with its progress gone).
"""

from __future__ import annotations

import errno
import os
import sqlite3
import tempfile
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from jobs.errors import StoreError

_DAMAGED = ("malformed", "file is not a database", "not a database", "database corrupt")
_READ_ONLY = ("readonly database", "read-only", "unable to open database file")
_FULL = ("database or disk is full", "disk is full")
_READ_ONLY_ERRNOS = (errno.EROFS, errno.EACCES, errno.EPERM)


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for PostgreSQL or an in-memory store)."""
    if not url.startswith("sqlite"):
        return None
    path = url.split("sqlite:///", 1)[-1]
    return Path(path) if path and path != ":memory:" else None


def explain(url: str, exc: BaseException, shown_url: str, *, opening: bool = False) -> StoreError:
    """A clear :class:`StoreError` for a failure of the store behind ``url`` (``shown_url``: the URL
    without its password; ``opening``: while connecting and checking its schema)."""
    cause = getattr(exc, "orig", None) or exc
    detail = str(cause).strip() or type(cause).__name__
    path = sqlite_path(url)
    lowered = detail.lower()
    if path is not None:
        if (isinstance(cause, OSError) and cause.errno == errno.ENOSPC) or any(s in lowered for s in _FULL):
            return StoreError(full_message(path, detail))
        if any(s in lowered for s in _DAMAGED):
            return StoreError(damaged_message(path, detail))
        if _is_read_only(cause, lowered) and not _writable(path.parent):
            return StoreError(read_only_message(path, detail))
    if opening:
        return StoreError(f"cannot open the job store {shown_url}: {detail}")
    return StoreError(f"job store error ({type(cause).__name__}) in {shown_url}: {detail}")


def damaged_message(path: Path, detail: str) -> str:
    backups = sorted(path.parent.glob(f"{path.name}.bak-*"))
    restore = f" (or restore the copy saved before its last migration, {backups[-1]})" if backups else ""
    return (
        f"the job store {path} is damaged ({detail}). Move it away (e.g. `mv {path} {path}.damaged`) and run the "
        f"same command again: chunk audio already rendered is found on disk and reused, not rendered again{restore}"
    )


def read_only_message(path: Path, detail: str) -> str:
    folder = _existing(path.parent)
    return (
        f"cannot write the job store {path}: {folder} is read-only ({detail}). Render into a writable folder "
        "(--out DIR), or make that one writable"
    )


def full_message(path: Path, detail: str) -> str:
    return (
        f"the disk holding the job store {path} is full ({detail}): free some space in {path.parent} "
        "(the store needs a few MB; chunk audio about 8 MB per minute) and run the same command again; "
        "nothing rendered is lost"
    )


def _is_read_only(cause: BaseException, lowered: str) -> bool:
    if isinstance(cause, OSError):
        return cause.errno in _READ_ONLY_ERRNOS
    return any(s in lowered for s in _READ_ONLY)


def _existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _writable(folder: Path) -> bool:
    """Whether a file can be created in ``folder`` (or its nearest existing parent). Tried, not looked up:
    root passes every permission check but still cannot write to a read-only mount."""
    try:
        with tempfile.TemporaryFile(dir=_existing(folder)):
            return True
    except OSError as exc:
        return exc.errno not in _READ_ONLY_ERRNOS


class StoreFile:
    """The SQLite file a store was opened on, to tell at the end of a run whether it is still that file
    and still whole. Does nothing for PostgreSQL (the server guards its own files)."""

    def __init__(self, url: str) -> None:
        self.path = sqlite_path(url)
        self._identity = self._stat()

    def _stat(self) -> tuple[int, int] | None:
        if self.path is None:
            return None
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def verify(self, engine: Engine) -> None:
        """Raise :class:`StoreError` when the file was deleted, replaced or damaged since it was opened.

        Closes the engine's connections first (SQLite then writes its log back into the file), so that
        the check reads the file on disk, not pages cached by this process.
        """
        if self.path is None:
            return
        now = self._stat()
        if now is None:
            raise StoreError(
                f"the job store {self.path} was deleted while this run used it: this run's progress is lost. "
                "Run the same command again: chunk audio already rendered is found on disk and reused"
            )
        if now != self._identity:
            raise StoreError(
                f"the job store {self.path} was replaced by another file while this run used it: this run's "
                "progress may be lost. Run the same command again (chunk audio on disk is reused)"
            )
        engine.dispose()
        try:
            with engine.connect() as conn:
                found = [str(r[0]) for r in conn.execute(text("PRAGMA quick_check"))]
        except (SQLAlchemyError, sqlite3.Error) as exc:
            detail = str(getattr(exc, "orig", None) or exc)
            raise StoreError(damaged_message(self.path, detail)) from exc
        if found != ["ok"]:
            raise StoreError(damaged_message(self.path, "; ".join(found[:3])))


__all__ = ["StoreFile", "damaged_message", "explain", "sqlite_path"]
