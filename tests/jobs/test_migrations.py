"""Schema versions of the job store: old stores migrate to exactly the fresh schema, with their rows'
meaning, after a backup (SQLite); newer stores are refused; concurrent openers migrate once; a
migration killed half-way leaves a store the next opening migrates (SQLite and PostgreSQL)."""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

import jobs.migrations as migrations
from jobs.db import normalise_url, sqlite_url
from jobs.errors import StoreError, StoreTooNewError
from jobs.migrations import SCHEMA_VERSION, stored_version
from jobs.migrations.steps import Step
from jobs.store import Store
from tests.jobs.conftest import fake_env, render_cmd
from tests.jobs.schema_v1 import CHUNK_STATES_V1, create_v1, fill_v1

REPO = Path(__file__).resolve().parents[2]

#: id -> (status, attempts, worker_deaths, last_error_kind, lease_owner) after migrating the v1 rows.
EXPECTED_CHUNKS = {
    1: ("done", 1, 0, None, None),
    2: ("leased", 1, 0, None, "host:11:aa"),
    3: ("pending", 0, 0, None, None),
    4: ("failed", 3, 3, "worker", None),  # failed after its workers died 3 times
    5: ("failed", 1, 0, "input", None),  # text error: permanent until the text changes
    6: ("failed", 2, 0, "engine", None),
    7: ("pending", 1, 0, "engine", None),  # released after an I/O error, still queued
    8: ("pending", 1, 0, None, None),  # unknown state 'rendering': queued again, lease cleared
}
EXPECTED_WORKERS = {"host:11:aa": "running", "host:12:bb": "stopped", "host:13:cc": "dead", "host:14:dd": "stopped"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def new_url(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], str]:
    """A factory of URLs of empty stores on the parametrised database."""
    counter = iter(range(100))
    if request.param == "sqlite":
        return lambda: sqlite_url(tmp_path / f"store{next(counter)}")
    server = request.getfixturevalue("pg_server")
    return server.create_database  # type: ignore[no-any-return]


def make_v1_store(url: str) -> None:
    """A store as the version-1 program left it: its DDL (frozen), its rows, WAL mode on SQLite."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = Path(url.split("sqlite:///", 1)[1])
        path.parent.mkdir(parents=True, exist_ok=True)
        sqlite3.connect(path).execute("PRAGMA journal_mode = WAL").connection.close()
    engine = create_engine(url)
    with engine.begin() as conn:
        create_v1(conn)
        fill_v1(conn)
    engine.dispose()


@contextmanager
def connect(url: str) -> Iterator[Connection]:
    """A plain connection (none of the store's own setup), for looking at a store from outside."""
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def read(url: str, query: str) -> list[tuple[Any, ...]]:
    with connect(url) as conn:
        return [tuple(r) for r in conn.execute(text(query))]


def describe(url: str) -> dict[str, Any]:
    """Tables with their columns (type, nullability, default), keys, unique and CHECK constraints, indexes."""
    with connect(url) as conn:
        insp = inspect(conn)
        schema: dict[str, Any] = {}
        for table in sorted(insp.get_table_names()):
            schema[table] = {
                "columns": sorted(
                    (c["name"], str(c["type"]), c["nullable"], str(c.get("default"))) for c in insp.get_columns(table)
                ),
                "primary_key": insp.get_pk_constraint(table)["constrained_columns"],
                "foreign_keys": sorted(
                    (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]),
                     str((f.get("options") or {}).get("ondelete")))
                    for f in insp.get_foreign_keys(table)
                ),
                "unique": sorted((str(u["name"]), tuple(u["column_names"]))
                                 for u in insp.get_unique_constraints(table)),
                "indexes": sorted((str(i["name"]), tuple(i["column_names"]), bool(i["unique"]))
                                  for i in insp.get_indexes(table)),
                "checks": sorted((str(c["name"]), " ".join(c["sqltext"].split()))
                                 for c in insp.get_check_constraints(table)),
            }
        return schema


def versions(url: str) -> list[int]:
    return [r[0] for r in read(url, "SELECT version FROM schema_version ORDER BY version")]


def assert_rows_kept_their_meaning(store: Store) -> None:
    rows = {r["id"]: r for r in store.status.chunk_rows()}
    got = {i: (r["status"], r["attempts"], r["worker_deaths"], r["last_error_kind"], r["lease_owner"])
           for i, r in rows.items()}
    assert got == EXPECTED_CHUNKS
    assert {i: rows[i]["last_error"] for i in rows} == {c[0]: c[4] for c in CHUNK_STATES_V1}
    assert rows[1]["audio_path"] == f"1/00/{1:064x}.wav" and rows[1]["timings"] == {"decode": 0.5}
    assert store.status.counts(1) == {"pending": 3, "leased": 1, "done": 1, "failed": 3}
    workers = {w.id: w.state for w in store.workers.listed(running_only=False)}
    assert workers == EXPECTED_WORKERS
    # The current queries work on the migrated rows: the queue holds exactly the pending chunks (those
    # tried before, attempts > 0, come one claim each: a suspect is rendered alone).
    claimed: list[int] = []
    while batch := store.queue.claim_batch("w-new", 10, 60.0, book_id=1):
        claimed += [c.id for c in batch]
    assert sorted(claimed) == [3, 7, 8]


def test_fresh_store_is_created_at_the_current_version(new_url: Callable[[], str]) -> None:
    url = new_url()
    Store(url).close()
    assert versions(url) == [SCHEMA_VERSION]
    assert read(url, "SELECT note FROM schema_version") == [("created",)]


def test_v1_store_migrates_to_the_fresh_schema_and_keeps_its_rows(new_url: Callable[[], str]) -> None:
    old, fresh = new_url(), new_url()
    make_v1_store(old)
    Store(fresh).close()
    with Store(old) as store:
        assert_rows_kept_their_meaning(store)
    assert describe(old) == describe(fresh)
    assert versions(old) == list(range(1, SCHEMA_VERSION + 1)) and SCHEMA_VERSION == 3
    # The states are a constrained set now, on both databases.
    for bad in ("UPDATE chunks SET status = 'rendering' WHERE id = 3",
                "UPDATE chunks SET last_error_kind = 'cosmic ray' WHERE id = 3",
                "UPDATE workers SET state = 'paused' WHERE id = 'host:11:aa'",
                "UPDATE chunks SET take_state = 'maybe' WHERE id = 3"):
        with connect(old) as conn, pytest.raises(IntegrityError):
            conn.execute(text(bad))


def test_sqlite_store_is_copied_before_migrating(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = sqlite_url(tmp_path)
    make_v1_store(url)
    with caplog.at_level(logging.WARNING, logger="jobs.migrations"):
        Store(url).close()
    backups = sorted(tmp_path.glob("render.db.bak-v1-*"))
    assert len(backups) == 1 and not backups[0].name.endswith(".partial")
    assert str(backups[0]) in caplog.text and "schema version 1" in caplog.text
    # The copy is the untouched version-1 store, one self-contained file.
    copy_url = f"sqlite:///{backups[0]}"
    assert "schema_version" not in describe(copy_url)
    assert read(copy_url, "SELECT id, status FROM chunks WHERE id = 8") == [(8, "rendering")]
    assert read(copy_url, "PRAGMA journal_mode") == [("delete",)]


def test_failed_backup_stops_before_migrating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = sqlite_url(tmp_path)
    make_v1_store(url)

    def disk_full(source: Path, target: Path) -> None:
        target.write_bytes(b"half a copy")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(migrations, "_copy_sqlite", disk_full)
    with pytest.raises(StoreError, match=r"MB free and write access in .*run the same command again"):
        Store(url)
    with connect(url) as conn:
        assert stored_version(conn) == 1 and not inspect(conn).has_table("schema_version")
    assert not list(tmp_path.glob("render.db.bak-*"))


def test_newer_store_is_refused_untouched(new_url: Callable[[], str]) -> None:
    url = new_url()
    Store(url).close()
    with connect(url) as conn:
        conn.execute(text(f"INSERT INTO schema_version VALUES ({SCHEMA_VERSION + 1}, 0, 'from the future')"))
        conn.commit()
    before = describe(url)
    with pytest.raises(StoreTooNewError) as refused:
        Store(url)
    assert (refused.value.store_version, refused.value.program_version) == (SCHEMA_VERSION + 1, SCHEMA_VERSION)
    assert describe(url) == before and versions(url) == [SCHEMA_VERSION, SCHEMA_VERSION + 1]


def test_cli_migrates_an_old_store_and_refuses_a_newer_one(tmp_path: Path) -> None:
    out = tmp_path / "out"
    make_v1_store(sqlite_url(out))
    env = fake_env()
    migrated = subprocess.run(render_cmd("status", str(out), "--json"), capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    assert json.loads(migrated.stdout)[0]["counts"] == {"pending": 3, "leased": 1, "done": 1, "failed": 3}
    [backup] = out.glob("render.db.bak-v1-*")
    assert f"saved as {backup}" in migrated.stderr
    with sqlite3.connect(out / "render.db") as conn:
        conn.execute("INSERT INTO schema_version VALUES (99, 0, 'from the future')")
    refused = subprocess.run(render_cmd("status", str(out)), capture_output=True, text=True, env=env, cwd=tmp_path,
                             timeout=120)
    assert refused.returncode == 2
    assert "schema version 99" in refused.stderr and "newer audiobook-renderer" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_concurrent_openers_migrate_once(
    new_url: Callable[[], str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    url = new_url()
    make_v1_store(url)
    step = migrations.STEPS[-1]

    def slow(ops: Any) -> None:  # keep the first opener inside its migration while the others arrive
        step.upgrade(ops)
        time.sleep(0.5)

    monkeypatch.setattr(migrations, "STEPS", (*migrations.STEPS[:-1], Step(step.version, step.title, slow)))
    start, errors = threading.Barrier(4), []

    def open_store() -> None:
        start.wait()
        try:
            Store(url).close()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    with caplog.at_level(logging.WARNING, logger="jobs.migrations"):
        threads = [threading.Thread(target=open_store) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    assert errors == []
    assert versions(url) == list(range(1, SCHEMA_VERSION + 1))
    assert sum("migrating it" in r.getMessage() for r in caplog.records) == 1
    if url.startswith("sqlite"):
        assert len(list(Path(url.split("sqlite:///", 1)[1]).parent.glob("render.db.bak-*"))) == 1


def kill_mid_migration(url: str, ready: Path) -> None:
    """Run tests/jobs/migration_victim.py on ``url`` and SIGKILL it inside its migration transaction."""
    victim = subprocess.Popen([sys.executable, "-m", "tests.jobs.migration_victim", url, str(ready)], cwd=REPO,
                              env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and victim.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        victim.send_signal(signal.SIGKILL)
        _, stderr = victim.communicate(timeout=30)
    assert ready.exists(), f"the victim never reached the middle of its migration: {stderr}"


def test_migration_killed_half_way_is_redone_by_the_next_opening(new_url: Callable[[], str], tmp_path: Path) -> None:
    old, fresh = new_url(), new_url()
    make_v1_store(old)
    Store(fresh).close()
    kill_mid_migration(old, tmp_path / "ready")
    # The kill left the old version: no version table, the old rows (the chunks table was already
    # rebuilt inside the transaction when it died).
    with connect(old) as conn:
        assert stored_version(conn) == 1 and not inspect(conn).has_table("schema_version")
    assert read(old, "SELECT status FROM chunks WHERE id = 8") == [("rendering",)]
    with Store(old) as store:
        assert_rows_kept_their_meaning(store)
    assert describe(old) == describe(fresh)
    assert versions(old) == list(range(1, SCHEMA_VERSION + 1))
    if old.startswith("sqlite"):
        assert not list(Path(old.split("sqlite:///", 1)[1]).parent.glob("*.partial"))
