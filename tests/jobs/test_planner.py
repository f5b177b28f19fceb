"""Planner: render keys, idempotent re-planning, exact invalidation, chapter selection, plan JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.db import sqlite_url
from jobs.errors import JobsError
from jobs.planner import parse_chapter_spec, render_key
from jobs.store import Store
from tests.jobs.conftest import BOOK_MD, write_book
from tests.jobs.util import plan_for, run_worker


def _snapshot(store: Store) -> list[dict]:
    return store.status.chunk_rows()


@pytest.fixture()
def rendered(tmp_path: Path, md_book: Path):
    store = Store(sqlite_url(tmp_path / "out"))
    store.plans.sync_plan(plan_for(md_book))
    run_worker(store, tmp_path / "out" / "chunks")
    yield store, md_book, tmp_path
    store.close()


def test_render_key_covers_text_language_voice_options_engine() -> None:
    base = render_key("Hello there.", "en", "voice-a", {"seed": 0, "top_k": 15}, "e1")
    assert base == render_key("Hello there.", "en", "voice-a", {"top_k": 15, "seed": 0}, "e1")  # dict order
    variants = [
        render_key("Hello there!", "en", "voice-a", {"seed": 0, "top_k": 15}, "e1"),
        render_key("Hello there.", "zh", "voice-a", {"seed": 0, "top_k": 15}, "e1"),
        render_key("Hello there.", "en", "voice-b", {"seed": 0, "top_k": 15}, "e1"),
        render_key("Hello there.", "en", "voice-a", {"seed": 1, "top_k": 15}, "e1"),
        render_key("Hello there.", "en", "voice-a", {"seed": 0, "top_k": 15}, "e2"),
    ]
    assert len({base, *variants}) == 6


def test_replanning_the_same_book_changes_nothing(rendered) -> None:
    store, book, _ = rendered
    before = _snapshot(store)
    assert all(r["status"] == "done" for r in before)
    report = store.plans.sync_plan(plan_for(book))
    assert not report.changed and report.kept == len(before)
    assert _snapshot(store) == before


def test_edited_paragraph_invalidates_exactly_its_chunks(rendered) -> None:
    store, book, tmp_path = rendered
    before = {(r["chapter_position"], r["text"]): r for r in _snapshot(store)}
    edited = BOOK_MD.replace("He turned the wheel hard.", "He turned the wheel very hard.")
    edited = edited.replace("Then he made tea.", "Then he made tea. He drank it slowly.")
    report = store.plans.sync_plan(plan_for(write_book(tmp_path / "src", edited)))
    assert (report.added, report.removed) == (2, 1)
    after = _snapshot(store)
    pending = sorted(r["text"] for r in after if r["status"] == "pending")
    assert pending == ["He drank it slowly.", "He turned the wheel very hard."]
    for row in after:
        if row["status"] == "done":  # untouched chunks keep their state, audio and id
            old = before[(row["chapter_position"], row["text"])]
            for column in ("id", "audio_path", "render_key"):
                assert row[column] == old[column]
    # positions follow the new text: the chunk after the inserted sentence moved by one
    chapter = [r for r in after if r["chapter_position"] == 2]
    assert [r["idx"] for r in chapter] == list(range(len(chapter)))
    assert [r["text"] for r in chapter][-2:] == ["The gulls were loud again.", "It was a good day."]


def test_changed_voice_or_options_invalidate_everything(rendered) -> None:
    store, book, _ = rendered
    n = len(_snapshot(store))
    report = store.plans.sync_plan(plan_for(book, voice="other"))
    assert (report.added, report.removed) == (n, n)
    assert store.status.counts()["pending"] == n
    report = store.plans.sync_plan(plan_for(book, voice="other", sampling={"seed": 7}))
    assert report.added == n and store.status.counts()["done"] == 0


def test_returning_to_the_old_settings_reuses_nothing_stale(rendered) -> None:
    """Rows of the old voice are gone, so going back re-renders, but files are content-addressed."""
    store, book, tmp_path = rendered
    store.plans.sync_plan(plan_for(book, voice="other"))
    store.plans.sync_plan(plan_for(book))
    assert store.status.counts()["done"] == 0
    run_worker(store, tmp_path / "out" / "chunks")
    assert store.status.counts()["done"] == len(_snapshot(store))


def test_chapter_selection_limits_claims(tmp_path: Path, md_book: Path) -> None:
    store = Store(sqlite_url(tmp_path))
    store.plans.sync_plan(plan_for(md_book, chapters={2}))
    run_worker(store, tmp_path / "chunks")
    rows = _snapshot(store)
    assert {r["chapter_position"] for r in rows if r["status"] == "done"} == {1}
    assert store.status.counts() == {"pending": 0, "leased": 0, "done": 7, "failed": 0}  # selected chapters only
    store.plans.sync_plan(plan_for(md_book))  # select everything again: the rest becomes claimable
    assert store.status.counts()["pending"] == len(rows) - 7
    store.close()


def test_parse_chapter_spec() -> None:
    assert parse_chapter_spec("1-3,7") == {1, 2, 3, 7}
    assert parse_chapter_spec(None) is None
    for bad in ("0", "3-1", "x", "1-b"):
        with pytest.raises(JobsError):
            parse_chapter_spec(bad)


def test_plan_json_lists_chapters_with_counts(md_book: Path) -> None:
    data = plan_for(md_book).to_json()
    assert data["book"]["title"] == "The Lighthouse Keeper"
    titles = [c["title"] for c in data["chapters"]]
    assert titles == ["The Storm", "The Ship", "The Morning"]
    first = data["chapters"][0]
    assert {"index", "title", "href", "anchor", "skipped", "skip_reason", "paragraphs", "chunks", "characters"} <= set(
        first
    )
    assert first["chunks"] == 7 and first["paragraphs"] == 2 and first["skipped"] is False
    assert data["chunks"] == sum(c["chunks"] for c in data["chapters"])
    assert data["estimated_seconds"] > 0
    with pytest.raises(JobsError):
        plan_for(md_book, chapters={9})
