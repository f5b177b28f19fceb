"""Output names: ordered, stable, safe on every common file system, unicode kept."""

from __future__ import annotations

import pytest

from export.filenames import MAX_NAME_BYTES, book_filename, chapter_filename, sanitize_title


@pytest.mark.parametrize("title", ["../../etc/passwd", "..", "a/b\\c", "C:\\Windows", "/abs/path", "x\x00y"])
def test_no_path_traversal_or_separators(title: str) -> None:
    name = chapter_filename(1, 10, title, "mp3")
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert not name.startswith(".") and ".." not in name.split(" - ", 1)[1].removesuffix(".mp3").strip(" ")[:2]


def test_reserved_characters_and_edges() -> None:
    assert sanitize_title('What? A "Title": <1|2> *') == "What A Title 1 2"
    assert sanitize_title("  .hidden. ") == "hidden"
    assert sanitize_title("Tab\tand\nnewline\u202eRTL") == "Tab and newlineRTL"
    assert sanitize_title("CON") == "_CON" and sanitize_title("lpt1.txt") == "_lpt1.txt"


def test_unicode_is_kept_and_names_sort_in_book_order() -> None:
    assert chapter_filename(3, 12, "第一章 开始", "mp3") == "03 - 第一章 开始.mp3"
    assert chapter_filename(7, 150, "Глава — «Начало»", "flac") == "007 - Глава — «Начало».flac"
    assert chapter_filename(5, 9, "", "wav") == "05 - Chapter 5.wav"
    assert chapter_filename(5, 9, "???", "wav") == "05 - Chapter 5.wav"
    assert book_filename("My / Book", "m4b") == "My Book.m4b"


def test_long_titles_are_cut_at_a_character_boundary_and_stable() -> None:
    title = "Ж" * 200 + " end"
    name = sanitize_title(title)
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
    assert name == "Ж" * (MAX_NAME_BYTES // 2)
    assert sanitize_title(title) == name  # same input, same name, every run
    assert sanitize_title("e\u0301") == "\u00e9"  # NFC
