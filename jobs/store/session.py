"""The connection every part of the store shares: one SQLAlchemy engine, one transaction per call.

Database failures become :class:`jobs.errors.StoreError` here, for every query of the package.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Executable
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from jobs.db import is_sqlite, make_engine, normalise_url
from jobs.errors import StoreError


class Database:
    """The store behind one URL (``sqlite:///…/render.db`` or ``postgresql+psycopg://…``)."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.is_sqlite = is_sqlite(self.url)
        self.engine = make_engine(self.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One transaction (SQLite: ``BEGIN IMMEDIATE``, see :mod:`jobs.db`); committed when the block ends."""
        try:
            with self._sessions.begin() as session:
                yield session
        except DBAPIError as exc:
            raise StoreError(f"job store error ({type(exc.orig).__name__}): {exc.orig}") from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"job store error: {exc}") from exc

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
