"""Schema versions of the job store: create, adopt, migrate forward, or refuse.

Every opening of a store (:func:`jobs.db.make_engine`) calls :func:`ensure_schema`, which in one
transaction, holding the store's migration lock:

- creates a fresh store at :data:`SCHEMA_VERSION` (the tables of :mod:`jobs.db`);
- adopts a store written before versions existed (it has the version-1 tables and no
  ``schema_version`` table) as version 1;
- migrates an older store forward through :data:`jobs.migrations.steps.STEPS`, after a backup copy
  of a SQLite file (``render.db.bak-v<old>-<time>`` beside it, named in a warning);
- refuses a store newer than this program with :class:`jobs.errors.StoreTooNewError`.

Locking, so that concurrent openers (several workers) never migrate twice: PostgreSQL takes a
transaction-scoped advisory lock; SQLite transactions of :mod:`jobs.db` start with ``BEGIN IMMEDIATE``
(the write lock), so a second opener waits, then finds the new version.

Crash safety: the whole migration is one transaction. PostgreSQL's DDL is transactional and SQLite's
too (ALTER/CREATE/DROP inside ``BEGIN`` roll back with it), so a process killed mid-migration leaves
the old version untouched and the next opening migrates again from it.

Why Alembic's operations but not its script directory: the steps need its DDL layer (named CHECK
constraints, SQLite's copy-and-move rebuild in ``batch_alter_table``: code we would otherwise have to
write and test for SQLite's ALTER TABLE limits), but not revision files found through an ``alembic.ini``
and ``env.py``, random revision ids or branching. Versions here are a line of small integers shipped in
the package (users read them in messages: "store version 3, this program knows up to 2"), applied by
the same program that runs the jobs, offline, under our own lock and with our own backup.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, MetaData, Table, func, insert, inspect, select, text
from sqlalchemy.exc import SQLAlchemyError

from jobs.errors import StoreError, StoreTooNewError
from jobs.migrations.steps import STEPS, V1_COLUMNS, Step

__all__ = ["SCHEMA_VERSION", "VERSION_TABLE", "SchemaOutcome", "ensure_schema", "stored_version"]

log = logging.getLogger(__name__)

#: The schema version this program writes (the version of the tables in :mod:`jobs.db`).
SCHEMA_VERSION = STEPS[-1].version

#: Name of the table holding one row per version the store went through (version, applied_at, note).
VERSION_TABLE = "schema_version"

#: Key of PostgreSQL's advisory lock that serialises schema checks and migrations ("render" in ASCII).
PG_MIGRATION_LOCK = 0x72656E646572


@dataclass(frozen=True)
class SchemaOutcome:
    """What :func:`ensure_schema` found and did."""

    found: int | None  # version before; None for a new store
    version: int  # version now
    backup: Path | None = None  # SQLite copy taken before migrating


def ensure_schema(engine: Engine, metadata: MetaData) -> SchemaOutcome:
    """Bring the store behind ``engine`` to :data:`SCHEMA_VERSION` (see the module docstring).

    ``metadata`` holds the current tables, including :data:`VERSION_TABLE`.
    """
    with engine.begin() as conn:
        _lock(conn)
        found = stored_version(conn)
        if found is None:
            metadata.create_all(conn)
            _record(conn, metadata, SCHEMA_VERSION, "created")
            return SchemaOutcome(None, SCHEMA_VERSION)
        if found > SCHEMA_VERSION:
            raise StoreTooNewError(_describe(engine), found, SCHEMA_VERSION)
        if found == SCHEMA_VERSION:
            return SchemaOutcome(found, found)
        backup = _backup_sqlite(engine, found)
        log.warning(
            "job store %s is schema version %d; this program uses version %d: migrating it%s",
            _describe(engine), found, SCHEMA_VERSION, f" (copy of the old file saved as {backup})" if backup else "",
        )
        if not inspect(conn).has_table(VERSION_TABLE):
            metadata.tables[VERSION_TABLE].create(conn)
            _record(conn, metadata, found, "adopted: written before schema versions existed")
        _migrate(conn, metadata, found)
    return SchemaOutcome(found, SCHEMA_VERSION, backup)


def stored_version(conn: Connection) -> int | None:
    """The store's schema version; 1 for a store written before versions existed; None when empty."""
    inspector = inspect(conn)
    tables = set(inspector.get_table_names())
    if VERSION_TABLE in tables:
        version = conn.execute(text(f"SELECT MAX(version) FROM {VERSION_TABLE}")).scalar()
        if version is None:
            raise StoreError(f"the job store's {VERSION_TABLE} table is empty: it was not written by this program")
        return int(version)
    ours = tables & set(V1_COLUMNS)
    if not ours:
        return None
    for table, columns in V1_COLUMNS.items():
        present = {c["name"] for c in inspector.get_columns(table)} if table in tables else set()
        missing = [c for c in columns if c not in present]
        if missing:
            raise StoreError(
                f"the job store has a table layout this program does not know (table {table!r} lacks "
                f"{', '.join(missing)}): it was not written by a released version; render into a new --out folder"
            )
    return 1


def _lock(conn: Connection) -> None:
    """Serialise schema work between processes (SQLite: already holds BEGIN IMMEDIATE's write lock)."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(PG_MIGRATION_LOCK)))


def _migrate(conn: Connection, metadata: MetaData, found: int) -> None:
    ops = Operations(MigrationContext.configure(conn))
    for step in STEPS:
        if step.version <= found:
            continue
        try:
            step.upgrade(ops)
        except SQLAlchemyError as exc:
            raise StoreError(_failed(step, exc)) from exc
        _record(conn, metadata, step.version, step.title)


def _failed(step: Step, exc: SQLAlchemyError) -> str:
    cause = getattr(exc, "orig", None) or exc
    return (f"migrating the job store to schema version {step.version} failed ({cause}); nothing was changed, "
            "the store keeps its old version")


def _record(conn: Connection, metadata: MetaData, version: int, note: str) -> None:
    table: Table = metadata.tables[VERSION_TABLE]
    conn.execute(insert(table).values(version=version, applied_at=time.time(), note=note[:256]))


def _describe(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


# ----------------------------------------------------------------------------------------- backup


def _backup_sqlite(engine: Engine, version: int) -> Path | None:
    """Copy a SQLite store to ``<name>.bak-v<version>-<time>`` beside it, before migrating it.

    Called while this process holds the write lock (``BEGIN IMMEDIATE``), so the copy, read through a
    second read-only connection (WAL lets it read), is exactly the committed store about to be migrated.
    Written to a ``.partial`` file first and renamed: a kill during the copy leaves no file that looks whole.
    """
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    source = Path(database)
    for stale in source.parent.glob(f"{source.name}.bak-*.partial"):
        stale.unlink(missing_ok=True)
    target = _free_name(source, version)
    partial = target.with_name(target.name + ".partial")
    try:
        _copy_sqlite(source, partial)
        os.replace(partial, target)
        _fsync_dir(target.parent)
    except (OSError, sqlite3.Error) as exc:
        partial.unlink(missing_ok=True)
        need = f"about {source.stat().st_size / 1e6:.1f} MB free and write access in {source.parent}"
        raise StoreError(
            f"cannot save a copy of {source} before migrating it to this program's schema ({exc}); the copy "
            f"needs {need}. The store was not changed: make room and run the same command again"
        ) from exc
    return target


def _free_name(source: Path, version: int) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = source.with_name(f"{source.name}.bak-v{version}-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = source.with_name(f"{source.name}.bak-v{version}-{stamp}-{n}")
    return target


def _copy_sqlite(source: Path, target: Path) -> None:
    reader = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=60)
    try:
        writer = sqlite3.connect(target)
        try:
            reader.backup(writer)
            # One self-contained file (the copy inherits WAL mode from the source's header).
            writer.execute("PRAGMA journal_mode = DELETE")
        finally:
            writer.close()
    finally:
        reader.close()
    with open(target, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    fd: Any = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
