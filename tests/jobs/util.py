"""Shared helpers of the jobs tests (plans without the text frontend, stores, workers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jobs.books import read_book
from jobs.engines import SetupCache
from jobs.planner import BookPlan, build_plan
from jobs.store import Store
from jobs.worker import Worker, WorkerOptions, WorkerReport
from tests.fakes.engine import FAKE_ENGINE_VERSION, FakeEngineConfig, FakeEngineFactory, fake_chunker, fake_voice


def plan_for(book: Path, voice: str = "narrator", sampling: dict[str, Any] | None = None,
             chapters: set[int] | None = None) -> BookPlan:
    return build_plan(read_book(book), fake_voice(voice), sampling or {"seed": 0}, FAKE_ENGINE_VERSION,
                      chunker=fake_chunker, chapters=chapters)


def planned_store(url: str, book: Path) -> tuple[Store, int]:
    store = Store(url)
    report = store.plans.sync_plan(plan_for(book))
    return store, report.book_id


def fake_setups(config: FakeEngineConfig = FakeEngineConfig()) -> SetupCache:
    """A worker's setup cache on the fake engine factory (``.engines`` is the factory)."""
    return SetupCache(FakeEngineFactory(config))


def make_worker(store: Store, audio_root: Path, config: FakeEngineConfig = FakeEngineConfig(),
                **options: Any) -> Worker:
    options.setdefault("batch_size", 3)
    options.setdefault("handle_signals", False)
    return Worker(store, audio_root, fake_setups(config), WorkerOptions(**options))


def run_worker(store: Store, audio_root: Path, config: FakeEngineConfig = FakeEngineConfig(),
               **options: Any) -> WorkerReport:
    return make_worker(store, audio_root, config, **options).run()
