"""Damaged input of every kind ends as a Book (with warnings) or a BookError, never another exception."""

from __future__ import annotations

import random
import zipfile
from pathlib import Path

import pytest

from jobs.books import Book, BookError, ReadOptions, read_book
from tests.books.epubkit import Doc, EpubSpec, build_epub

SPEC = EpubSpec(
    docs=[
        Doc(
            "c1.xhtml", '<h1>One</h1><p>Text<a epub:type="noteref" href="#n">1</a>.</p><aside id="n"><p>N.</p></aside>'
        ),
        Doc("c2.xhtml", '<section id="s"><h1>Two</h1><p>Line<br/>two</p><hr/><p>After.</p></section>'),
    ],
    toc=[(0, "One", "text/c1.xhtml"), (0, "Two", "text/c2.xhtml#s")],
)
JUNK = ["<", ">", "&", '"', "</p>", "<p", "&amp", "]]>", "<!--", "\x00", "é", "#", "../"]


def _read(path: Path) -> Book | None:
    try:
        return read_book(path, ReadOptions(read_notes=True))
    except BookError as exc:
        assert str(exc).startswith(str(path))
        return None


def test_byte_level_damage(tmp_path: Path) -> None:
    good = build_epub(tmp_path / "good.epub", SPEC).read_bytes()
    rng = random.Random(1234)
    outcomes = {"book": 0, "error": 0}
    for n in range(150):
        data = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(data))
            data[pos : pos + rng.randint(1, 8)] = bytes(rng.randrange(256) for _ in range(rng.randint(0, 8)))
        path = tmp_path / f"m{n}.epub"
        path.write_bytes(bytes(data))
        outcomes["book" if _read(path) is not None else "error"] += 1
    assert outcomes["error"] > 0 and sum(outcomes.values()) == 150


@pytest.mark.parametrize("target", ["OEBPS/content.opf", "OEBPS/nav.xhtml", "OEBPS/text/c2.xhtml"])
def test_markup_level_damage(tmp_path: Path, target: str) -> None:
    build_epub(tmp_path / "good.epub", SPEC)
    with zipfile.ZipFile(tmp_path / "good.epub") as zf:
        source = zf.read(target).decode()
    rng = random.Random(target)
    books = 0
    for n in range(40):
        text = source
        for _ in range(rng.randint(1, 3)):
            a = rng.randrange(len(text))
            b = min(len(text), a + rng.randint(0, 30))
            text = text[:a] + rng.choice(JUNK + [""]) + text[b:]
        path = build_epub(tmp_path / f"t{n}.epub", EpubSpec(**{**SPEC.__dict__, "extra": {target: text.encode()}}))
        books += _read(path) is not None
    assert books > 0  # most damage is survivable: the rest of the book is still read
