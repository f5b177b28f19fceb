"""Tables of the job store and how to connect to it.

The store is SQLite in WAL mode by default (one file, ``<out>/render.db``) and PostgreSQL when a
``postgresql+psycopg://`` URL is given: the same models and the same queries (all in
:mod:`jobs.store`) serve both.

The tables below are the schema of the newest version (:data:`jobs.migrations.SCHEMA_VERSION`).
Changing one means adding a migration step in :mod:`jobs.migrations.steps` that brings older stores
to the same shape; ``tests/jobs/test_migrations.py`` compares a migrated store with a fresh one.

Times are floats (seconds since the epoch, from the clock of the process that writes them) so that
both databases store them identically; workers on several machines need roughly synchronised
clocks (NTP) for lease expiry to be fair, and the lease length (default 120 s) leaves ample margin.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from jobs.errors import StoreError
from jobs.events import JobHooks
from jobs.migrations import VERSION_TABLE, ensure_schema

#: Chunk states. ``leased`` chunks belong to one worker until their lease expires.
PENDING, LEASED, DONE, FAILED = "pending", "leased", "done", "failed"
CHUNK_STATES = (PENDING, LEASED, DONE, FAILED)

#: Worker states: ``running`` until it stops cleanly (``stopped``) or is found gone (``dead``).
WORKER_RUNNING, WORKER_STOPPED, WORKER_DEAD = "running", "stopped", "dead"
WORKER_STATES = (WORKER_RUNNING, WORKER_STOPPED, WORKER_DEAD)

#: What caused a chunk's ``last_error``: its text (permanent until the text changes), the engine
#: (an exception while rendering it: counts as an attempt) or its worker dying while holding it
#: (kill, crash, power loss, lost lease: counted in ``worker_deaths``, not as an attempt).
ERROR_INPUT, ERROR_ENGINE, ERROR_WORKER = "input", "engine", "worker"
ERROR_KINDS = (ERROR_INPUT, ERROR_ENGINE, ERROR_WORKER)

#: How a done chunk's take came to be (``chunks.take_state``; None: rendered before takes were scored):
#: clean at the first take; clean after re-rolls; still bad after ``--max-takes`` (a person should listen);
#: chosen or accepted by a person (``render take``); a person asked for another take (pending/leased).
TAKE_CLEAN, TAKE_REROLLED, TAKE_DOUBTFUL, TAKE_ACCEPTED, TAKE_REQUESTED = (
    "clean", "rerolled", "doubtful", "accepted", "requested")
TAKE_STATES = (TAKE_CLEAN, TAKE_REROLLED, TAKE_DOUBTFUL, TAKE_ACCEPTED, TAKE_REQUESTED)

#: File name of the embedded store inside the output folder.
SQLITE_FILENAME = "render.db"

#: Seconds a SQLite writer waits for the write lock before giving up (many local workers share it).
SQLITE_BUSY_TIMEOUT_MS = 60_000


class Base(DeclarativeBase):
    pass


def one_of(column: str, values: tuple[str, ...], name: str) -> CheckConstraint:
    """CHECK that ``column`` holds one of ``values`` (NULL passes: nullable columns stay nullable)."""
    listed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=name)


class BookRow(Base):
    """One book: where it came from, with which voice and options it is rendered."""

    __tablename__ = "books"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_path: Mapped[str] = mapped_column(String(1024), unique=True)
    source_hash: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(512), default="")
    author: Mapped[str] = mapped_column(String(512), default="")
    language: Mapped[str] = mapped_column(String(16), default="en")
    identifier: Mapped[str | None] = mapped_column(String(512), nullable=True)
    cover: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    cover_mime: Mapped[str | None] = mapped_column(String(64), nullable=True)
    voice_name: Mapped[str] = mapped_column(String(256))
    voice_id: Mapped[str] = mapped_column(String(64))
    engine_version: Mapped[str] = mapped_column(String(64))
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class ChapterRow(Base):
    """A chapter of a book, in reading order; skipped chapters have no chunks."""

    __tablename__ = "chapters"
    __table_args__ = (UniqueConstraint("book_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    book_id: Mapped[int] = mapped_column(ForeignKey("books.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(1024), default="")
    href: Mapped[str] = mapped_column(String(1024), default="")
    anchor: Mapped[str | None] = mapped_column(String(512), nullable=True)
    kind: Mapped[str] = mapped_column(String(16), default="body")
    skipped: Mapped[bool] = mapped_column(Boolean, default=False)
    skip_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    selected: Mapped[bool] = mapped_column(Boolean, default=True)
    paragraphs: Mapped[int] = mapped_column(Integer, default=0)
    characters: Mapped[int] = mapped_column(Integer, default=0)


class ChunkRow(Base):
    """One piece of text rendered in one go, and the state of its rendering."""

    __tablename__ = "chunks"
    __table_args__ = (
        Index("ix_chunks_claim", "status", "book_id", "chapter_position", "idx"),
        Index("ix_chunks_chapter", "chapter_id", "idx"),
        Index("ix_chunks_owner", "lease_owner"),
        one_of("status", CHUNK_STATES, "ck_chunks_status"),
        one_of("last_error_kind", ERROR_KINDS, "ck_chunks_last_error_kind"),
        one_of("take_state", TAKE_STATES, "ck_chunks_take_state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    book_id: Mapped[int] = mapped_column(ForeignKey("books.id", ondelete="CASCADE"))
    chapter_id: Mapped[int] = mapped_column(ForeignKey("chapters.id", ondelete="CASCADE"))
    # Denormalised chapter order, so the claim query needs no join.
    chapter_position: Mapped[int] = mapped_column(Integer)
    idx: Mapped[int] = mapped_column(Integer)
    block_index: Mapped[int] = mapped_column(Integer, default=0)
    text: Mapped[str] = mapped_column(Text)
    normalized: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(16))
    boundary: Mapped[str] = mapped_column(String(16))
    render_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_expires: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    n_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    n_phones: Mapped[int | None] = mapped_column(Integer, nullable=True)
    audio_path: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    timings: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    completed_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    completed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Schema version 2: failure accounting (see ERROR_KINDS).
    worker_deaths: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error_kind: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # Schema version 3: takes (see TakeRow and jobs.takes): the take rendered next (pending, leased) or in use
    # (done), and how that take came to be.
    take: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    take_state: Mapped[str | None] = mapped_column(String(16), nullable=True)


class TakeRow(Base):
    """One rendering of a chunk: its seed, score and reasons, and its audio until it is discarded."""

    __tablename__ = "takes"
    __table_args__ = (UniqueConstraint("chunk_id", "take", name="uq_takes_chunk_take"),
                      Index("ix_takes_voice", "voice_id", "bad"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # (chunk_id, take) is unique: its index serves the lookups by chunk too
    chunk_id: Mapped[int] = mapped_column(ForeignKey("chunks.id", ondelete="CASCADE"))
    take: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(BigInteger)
    score: Mapped[float] = mapped_column(Float)
    bad: Mapped[bool] = mapped_column(Boolean)
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    measures: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    audio_path: Mapped[str | None] = mapped_column(String(1024), nullable=True)  # None once discarded
    duration_s: Mapped[float] = mapped_column(Float)
    n_tokens: Mapped[int] = mapped_column(Integer)
    n_phones: Mapped[int] = mapped_column(Integer)
    timings: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The voice's speaking rate in this take, for the voice's norm (jobs.store.takes.norm_rates).
    tokens_per_phone: Mapped[float | None] = mapped_column(Float, nullable=True)
    speech_s_per_phone: Mapped[float | None] = mapped_column(Float, nullable=True)
    voice_id: Mapped[str] = mapped_column(String(64))
    worker_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[float] = mapped_column(Float)


class WorkerRow(Base):
    """A worker process; its heartbeat tells others whether it is alive."""

    __tablename__ = "workers"
    __table_args__ = (one_of("state", WORKER_STATES, "ck_workers_state"),)

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(256))
    pid: Mapped[int] = mapped_column(Integer)
    process_started_at: Mapped[float] = mapped_column(Float, default=0.0)
    started_at: Mapped[float] = mapped_column(Float)
    heartbeat_at: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16), default=WORKER_RUNNING)
    # Schema version 2: a death is recorded against the worker, not the chunks it held.
    died_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    death_cause: Mapped[str | None] = mapped_column(Text, nullable=True)
    chunks_lost: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class BatchRow(Base):
    """Figures of one rendered batch: what it produced and where its time went."""

    __tablename__ = "batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    worker_id: Mapped[str] = mapped_column(String(128))
    book_id: Mapped[int] = mapped_column(ForeignKey("books.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[float] = mapped_column(Float)
    batch_size: Mapped[int] = mapped_column(Integer)
    chunks: Mapped[int] = mapped_column(Integer)
    tokens: Mapped[int] = mapped_column(Integer, default=0)
    audio_s: Mapped[float] = mapped_column(Float, default=0.0)
    frontend_s: Mapped[float] = mapped_column(Float, default=0.0)
    prefill_s: Mapped[float] = mapped_column(Float, default=0.0)
    decode_s: Mapped[float] = mapped_column(Float, default=0.0)
    vocode_s: Mapped[float] = mapped_column(Float, default=0.0)
    write_s: Mapped[float] = mapped_column(Float, default=0.0)


class SchemaVersionRow(Base):
    """One row per schema version the store went through; the highest is its version.

    Its shape never changes: every program version reads it to decide what to do (:mod:`jobs.migrations`).
    """

    __tablename__ = VERSION_TABLE

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    applied_at: Mapped[float] = mapped_column(Float)
    note: Mapped[str] = mapped_column(String(256))


def sqlite_url(out_dir: str | Path) -> str:
    """URL of the embedded store inside an output folder."""
    return f"sqlite:///{Path(out_dir).resolve() / SQLITE_FILENAME}"


def normalise_url(url: str) -> str:
    """Accept the short forms users type (``postgresql://``, a bare file path) and return a full URL."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if "://" not in url:
        return f"sqlite:///{Path(url).resolve()}"
    return url


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _configure_sqlite(engine: Engine) -> None:
    """WAL, a long busy timeout, foreign keys, and BEGIN IMMEDIATE for every transaction.

    Taking the write lock when the transaction starts (not at its first write) is what makes the
    claim (select + update) atomic between processes and avoids SQLITE_BUSY deadlocks on upgrade.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, hooks: JobHooks = JobHooks()) -> Engine:
    """Create the SQLAlchemy engine for a store URL, with the tables of this program's schema version.

    A new store is created, an older one migrated (SQLite: after a backup copy), a newer one refused
    with :class:`jobs.errors.StoreTooNewError` (see :mod:`jobs.migrations`). Database and file-system
    errors propagate as they are; :class:`jobs.store.session.Database` explains them.
    """
    url = normalise_url(url)
    try:
        if is_sqlite(url):
            path = url.split("sqlite:///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
            _configure_sqlite(engine)
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=2)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise StoreError(f"cannot use store URL {redact(url)!r}: {exc}") from exc
    try:
        ensure_schema(engine, Base.metadata, hooks)
    except BaseException:
        engine.dispose()
        raise
    return engine


def redact(url: str) -> str:
    """Hide a password in a URL before it goes into an error message."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url
