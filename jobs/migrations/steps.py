"""The ordered migration steps of the job store, oldest first.

Each step brings a store from ``version - 1`` to ``version``. Steps are frozen once released: they
spell out their DDL and their literal values (states, column types) instead of reading the live
tables in :mod:`jobs.db`, because the live tables move on and an old store must still go through
every step as it was. Steps use Alembic's operations in batch mode (``ops.batch_alter_table``):
plain ``ALTER TABLE`` on PostgreSQL, a copy-and-move of the table on SQLite where SQLite's
``ALTER TABLE`` cannot do it (adding a CHECK constraint).

How to add a step (version N+1):
1. change the tables in :mod:`jobs.db` (new columns last, constraints named);
2. append ``Step(N+1, "what and why", _vN1)`` below, where ``_vN1(ops)`` makes an old store equal to
   a fresh one (columns, types, defaults, constraints, indexes) and maps its rows to their meaning;
3. ``tests/jobs/test_migrations.py`` then checks it on SQLite and PostgreSQL from the frozen version-1
   schema (add rows to ``tests/jobs/schema_v1.py`` only if the step maps values it did not cover).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from alembic.operations import Operations
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)


@dataclass(frozen=True)
class Step:
    """One forward migration: ``upgrade(ops)`` runs inside the caller's transaction."""

    version: int
    title: str
    upgrade: Callable[[Operations], None]


#: Columns of every table of version 1 (the schema before versions existed), to recognise such a
#: store and adopt it as version 1 rather than guess at something else that happens to share a name.
V1_COLUMNS: dict[str, tuple[str, ...]] = {
    "books": ("id", "source_path", "source_hash", "title", "author", "language", "identifier", "cover",
              "cover_mime", "voice_name", "voice_id", "engine_version", "options", "meta", "created_at",
              "updated_at"),
    "chapters": ("id", "book_id", "position", "number", "title", "href", "anchor", "kind", "skipped",
                 "skip_reason", "selected", "paragraphs", "characters"),
    "chunks": ("id", "book_id", "chapter_id", "chapter_position", "idx", "block_index", "text", "normalized",
               "language", "boundary", "render_key", "status", "attempts", "lease_owner", "lease_expires",
               "last_error", "n_tokens", "n_phones", "audio_path", "duration_s", "timings", "completed_by",
               "completed_at"),
    "workers": ("id", "host", "pid", "process_started_at", "started_at", "heartbeat_at", "state"),
    "batches": ("id", "worker_id", "book_id", "started_at", "finished_at", "batch_size", "chunks", "tokens",
                "audio_s", "frontend_s", "prefill_s", "decode_s", "vocode_s", "write_s"),
}

# ----------------------------------------------------------------------------------------- version 2

_V2_CHUNK_STATES = ("pending", "leased", "done", "failed")
_V2_WORKER_STATES = ("running", "stopped", "dead")
_V2_ERROR_KINDS = ("input", "engine", "worker")
#: Prefixes of the version-1 program's error messages, by cause (jobs/worker.py and jobs/store.py then).
_V1_INPUT_ERROR = "text error%"
_V1_WORKER_DEATH = "the worker stopped without finishing%"


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _v2_map_states(ops: Operations) -> None:
    """Give every row a state of the constrained set before the constraints exist.

    Version 1 only wrote these states, but the columns were free text: a chunk in any other state
    is re-rendered (pending; its render key keeps the result identical), a worker in any other
    state is taken as stopped (it holds no lease a live worker could lose).
    """
    bind = ops.get_bind()
    bind.execute(text(
        "UPDATE chunks SET status = 'pending', lease_owner = NULL, lease_expires = NULL "
        f"WHERE NOT ({_in('status', _V2_CHUNK_STATES)})"
    ))
    bind.execute(text(f"UPDATE workers SET state = 'stopped' WHERE NOT ({_in('state', _V2_WORKER_STATES)})"))


def _v2_chunks(ops: Operations) -> None:
    with ops.batch_alter_table("chunks") as batch:
        batch.add_column(Column("worker_deaths", Integer, nullable=False, server_default="0"))
        batch.add_column(Column("last_error_kind", String(16), nullable=True))
        batch.create_check_constraint("ck_chunks_status", _in("status", _V2_CHUNK_STATES))
        batch.create_check_constraint("ck_chunks_last_error_kind", _in("last_error_kind", _V2_ERROR_KINDS))


def _v2_classify_errors(ops: Operations) -> None:
    """Cause of each stored error, read from the version-1 messages.

    ``text error…`` (unspeakable text) is an input error; ``the worker stopped without finishing…``
    (a chunk failed after its workers died ``attempts`` times) a worker death; anything else (engine
    exceptions, out of memory, I/O errors) an engine error, as is a failed chunk without a message.
    """
    bind = ops.get_bind()
    bind.execute(text(
        "UPDATE chunks SET last_error_kind = CASE "
        f"WHEN last_error LIKE '{_V1_INPUT_ERROR}' THEN 'input' "
        f"WHEN last_error LIKE '{_V1_WORKER_DEATH}' THEN 'worker' "
        "ELSE 'engine' END "
        "WHERE last_error IS NOT NULL OR status = 'failed'"
    ))
    bind.execute(text(f"UPDATE chunks SET worker_deaths = attempts WHERE last_error LIKE '{_V1_WORKER_DEATH}'"))


def _v2_workers(ops: Operations) -> None:
    with ops.batch_alter_table("workers") as batch:
        batch.add_column(Column("died_at", Float, nullable=True))
        batch.add_column(Column("death_cause", Text, nullable=True))
        batch.add_column(Column("chunks_lost", Integer, nullable=False, server_default="0"))
        batch.create_check_constraint("ck_workers_state", _in("state", _V2_WORKER_STATES))


def _v2(ops: Operations) -> None:
    _v2_map_states(ops)
    _v2_chunks(ops)
    _v2_classify_errors(ops)
    _v2_workers(ops)


# ----------------------------------------------------------------------------------------- version 3

_V3_TAKE_STATES = ("clean", "rerolled", "doubtful", "accepted", "requested")


def _v3(ops: Operations) -> None:
    """Takes (issue 19): the take a chunk renders next or uses, how it came to be, and every take's seed,
    score, reasons and audio. Chunks rendered before keep take 1 and no take state (never checked)."""
    with ops.batch_alter_table("chunks") as batch:
        batch.add_column(Column("take", Integer, nullable=False, server_default="1"))
        batch.add_column(Column("take_state", String(16), nullable=True))
        batch.create_check_constraint("ck_chunks_take_state", _in("take_state", _V3_TAKE_STATES))
    ops.create_table(
        "takes",
        Column("id", Integer, primary_key=True),
        Column("chunk_id", Integer, ForeignKey("chunks.id", ondelete="CASCADE"), nullable=False),
        Column("take", Integer, nullable=False),
        Column("seed", BigInteger, nullable=False),
        Column("score", Float, nullable=False),
        Column("bad", Boolean, nullable=False),
        Column("reasons", JSON, nullable=False),
        Column("measures", JSON, nullable=False),
        Column("audio_path", String(1024), nullable=True),
        Column("duration_s", Float, nullable=False),
        Column("n_tokens", Integer, nullable=False),
        Column("n_phones", Integer, nullable=False),
        Column("timings", JSON, nullable=True),
        Column("tokens_per_phone", Float, nullable=True),
        Column("speech_s_per_phone", Float, nullable=True),
        Column("voice_id", String(64), nullable=False),
        Column("worker_id", String(128), nullable=False),
        Column("created_at", Float, nullable=False),
        UniqueConstraint("chunk_id", "take", name="uq_takes_chunk_take"),
    )
    ops.create_index("ix_takes_voice", "takes", ["voice_id", "bad"])


STEPS: tuple[Step, ...] = (
    Step(2, "job states as a constrained set; failure accounting (chunk worker deaths and error kind, "
            "worker deaths)", _v2),
    Step(3, "takes: every rendering of a chunk with its seed, score and reasons; the take in use", _v3),
)
