"""Job store: atomic claims, guarded completion, leases, attempts, retries (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from jobs.db import sqlite_url
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


def test_expired_leases_return_to_the_queue_then_fail_after_max_attempts(store_and_book) -> None:
    store, book_id = store_and_book
    chunk = store.queue.claim_batch("w1", 1, 60)[0]
    assert store.queue.requeue_expired(max_attempts=2, now=time.time() + 30) == 0
    assert store.queue.requeue_expired(max_attempts=2, now=time.time() + 61) == 1
    again = store.queue.claim_batch("w2", 1, 60)[0]
    assert again.id == chunk.id and again.attempts == 2
    # the old owner lost the chunk: its late completion is refused
    assert not store.queue.complete_chunk("w1", chunk.id, chunk.render_key, "x.wav", 1.0, 1, 1)
    assert store.queue.requeue_expired(max_attempts=2, now=time.time() + 61) == 1
    failures = store.status.failures(book_id)
    assert [f.chunk_id for f in failures] == [chunk.id]
    assert "2 times" in failures[0].error
    assert store.queue.retry_failed(book_id) == 1
    assert store.queue.claim_batch("w3", 1, 60)[0].attempts == 1


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
    # without refund a chunk at its attempt cap is failed rather than queued again
    assert store.queue.release_chunks("w1", refund=False, error="boom", max_attempts=1) == 2
    assert store.status.counts(book_id)["failed"] == 2


def test_dead_local_worker_leases_are_released_at_once(tmp_path: Path, md_book: Path) -> None:
    from jobs.worker import reap_dead_local_workers

    store, book_id = planned_store(sqlite_url(tmp_path), md_book)
    store.workers.register("ghost", pid=2**22 - 1, process_started_at=1.0)
    store.queue.claim_batch("ghost", 3, 3600)
    assert reap_dead_local_workers(store, max_attempts=3) == 3
    assert store.status.counts(book_id)["leased"] == 0
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
