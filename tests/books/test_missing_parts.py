"""A book with a part missing never passes silently: it stops, or (--allow-missing) the report fails coverage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobs.cli import cli
from tests.books.epubkit import Doc, EpubSpec, build_epub
from tests.fakes.run_cli import fake_services

DOCS = [Doc(f"c{i}.xhtml", f"<h1>Part {i}</h1><p>The text of part {i} is here. It has two sentences.</p>")
        for i in (1, 2, 3)]  # fmt: skip
TOC = [(0, f"Part {i}", f"text/c{i}.xhtml") for i in (1, 2, 3)]


@pytest.fixture()
def holed_book(tmp_path: Path) -> Path:
    return build_epub(tmp_path / "holed.epub", EpubSpec(docs=DOCS, toc=TOC, drop={"OEBPS/text/c2.xhtml"}))


def test_a_missing_part_stops_the_render_with_the_way_on(holed_book: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, [str(holed_book), "--voice", "v", "--out", str(tmp_path / "out")],
                                obj=fake_services())
    assert result.exit_code != 0  # 2 through the console script (see tests/jobs/test_corpus_plan.py)
    assert "OEBPS/text/c2.xhtml ('Part 2'): missing file" in result.output and "--allow-missing" in result.output
    assert not (tmp_path / "out" / "render.db").exists()


def test_allow_missing_renders_the_rest_and_the_report_fails_coverage(holed_book: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = [str(holed_book), "--voice", "v", "--out", str(out), "--format", "wav", "--preset", "none",
            "--allow-missing"]  # fmt: skip
    result = CliRunner().invoke(cli, args, obj=fake_services(), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "report: FAIL" in result.output and "c2.xhtml" in result.output
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] is False and report["coverage"]["complete"] is False
    assert report["coverage"]["missing_parts"] == ["OEBPS/text/c2.xhtml ('Part 2'): missing file"]
    text = (out / "report.txt").read_text()
    assert "MISSING from the book" in text and "c2.xhtml" in text
    assert len(list(out.glob("*.wav"))) == 2
