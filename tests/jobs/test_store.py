"""Job store: atomic claims, guarded completion, leases, failure accounting by cause, retries (SQLite, PostgreSQL)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from jobs.db import ERROR_INPUT, sqlite_url
from jobs.store import Store
from tests.jobs.util import planned_store


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_and_book(request: pytest.FixtureRequest, tmp_path: Path, md_book: Path):
    if request.param == "sqlite":
        url = sqlite_url(tmp_path / "out")
    else:
        url = request.getfixturevalue("pg_url")
    store, book_id = planned_store(url, md_book)
    yield store, book_id
    store.close()


def test_sqlite_store_uses_wal_and_foreign_keys(tmp_path: Path, md_book: Path) -> None:
    store, _ = planned_store(sqlite_url(tmp_path), md_book)
    with store.db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert (conn.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0) >= 10_000
    assert (tmp_path / "render.db").is_file()
    store.close()


def test_claims_in_reading_order_and_never_twice(store_and_book) -> None:
    store, book_id = store_and_book
    total = store.status.counts(book_id)["pending"]
    first = store.queue.claim_batch("w1", 4, 60)
    second = store.queue.claim_batch("w2", 4, 60)
    assert [c.idx for c in first] == [0, 1, 2, 3] and all(c.chapter_position == 0 for c in first)
    assert not {c.id for c in first} & {c.id for c in second}
    assert store.status.counts(book_id)["leased"] == 8
    assert store.status.counts(book_id)["pending"] == total - 8


def test_concurrent_claims_from_threads_are_disjoint(store_and_book) -> None:
    store, book_id = store_and_book
    total = store.status.counts(book_id)["pending"]
    claimed: dict[str, list[int]] = {}

    def claim(name: str) -> None:
        ids: list[int] = []
        while batch := store.queue.claim_batch(name, 2, 60):
            ids += [c.id for c in batch]
        claimed[name] = ids

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    all_ids = [i for ids in claimed.values() for i in ids]
    assert len(all_ids) == len(set(all_ids)) == total


def test_completion_is_guarded_by_owner_status_and_key(store_and_book) -> None:
    store, _ = store_and_book
    chunk = store.queue.claim_batch("w1", 1, 60)[0]
    assert not store.queue.complete_chunk("intruder", chunk.id, chunk.render_key, "x.wav", 1.0, 10, 5)
    assert not store.queue.complete_chunk("w1", chunk.id, "other-key", "x.wav", 1.0, 10, 5)
    assert store.queue.complete_chunk("w1", chunk.id, chunk.render_key, "x.wav", 1.0, 10, 5)
    # a second completion (e.g. a late duplicate) changes nothing
    assert not store.queue.complete_chunk("w1", chunk.id, chunk.render_key, "y.wav", 2.0, 10, 5)
    row = next(r for r in store.status.chunk_rows() if r["id"] == chunk.id)
    assert (row["status"], row["audio_path"], row["lease_owner"]) == ("done", "x.wav", None)


def _row(store: Store, chunk_id: int) -> dict[str, Any]:
    return next(r for r in store.status.chunk_rows() if r["id"] == chunk_id)


def test_a_lost_lease_counts_against_the_worker_then_the_chunk_goes_alone_then_fails(store_and_book) -> None:
    store, book_id = store_and_book
    store.workers.register("w1", 1, 0.0)
    chunk = store.queue.claim_batch("w1", 1, 60)[0]
    assert store.queue.requeue_expired(max_deaths=1, now=time.time() + 30) == 0
    assert store.queue.requeue_expired(max_deaths=1, now=time.time() + 61) == 1
    row = _row(store, chunk.id)
    assert (row["status"], row["attempts"], row["worker_deaths"], row["last_error_kind"]) == ("pending", 0, 1, "worker")
    [dead] = store.workers.deaths()
    assert (dead.id, dead.state, dead.chunks_lost) == ("w1", "dead", 1) and "lease expired" in (dead.death_cause or "")
    # the old owner lost the chunk: its late completion is refused
    assert not store.queue.complete_chunk("w1", chunk.id, chunk.render_key, "x.wav", 1.0, 1, 1)
    # at max_deaths the chunk is a suspect: a claim of 3 takes it alone
    again = store.queue.claim_batch("w2", 3, 60, max_deaths=1)
    assert [c.id for c in again] == [chunk.id] and again[0].attempts == 1 and again[0].worker_deaths == 1
    # one more death while alone: failed, as the worker's doing
    assert store.queue.requeue_expired(max_deaths=1, now=time.time() + 61) == 1
    [failure] = store.status.failures(book_id)
    assert (failure.chunk_id, failure.kind, failure.worker_deaths, failure.attempts) == (chunk.id, "worker", 2, 0)
    assert "died 2 times" in failure.error and "alone" in failure.error
    # `render BOOK` again retries it, still alone
    report = store.queue.retry_failed(book_id, include_input=False)
    assert (report.retried, report.after_worker_deaths, report.kept_input_errors) == (1, 1, 0)
    assert [c.id for c in store.queue.claim_batch("w3", 3, 60, max_deaths=1)] == [chunk.id]


def test_exceptions_count_as_attempts_and_text_errors_are_permanent(store_and_book) -> None:
    store, book_id = store_and_book
    a, b, _c = store.queue.claim_batch("w1", 3, 60)
    assert store.queue.release_chunks("w1", [a.id], refund=False, error="EngineError: boom", max_attempts=2) == 1
    assert (_row(store, a.id)["status"], _row(store, a.id)["attempts"]) == ("pending", 1)
    assert _row(store, a.id)["last_error_kind"] == "engine"
    assert store.queue.fail_chunk("w1", b.id, "text error: nothing to say", ERROR_INPUT)
    [a2] = store.queue.claim_batch("w2", 1, 60)
    assert a2.id == a.id and a2.attempts == 2
    assert store.queue.release_chunks("w2", refund=False, error="EngineError: boom", max_attempts=2) == 1
    failed = {f.chunk_id: f for f in store.status.failures(book_id)}
    assert {i: (f.kind, f.attempts) for i, f in failed.items()} == {a.id: ("engine", 2), b.id: ("input", 1)}
    report = store.queue.retry_failed(book_id, include_input=False)
    assert (report.retried, report.kept_input_errors) == (1, 1)
    assert [f.chunk_id for f in store.status.failures(book_id)] == [b.id]
    assert _row(store, a.id)["attempts"] == 0
    assert store.queue.retry_failed(book_id).retried == 1  # `render retry-failed`: every failure


def test_renewal_keeps_a_lease_alive(store_and_book) -> None:
    store, _ = store_and_book
    store.workers.register("w1", 1, 0.0)
    store.queue.claim_batch("w1", 2, 2)
    assert store.queue.renew_leases("w1", 600) == 2
    assert store.queue.requeue_expired(now=time.time() + 10) == 0


def test_release_refunds_the_attempt_and_keeps_the_error(store_and_book) -> None:
    store, book_id = store_and_book
    batch = store.queue.claim_batch("w1", 3, 60)
    assert store.queue.release_chunks("w2") == 0  # not the owner
    assert store.queue.release_chunks("w1", [batch[0].id], error="disk full") == 1
    rows = {r["id"]: r for r in store.status.chunk_rows(book_id)}
    assert (rows[batch[0].id]["status"], rows[batch[0].id]["attempts"]) == ("pending", 0)
    assert rows[batch[0].id]["last_error"] == "disk full"
    assert rows[batch[1].id]["status"] == "leased"
    # without refund (an exception) a chunk at its attempt cap is failed rather than queued again
    assert store.queue.release_chunks("w1", refund=False, error="boom", max_attempts=1) == 2
    assert store.status.counts(book_id)["failed"] == 2


def test_dead_local_worker_leases_are_released_at_once(tmp_path: Path, md_book: Path) -> None:
    from jobs.worker import reap_dead_local_workers

    store, book_id = planned_store(sqlite_url(tmp_path), md_book)
    store.workers.register("ghost", pid=2**22 - 1, process_started_at=1.0)
    store.queue.claim_batch("ghost", 3, 3600)
    assert reap_dead_local_workers(store) == 3
    assert store.status.counts(book_id)["leased"] == 0
    rows = [r for r in store.status.chunk_rows() if r["worker_deaths"]]
    assert len(rows) == 3 and all(r["attempts"] == 0 and r["status"] == "pending" for r in rows)
    [ghost] = store.workers.deaths()
    assert ghost.chunks_lost == 3 and "is gone" in (ghost.death_cause or "")
    store.close()


def test_bad_store_url_is_a_store_error(tmp_path: Path) -> None:
    from jobs.errors import StoreError

    with pytest.raises(StoreError):
        Store("nosuchdb://x/y")
    with pytest.raises(StoreError):
        Store("postgresql://nobody@127.0.0.1:1/none").status.counts()


def test_peek_pending_is_what_the_next_claim_takes_and_leases_nothing(store_and_book) -> None:
    store, _book_id = store_and_book
    peeked = store.queue.peek_pending(3)
    assert len(peeked) == 3 and store.status.counts()["leased"] == 0
    claimed = store.queue.claim_batch("w1", 3, 60.0)
    assert [c.id for c in claimed] == [c.id for c in peeked]
    assert [c.render_key for c in claimed] == [c.render_key for c in peeked]
    assert [c.id for c in store.queue.peek_pending(2)] == [c.id for c in store.queue.claim_batch("w1", 2, 60.0)]
