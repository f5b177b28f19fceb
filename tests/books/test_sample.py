"""The committed sample book: equal to a fresh build, and read into its four chapters."""

from __future__ import annotations

import importlib.util
import io
import zipfile
from pathlib import Path

from jobs.books import ReadOptions, read_book

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
EPUB = SAMPLES / "sample-book.epub"


def _build_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("build_sample", SAMPLES / "build_sample.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _entries(data: bytes) -> list[tuple]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(i.filename, i.compress_type, i.date_time, i.external_attr, i.extra, zf.read(i)) for i in zf.infolist()]


def test_committed_epub_equals_a_fresh_build() -> None:
    build = _build_module().build
    fresh = build()
    assert fresh == build()  # deterministic
    committed = EPUB.read_bytes()
    # Entry by entry (name, order, method, timestamp, attributes, content); the deflate bytes themselves could
    # only differ under another zlib build, which the next line would then show.
    assert _entries(committed) == _entries(fresh)
    assert committed == fresh
    first = _entries(committed)[0]
    assert first[:2] == ("mimetype", zipfile.ZIP_STORED) and first[4] == b"" and first[5] == b"application/epub+zip"
    assert committed[30:38] == b"mimetype"  # the first local header names it, at the fixed offset readers check


def test_sample_reads_into_its_chapters() -> None:
    book = read_book(EPUB)
    assert book.warnings == []
    md = book.metadata
    assert (md.title, md.language) == ("The Keeper of Gull Point", "en")
    assert [(c.title, c.skipped) for c in book.chapters] == [
        ("The Keeper", False),
        ("The Storm", False),
        ("Morning", False),
        ("归途", False),
    ]
    assert [c.blocks[0].text for c in book.chapters] == [
        "Chapter One: The Keeper",
        "Chapter Two: The Storm",
        "Chapter Three: Morning",
        "第四章 归途",
    ]
    assert all(c.blocks[0].kind == "heading" for c in book.chapters)
    one = book.chapters[0].text
    for needle in ("March 3, 1921", "Dr. Elena Marsh", "$12.50", "27 years", "“You will find the nights long,”"):
        assert needle in one
    assert "worth.1" not in one and "worth. That" in one  # the noteref marker is gone
    assert [b.kind for b in book.chapters[1].blocks].count("scene_break") == 1
    noted = read_book(EPUB, ReadOptions(read_notes="chapter_end"))
    assert noted.chapters[0].blocks[-1].kind == "note" and "week’s wages" in noted.chapters[0].blocks[-1].text
    # Short enough to render in a couple of minutes on CPU.
    sentences = sum(b.text.count(".") + b.text.count("?") + b.text.count("。") for c in book.chapters for b in c.blocks)
    assert 25 <= sentences <= 50
