"""The connection every part of the store shares: one SQLAlchemy engine, one transaction per call.

Database failures become :class:`jobs.errors.StoreError` here, for every query of the package, with
what they mean for the user (:mod:`jobs.store.health`: damaged, read-only, full).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Executable
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from jobs.db import is_sqlite, make_engine, normalise_url, redact
from jobs.errors import StoreError
from jobs.events import JobHooks
from jobs.store.health import StoreFile, explain


class Database:
    """The store behind one URL (``sqlite:///…/render.db`` or ``postgresql+psycopg://…``)."""

    def __init__(self, url: str, hooks: JobHooks = JobHooks()) -> None:
        self.url = normalise_url(url)
        self.is_sqlite = is_sqlite(self.url)
        try:
            self.engine = make_engine(self.url, hooks)
        except (DBAPIError, OSError) as exc:
            raise explain(self.url, exc, redact(self.url), opening=True) from exc
        self.file = StoreFile(self.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One transaction (SQLite: ``BEGIN IMMEDIATE``, see :mod:`jobs.db`); committed when the block ends."""
        try:
            with self._sessions.begin() as session:
                yield session
        except DBAPIError as exc:
            raise explain(self.url, exc, redact(self.url)) from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"job store error: {exc}") from exc

    def verify(self) -> None:
        """Raise :class:`StoreError` if the SQLite file was deleted, replaced or damaged since it was
        opened (:class:`jobs.store.health.StoreFile`); a run calls it before saying it succeeded."""
        self.file.verify(self.engine)

    def close(self) -> None:
        self.engine.dispose()


def assign(row: object, **values: Any) -> bool:
    """Set attributes that differ; True when anything changed (so unchanged re-plans write nothing)."""
    changed = False
    for name, value in values.items():
        if getattr(row, name, None) != value:
            setattr(row, name, value)
            changed = True
    return changed


def count(s: Session, stmt: Executable) -> int:
    """Rows an UPDATE/DELETE touched."""
    result = s.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)
