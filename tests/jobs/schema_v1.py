"""The oldest supported job-store schema (version 1), frozen.

Captured on 2026-12-05 (commit 8cb857d) from ``jobs/db.py`` as released before schema versions
existed: the exact statements ``Base.metadata.create_all`` issued on SQLite and on PostgreSQL
(SQLAlchemy 2.1; only whitespace changed). Stores created by that program have these tables and no
``schema_version`` table. Never edit the DDL to follow the live tables: it stands for files that
already exist on users' disks. The rows are what that program wrote (its states and error messages),
plus one chunk and one worker in a state it never wrote (the columns were free text).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, text

SQLITE_V1_DDL = (
    """CREATE TABLE books (
    id INTEGER NOT NULL,
    source_path VARCHAR(1024) NOT NULL,
    source_hash VARCHAR(64) NOT NULL,
    title VARCHAR(512) NOT NULL,
    author VARCHAR(512) NOT NULL,
    language VARCHAR(16) NOT NULL,
    identifier VARCHAR(512),
    cover BLOB,
    cover_mime VARCHAR(64),
    voice_name VARCHAR(256) NOT NULL,
    voice_id VARCHAR(64) NOT NULL,
    engine_version VARCHAR(64) NOT NULL,
    options JSON NOT NULL,
    meta JSON NOT NULL,
    created_at FLOAT NOT NULL,
    updated_at FLOAT NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (source_path)
)""",
    """CREATE TABLE workers (
    id VARCHAR(128) NOT NULL,
    host VARCHAR(256) NOT NULL,
    pid INTEGER NOT NULL,
    process_started_at FLOAT NOT NULL,
    started_at FLOAT NOT NULL,
    heartbeat_at FLOAT NOT NULL,
    state VARCHAR(16) NOT NULL,
    PRIMARY KEY (id)
)""",
    """CREATE TABLE chapters (
    id INTEGER NOT NULL,
    book_id INTEGER NOT NULL,
    position INTEGER NOT NULL,
    number INTEGER NOT NULL,
    title VARCHAR(1024) NOT NULL,
    href VARCHAR(1024) NOT NULL,
    anchor VARCHAR(512),
    kind VARCHAR(16) NOT NULL,
    skipped BOOLEAN NOT NULL,
    skip_reason TEXT,
    selected BOOLEAN NOT NULL,
    paragraphs INTEGER NOT NULL,
    characters INTEGER NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (book_id, position),
    FOREIGN KEY(book_id) REFERENCES books (id) ON DELETE CASCADE
)""",
    """CREATE INDEX ix_chapters_book_id ON chapters (book_id)""",
    """CREATE TABLE batches (
    id INTEGER NOT NULL,
    worker_id VARCHAR(128) NOT NULL,
    book_id INTEGER NOT NULL,
    started_at FLOAT NOT NULL,
    finished_at FLOAT NOT NULL,
    batch_size INTEGER NOT NULL,
    chunks INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    audio_s FLOAT NOT NULL,
    frontend_s FLOAT NOT NULL,
    prefill_s FLOAT NOT NULL,
    decode_s FLOAT NOT NULL,
    vocode_s FLOAT NOT NULL,
    write_s FLOAT NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(book_id) REFERENCES books (id) ON DELETE CASCADE
)""",
    """CREATE INDEX ix_batches_book_id ON batches (book_id)""",
    """CREATE TABLE chunks (
    id INTEGER NOT NULL,
    book_id INTEGER NOT NULL,
    chapter_id INTEGER NOT NULL,
    chapter_position INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    block_index INTEGER NOT NULL,
    text TEXT NOT NULL,
    normalized TEXT NOT NULL,
    language VARCHAR(16) NOT NULL,
    boundary VARCHAR(16) NOT NULL,
    render_key VARCHAR(64) NOT NULL,
    status VARCHAR(16) NOT NULL,
    attempts INTEGER NOT NULL,
    lease_owner VARCHAR(128),
    lease_expires FLOAT,
    last_error TEXT,
    n_tokens INTEGER,
    n_phones INTEGER,
    audio_path VARCHAR(1024),
    duration_s FLOAT,
    timings JSON,
    completed_by VARCHAR(128),
    completed_at FLOAT,
    PRIMARY KEY (id),
    FOREIGN KEY(book_id) REFERENCES books (id) ON DELETE CASCADE,
    FOREIGN KEY(chapter_id) REFERENCES chapters (id) ON DELETE CASCADE
)""",
    """CREATE INDEX ix_chunks_owner ON chunks (lease_owner)""",
    """CREATE INDEX ix_chunks_claim ON chunks (status, book_id, chapter_position, idx)""",
    """CREATE INDEX ix_chunks_chapter ON chunks (chapter_id, idx)""",
)

POSTGRESQL_V1_DDL = (
    """CREATE TABLE books (
    id SERIAL NOT NULL,
    source_path VARCHAR(1024) NOT NULL,
    source_hash VARCHAR(64) NOT NULL,
    title VARCHAR(512) NOT NULL,
    author VARCHAR(512) NOT NULL,
    language VARCHAR(16) NOT NULL,
    identifier VARCHAR(512),
    cover BYTEA,
    cover_mime VARCHAR(64),
    voice_name VARCHAR(256) NOT NULL,
    voice_id VARCHAR(64) NOT NULL,
    engine_version VARCHAR(64) NOT NULL,
    options JSON NOT NULL,
    meta JSON NOT NULL,
    created_at FLOAT NOT NULL,
    updated_at FLOAT NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (source_path)
)""",
    """CREATE TABLE workers (
    id VARCHAR(128) NOT NULL,
    host VARCHAR(256) NOT NULL,
    pid INTEGER NOT NULL,
    process_started_at FLOAT NOT NULL,
    started_at FLOAT NOT NULL,
    heartbeat_at FLOAT NOT NULL,
    state VARCHAR(16) NOT NULL,
    PRIMARY KEY (id)
)""",
    """CREATE TABLE chapters (
    id SERIAL NOT NULL,
    book_id INTEGER NOT NULL,
    position INTEGER NOT NULL,
    number INTEGER NOT NULL,
    title VARCHAR(1024) NOT NULL,
    href VARCHAR(1024) NOT NULL,
    anchor VARCHAR(512),
    kind VARCHAR(16) NOT NULL,
    skipped BOOLEAN NOT NULL,
    skip_reason TEXT,
    selected BOOLEAN NOT NULL,
    paragraphs INTEGER NOT NULL,
    characters INTEGER NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (book_id, position),
    FOREIGN KEY(book_id) REFERENCES books (id) ON DELETE CASCADE
)""",
    """CREATE INDEX ix_chapters_book_id ON chapters (book_id)""",
    """CREATE TABLE batches (
    id SERIAL NOT NULL,
    worker_id VARCHAR(128) NOT NULL,
    book_id INTEGER NOT NULL,
    started_at FLOAT NOT NULL,
    finished_at FLOAT NOT NULL,
    batch_size INTEGER NOT NULL,
    chunks INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    audio_s FLOAT NOT NULL,
    frontend_s FLOAT NOT NULL,
    prefill_s FLOAT NOT NULL,
    decode_s FLOAT NOT NULL,
    vocode_s FLOAT NOT NULL,
    write_s FLOAT NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(book_id) REFERENCES books (id) ON DELETE CASCADE
)""",
    """CREATE INDEX ix_batches_book_id ON batches (book_id)""",
    """CREATE TABLE chunks (
    id SERIAL NOT NULL,
    book_id INTEGER NOT NULL,
    chapter_id INTEGER NOT NULL,
    chapter_position INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    block_index INTEGER NOT NULL,
    text TEXT NOT NULL,
    normalized TEXT NOT NULL,
    language VARCHAR(16) NOT NULL,
    boundary VARCHAR(16) NOT NULL,
    render_key VARCHAR(64) NOT NULL,
    status VARCHAR(16) NOT NULL,
    attempts INTEGER NOT NULL,
    lease_owner VARCHAR(128),
    lease_expires FLOAT,
    last_error TEXT,
    n_tokens INTEGER,
    n_phones INTEGER,
    audio_path VARCHAR(1024),
    duration_s FLOAT,
    timings JSON,
    completed_by VARCHAR(128),
    completed_at FLOAT,
    PRIMARY KEY (id),
    FOREIGN KEY(book_id) REFERENCES books (id) ON DELETE CASCADE,
    FOREIGN KEY(chapter_id) REFERENCES chapters (id) ON DELETE CASCADE
)""",
    """CREATE INDEX ix_chunks_owner ON chunks (lease_owner)""",
    """CREATE INDEX ix_chunks_claim ON chunks (status, book_id, chapter_position, idx)""",
    """CREATE INDEX ix_chunks_chapter ON chunks (chapter_id, idx)""",
)


def create_v1(conn: Connection) -> None:
    """Create the version-1 tables with the statements of ``conn``'s dialect."""
    ddl = POSTGRESQL_V1_DDL if conn.dialect.name == "postgresql" else SQLITE_V1_DDL
    for statement in ddl:
        conn.execute(text(statement))


WORKER_DEATH_MESSAGE = (
    "the worker stopped without finishing this chunk 3 times (crash, kill or lost lease); "
    "run `render retry-failed BOOK` to try again"
)

BOOK = {
    "id": 1, "source_path": "/books/lighthouse.epub", "source_hash": "ab" * 32, "title": "The Lighthouse",
    "author": "A. Keeper", "language": "en", "identifier": "urn:uuid:1", "cover": b"\x89PNG", "cover_mime": "image/png",
    "voice_name": "narrator", "voice_id": "cd" * 32, "engine_version": "fake-1", "options": json.dumps({"seed": 0}),
    "meta": json.dumps({}), "created_at": 1_700_000_000.0, "updated_at": 1_700_000_100.0,
}
CHAPTERS = [
    {"id": 1, "book_id": 1, "position": 0, "number": 1, "title": "The Storm", "href": "c1.xhtml", "anchor": None,
     "kind": "body", "skipped": False, "skip_reason": None, "selected": True, "paragraphs": 2, "characters": 120},
    {"id": 2, "book_id": 1, "position": 1, "number": 2, "title": "Notes", "href": "c2.xhtml", "anchor": "n",
     "kind": "back", "skipped": True, "skip_reason": "back matter", "selected": True, "paragraphs": 1,
     "characters": 10},
]
#: (id, status, attempts, lease_owner, last_error) of the version-1 chunks, all in chapter 1.
CHUNK_STATES_V1: list[tuple[int, str, int, str | None, str | None]] = [
    (1, "done", 1, None, None),
    (2, "leased", 1, "host:11:aa", None),
    (3, "pending", 0, None, None),
    (4, "failed", 3, None, WORKER_DEATH_MESSAGE),
    (5, "failed", 1, None, "text error: the text frontend produced no phones for this text"),
    (6, "failed", 2, None, "worker error: RuntimeError: CUDA error"),
    (7, "pending", 1, None, "released after an I/O error: [Errno 28] No space left on device"),
    (8, "rendering", 1, "host:12:bb", None),  # never written by version 1: not a known state
]
WORKERS = [
    ("host:11:aa", "running"), ("host:12:bb", "stopped"), ("host:13:cc", "dead"), ("host:14:dd", "paused"),
]


def _chunk(chunk_id: int, status: str, attempts: int, owner: str | None, error: str | None) -> dict[str, Any]:
    done = status == "done"
    return {
        "id": chunk_id, "book_id": 1, "chapter_id": 1, "chapter_position": 0, "idx": chunk_id - 1,
        "block_index": 0, "text": f"Sentence {chunk_id}.", "normalized": f"sentence {chunk_id}.", "language": "en",
        "boundary": "sentence", "render_key": f"{chunk_id:064x}", "status": status, "attempts": attempts,
        "lease_owner": owner, "lease_expires": 1_700_000_500.0 if owner else None, "last_error": error,
        "n_tokens": 40 if done else None, "n_phones": 20 if done else None,
        "audio_path": f"1/00/{chunk_id:064x}.wav" if done else None, "duration_s": 1.6 if done else None,
        "timings": json.dumps({"decode": 0.5}) if done else None, "completed_by": "host:10:zz" if done else None,
        "completed_at": 1_700_000_300.0 if done else None,
    }


def _insert(conn: Connection, table: str, row: dict[str, Any]) -> None:
    columns = ", ".join(row)
    values = ", ".join(f":{name}" for name in row)
    conn.execute(text(f"INSERT INTO {table} ({columns}) VALUES ({values})"), row)


def fill_v1(conn: Connection) -> None:
    """Rows as the version-1 program left them, in every state it wrote."""
    _insert(conn, "books", BOOK)
    for chapter in CHAPTERS:
        _insert(conn, "chapters", chapter)
    for chunk in CHUNK_STATES_V1:
        _insert(conn, "chunks", _chunk(*chunk))
    for n, (worker_id, state) in enumerate(WORKERS):
        _insert(conn, "workers", {"id": worker_id, "host": "host", "pid": 11 + n, "process_started_at": 1.0e9,
                                  "started_at": 1.7e9, "heartbeat_at": 1.7e9 + 5, "state": state})
    _insert(conn, "batches", {"id": 1, "worker_id": "host:10:zz", "book_id": 1, "started_at": 1.7e9,
                              "finished_at": 1.7e9 + 2, "batch_size": 4, "chunks": 1, "tokens": 40, "audio_s": 1.6,
                              "frontend_s": 0.1, "prefill_s": 0.2, "decode_s": 0.5, "vocode_s": 0.3, "write_s": 0.05})
    if conn.dialect.name == "postgresql":  # the ids above were explicit: move the sequences past them
        for table in ("books", "chapters", "chunks", "batches"):
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"))
