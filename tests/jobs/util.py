"""Shared helpers of the jobs tests (plans without the text frontend, stores, workers)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from jobs.books import read_book
from jobs.engines import SetupFactory
from jobs.fake_engine import FAKE_ENGINE_VERSION, fake_chunker
from jobs.planner import BookPlan, VoiceRef, build_plan
from jobs.store import Store
from jobs.worker import Worker, WorkerOptions


def voice_ref(name: str = "narrator") -> VoiceRef:
    return VoiceRef(name=name, voice_id=hashlib.sha256(f"fake:{name}".encode()).hexdigest())


def plan_for(book: Path, voice: str = "narrator", sampling: dict[str, Any] | None = None,
             chapters: set[int] | None = None) -> BookPlan:
    return build_plan(read_book(book), voice_ref(voice), sampling or {"seed": 0}, FAKE_ENGINE_VERSION,
                      chunker=fake_chunker, chapters=chapters)


def planned_store(url: str, book: Path) -> tuple[Store, int]:
    store = Store(url)
    report = store.sync_plan(plan_for(book))
    return store, report.book_id


def run_worker(store: Store, audio_root: Path, **options: Any) -> Any:
    options.setdefault("batch_size", 3)
    options.setdefault("handle_signals", False)
    return Worker(store, audio_root, SetupFactory("fake"), WorkerOptions(**options)).run()
