"""Planning the real corpus books with the real text chunker: chapters kept, no text lost or doubled."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobs.books import read_book
from jobs.cli import cli
from jobs.planner import VoiceRef, build_plan
from tests.paths import shared_dir

CORPUS = shared_dir() / "corpus"
BOOKS = sorted(p for p in CORPUS.glob("*.epub") if not p.name.startswith("malformed"))
MALFORMED = sorted(CORPUS.glob("malformed*.epub"))

pytestmark = pytest.mark.skipif(not BOOKS, reason=f"no corpus books in {CORPUS}")


def _letters(text: str) -> str:
    """Words only: whitespace is layout, and the chunker may tidy punctuation (e.g. runs of ellipses)."""
    return re.sub(r"[\W_]+", "", text)


@pytest.mark.parametrize("path", BOOKS, ids=lambda p: p.name)
def test_plan_keeps_every_chapter_and_all_text(path: Path) -> None:
    book = read_book(path)
    plan = build_plan(book, VoiceRef("v", "voice-id"), {"seed": 0}, "engine-1")
    assert [c.title for c in plan.chapters] == [c.title or f"Chapter {i + 1}" for i, c in enumerate(book.chapters)]
    assert plan.n_chunks > 0
    for chapter, planned in zip(book.chapters, plan.chapters, strict=True):
        if chapter.skipped:
            assert planned.chunks == () and planned.skip_reason
            continue
        source = "".join(_letters(b.text) for b in chapter.blocks if b.kind != "scene_break")
        spoken = "".join(_letters(c.text) for c in planned.chunks)
        assert spoken == source, chapter.title
        assert planned.chunks[-1].boundary == "chapter_end"


@pytest.mark.parametrize("path", MALFORMED, ids=lambda p: p.name)
def test_malformed_books_give_a_clear_error(path: Path) -> None:
    """Either a clear error naming the file, or (where the reader can safely go on) a warning."""
    result = CliRunner().invoke(cli, ["plan", str(path)])
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    if result.exit_code == 0:
        assert "warning:" in result.output
    else:
        assert path.name in result.output
