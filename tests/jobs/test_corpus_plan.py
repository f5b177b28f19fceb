"""Planning the real corpus books with the real text chunker: chapters kept, no text lost or doubled."""

from __future__ import annotations

import re
import subprocess
import sys
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
def test_malformed_books_fail_with_one_line_through_the_real_cli(path: Path) -> None:
    """Malformed-but-openable books never pass silently: exit 2, one line naming the file, no traceback."""
    run = subprocess.run([sys.executable, "-c", "from jobs.cli import main; main()", "plan", str(path)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and path.name in lines[0] and "Traceback" not in run.stderr, run.stderr
    assert run.stdout == ""


def test_allow_missing_goes_on_and_plans_the_rest() -> None:
    """With --allow-missing the book plans, the plan names the missing part and the warning says so."""
    path = next((p for p in MALFORMED if "missing-file" in p.name), None)
    if path is None:
        pytest.skip("no malformed file with a missing spine document in the corpus")
    result = CliRunner().invoke(cli, ["plan", str(path), "--allow-missing", "--json"])
    assert result.exit_code == 0, result.output
    data = __import__("json").loads(result.stdout)
    assert data["missing_parts"] and all(m["reason"] for m in data["missing_parts"])
