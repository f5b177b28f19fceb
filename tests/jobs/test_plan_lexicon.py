"""The user lexicon is part of the render key (only touched chunks change); silent paragraphs are reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.books import read_book
from jobs.errors import JobsError
from jobs.pipeline import book_lexicon
from jobs.planner import build_plan
from renderer.text.lexicon import Lexicon
from tests.fakes.engine import FAKE_ENGINE_VERSION, fake_chunker, fake_voice
from tests.jobs.conftest import BOOK_MD, write_book


def _keys(book: Path, lexicon: Lexicon | None) -> dict[str, tuple[str, str]]:
    plan = build_plan(read_book(book), fake_voice("narrator"), {"seed": 0}, FAKE_ENGINE_VERSION, chunker=fake_chunker,
                      lexicon=lexicon)  # fmt: skip
    return {c.text: (c.render_key, c.normalized) for ch in plan.chapters for c in ch.chunks}


def test_lexicon_changes_exactly_the_chunks_it_touches(md_book: Path) -> None:
    plain = _keys(md_book, None)
    with_phones = _keys(md_book, Lexicon({"Tom": "/T AA1 M/"}))
    changed = sorted(text for text in plain if plain[text][0] != with_phones[text][0])
    assert changed == ["Old Tom climbed the stairs.", "Tom slept until noon."]
    assert "{T AA1 M}" in with_phones["Tom slept until noon."][1]
    respelled = _keys(md_book, Lexicon({"Tom": "Tomm"}))
    assert respelled["Tom slept until noon."][0] not in (plain["Tom slept until noon."][0],
                                                          with_phones["Tom slept until noon."][0])  # fmt: skip
    assert _keys(md_book, Lexicon({"Saoirse": "Seersha"})) == plain  # no match: nothing re-renders


def test_book_lexicon_file_beside_the_book(tmp_path: Path) -> None:
    book = write_book(tmp_path / "src", BOOK_MD)
    assert book_lexicon(book) is None
    book.with_name(book.stem + ".lexicon.tsv").write_text("# names\nTom\t/T AA1 M/\n", encoding="utf-8")
    assert book_lexicon(book).entries == {"Tom": "/T AA1 M/"}
    book.with_name(book.stem + ".lexicon.tsv").write_text("Tom\t/T XX M/\n", encoding="utf-8")
    with pytest.raises(JobsError, match="unknown phone symbols"):
        book_lexicon(book)


def test_emoji_only_paragraph_is_reported_in_the_plan(tmp_path: Path) -> None:
    book = write_book(tmp_path / "src", BOOK_MD.replace("He lit the great lamp.", "😀🎉\n\nHe lit the great lamp."))
    plan = build_plan(read_book(book), fake_voice("narrator"), {"seed": 0}, FAKE_ENGINE_VERSION, chunker=fake_chunker)
    notices = [w for w in plan.warnings if "nothing to speak" in w]
    assert len(notices) == 1 and "chapter 1" in notices[0] and "😀🎉" in notices[0]
