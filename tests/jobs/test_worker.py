"""Worker with the fake engine: results, error classes, disk full, clean stop, per-batch figures."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from jobs.db import sqlite_url
from jobs.engines import SetupCache
from jobs.store import Store
from jobs.worker import AudioWriteError, Worker, WorkerOptions, is_out_of_memory
from tests.fakes.engine import FakeEngineConfig, FakeEngineFactory, FakeFrontend, fake_audio
from tests.fakes.hooks import disk_full_after
from tests.jobs.conftest import write_book
from tests.jobs.util import fake_setups, make_worker, plan_for, run_worker


@pytest.fixture()
def store(tmp_path: Path, md_book: Path):
    store = Store(sqlite_url(tmp_path))
    store.plans.sync_plan(plan_for(md_book))
    yield store
    store.close()


def _assert_consistent(store: Store, root: Path) -> None:
    """No lease left behind, every done chunk's file complete, no temporary files."""
    rows = store.status.chunk_rows()
    assert not [r for r in rows if r["status"] == "leased"]
    for r in rows:
        if r["status"] == "done":
            audio, rate = sf.read(root / r["audio_path"], dtype="float32")
            assert rate == 32000 and len(audio) / rate == pytest.approx(r["duration_s"])
    assert not list(root.rglob("*.tmp"))


def test_all_chunks_rendered_with_exact_audio_and_figures(store: Store, tmp_path: Path) -> None:
    report = run_worker(store, tmp_path / "chunks", batch_size=4)
    rows = store.status.chunk_rows()
    assert report.done == len(rows) and store.status.counts()["done"] == len(rows)
    for r in rows:
        audio, _ = sf.read(tmp_path / "chunks" / r["audio_path"], dtype="float32")
        assert np.array_equal(audio, fake_audio(r["normalized"], r["render_key"], 0.03))
        assert r["attempts"] == 1 and r["n_tokens"] > 0 and r["n_phones"] == len(r["normalized"].encode())
    totals = store.stats.batch_totals()
    assert totals["chunks"] == len(rows) and totals["batches"] == report.batches
    speed = store.stats.throughput()
    assert speed.audio_s == pytest.approx(sum(r["duration_s"] for r in rows))
    assert set(speed.stage_s) >= {"frontend", "prefill", "decode", "vocode"}


def test_unspeakable_chunk_fails_and_the_book_continues(tmp_path: Path) -> None:
    store = Store(sqlite_url(tmp_path))
    store.plans.sync_plan(plan_for(write_book(tmp_path / "src")))
    report = run_worker(store, tmp_path / "chunks", FakeEngineConfig(fail_marker="roar"), batch_size=4)
    failures = store.status.failures()
    assert [f.text for f in failures] == ["Waves struck the rocks with a roar!"]
    assert "cannot speak" in failures[0].error and report.failed == 1
    assert store.status.counts()["done"] == len(store.status.chunk_rows()) - 1
    _assert_consistent(store, tmp_path / "chunks")
    store.close()


def test_out_of_memory_retries_with_smaller_batches(store: Store, tmp_path: Path) -> None:
    worker = make_worker(store, tmp_path / "chunks", FakeEngineConfig(oom_above=2), batch_size=8)
    report = worker.run()
    assert store.status.counts()["failed"] == 0 and store.status.counts()["done"] == len(store.status.chunk_rows())
    assert worker.batch_size <= 2 and report.done == len(store.status.chunk_rows())
    assert is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert is_out_of_memory(RuntimeError("[enforce fail at alloc_cpu.cpp:117] . DefaultCPUAllocator: can't "
                                         "allocate memory: you tried to allocate 4294967296 bytes."))
    assert not is_out_of_memory(RuntimeError("shape mismatch")) and not is_out_of_memory(OSError(28, "No space"))


def test_disk_full_releases_chunks_with_a_clear_error_and_rerun_completes(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "chunks"
    worker = Worker(store, root, fake_setups(), WorkerOptions(batch_size=4, handle_signals=False),
                    write_audio=disk_full_after(5))
    with pytest.raises(AudioWriteError, match="disk full") as info:
        worker.run()
    assert "run the same command again" in str(info.value)
    counts = store.status.counts()
    assert counts["done"] == 5 and counts["leased"] == 0 and counts["failed"] == 0
    released = [r for r in store.status.chunk_rows() if r["last_error"]]
    assert released and all(r["attempts"] == 0 for r in released)  # the failed attempt was refunded
    _assert_consistent(store, root)
    run_worker(store, root)
    assert store.status.counts()["done"] == len(store.status.chunk_rows())
    _assert_consistent(store, root)


def test_stop_request_finishes_the_chunk_in_hand_and_releases_the_rest(store: Store, tmp_path: Path) -> None:
    worker = make_worker(store, tmp_path / "chunks", batch_size=5)
    original = worker._finish

    def finish_then_stop(*args: Any) -> None:
        original(*args)
        worker.request_stop()

    worker._finish = finish_then_stop  # type: ignore[method-assign,assignment]
    report = worker.run()
    assert report.interrupted and report.done == 1
    counts = store.status.counts()
    assert counts["done"] == 1 and counts["leased"] == 0
    assert all(r["attempts"] == 0 for r in store.status.chunk_rows() if r["status"] == "pending")


def test_unexpected_error_releases_without_refund_then_fails_at_the_cap(store: Store, tmp_path: Path) -> None:
    class Broken(SetupCache):
        def setup(self, *args: object, **kwargs: object):  # type: ignore[override]
            raise ZeroDivisionError("engine bug")

    for _ in range(2):
        worker = Worker(store, tmp_path / "chunks", Broken(FakeEngineFactory()),
                        WorkerOptions(batch_size=2, max_attempts=2, handle_signals=False))
        with pytest.raises(ZeroDivisionError):
            worker.run()
        assert store.status.counts()["leased"] == 0
    # the second time, the chunk held during the first crash is tried alone: only it reaches the cap
    failed = store.status.failures()
    assert [f.idx for f in failed] == [0] and "engine bug" in failed[0].error
    second = store.status.chunk_rows()[1]
    assert (second["status"], second["attempts"]) == ("pending", 1)


def test_fake_engine_config_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENDER_FAKE_ENGINE", '{"delay_s": 0.5, "oom_above": 3}')
    assert FakeEngineConfig.from_env() == FakeEngineConfig(delay_s=0.5, oom_above=3)
    with pytest.raises(ValueError):
        FakeEngineConfig(delay_s=-1)


def test_worker_options_are_validated() -> None:
    from jobs.errors import JobsError

    with pytest.raises(JobsError):
        WorkerOptions(batch_size=-1)
    assert WorkerOptions().batch_size == 0  # automatic: the engine's memory-budgeted choice
    with pytest.raises(JobsError):
        WorkerOptions(lease_s=0)



def test_heartbeat_renews_leases_during_a_long_batch(tmp_path: Path, md_book: Path) -> None:
    """Batches last longer than the lease; renewal every third of it keeps them from being requeued."""
    store = Store(sqlite_url(tmp_path))
    store.plans.sync_plan(plan_for(md_book, chapters={1}))  # 7 chunks: batches of 3 take 1.2 s > the 1 s lease
    worker = make_worker(store, tmp_path / "chunks", FakeEngineConfig(delay_s=0.4), batch_size=3, lease_s=1.0)
    thread = threading.Thread(target=worker.run)
    thread.start()
    requeued = 0
    while thread.is_alive():
        requeued += store.queue.requeue_expired()  # what any other worker does before claiming
        thread.join(timeout=0.05)
    assert requeued == 0
    assert worker.report.done == 7
    assert all(r["attempts"] == 1 for r in store.status.chunk_rows() if r["status"] == "done")
    store.close()


def test_worker_without_the_books_voice_skips_that_book(store: Store, tmp_path: Path) -> None:
    from renderer.errors import VoiceError

    class NoVoice(SetupCache):
        def setup(self, *args: Any, **kwargs: Any) -> Any:
            raise VoiceError("voice 'narrator' is not installed here")

    worker = Worker(store, tmp_path / "chunks", NoVoice(FakeEngineFactory()),
                    WorkerOptions(batch_size=3, handle_signals=False))
    report = worker.run()
    assert list(report.skipped_books.values()) == ["voice 'narrator' is not installed here"]
    counts = store.status.counts()
    assert counts["pending"] == len(store.status.chunk_rows()) and counts["leased"] == 0
    assert all(r["attempts"] == 0 for r in store.status.chunk_rows())


def test_next_claims_text_is_prepared_while_the_engine_renders(store: Store, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The frontend runs once per chunk: batches after the first take their phonemes from the prefetch."""
    calls: list[str] = []
    original = FakeFrontend.phonemize

    def counting(self: FakeFrontend, text: str, language: str) -> Any:
        calls.append(text)
        return original(self, text, language)

    monkeypatch.setattr(FakeFrontend, "phonemize", counting)
    worker = make_worker(store, tmp_path / "chunks", batch_size=2)
    report = worker.run()
    rows = store.status.chunk_rows()
    assert report.done == len(rows) and report.batches > 2
    assert worker._prefetch.hits >= len(rows) - 2 * 2  # every chunk after the first claim of 4
    assert len(calls) == len({r["render_key"] for r in rows})  # nothing phonemised twice
    for r in rows:  # and the audio is what the synchronous frontend gives
        audio, _ = sf.read(tmp_path / "chunks" / r["audio_path"], dtype="float32")
        assert np.array_equal(audio, fake_audio(r["normalized"], r["render_key"], 0.03))
    assert not [t for t in threading.enumerate() if t.name == "frontend-prefetch"]



def test_books_sharing_a_voice_are_rendered_with_their_own_options(tmp_path: Path, md_book: Path) -> None:
    """One engine serves both books (same voice and precision), but each book's chunks get its own seed."""
    other = write_book(tmp_path / "other", name="other.md")
    store = Store(sqlite_url(tmp_path))
    store.plans.sync_plan(plan_for(md_book, sampling={"seed": 1}))
    store.plans.sync_plan(plan_for(other, sampling={"seed": 2}))
    setups = fake_setups()
    report = Worker(store, tmp_path / "chunks", setups, WorkerOptions(batch_size=4, handle_signals=False)).run()
    assert report.done == len(store.status.chunk_rows())
    [engine] = setups.engines.engines  # type: ignore[attr-defined]
    seeds = [options.seed for options in engine.calls]
    assert seeds == sorted(seeds) and set(seeds) == {1, 2}  # the first book's claims first, then the other's
    store.close()
