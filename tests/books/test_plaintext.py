"""Plain text and Markdown books."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.books import BookError, ReadOptions, read_book


def _kinds(chapter) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(b.kind, b.text) for b in chapter.blocks]


def test_txt_chapter_lines_bom_and_wrapping(tmp_path: Path) -> None:
    text = (
        "Preamble line.\n\nCHAPTER ONE\n\nIt was a dark\nand stormy night.\n\n* * *\n\nMore.\n\n"
        "Chapter 2: The Return\n\nBack again.\n"
    )
    path = tmp_path / "story.txt"
    path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    book = read_book(path)
    assert [c.title for c in book.chapters] == ["story", "CHAPTER ONE", "Chapter 2: The Return"]
    assert _kinds(book.chapters[1]) == [
        ("heading", "CHAPTER ONE"),
        ("paragraph", "It was a dark and stormy night."),
        ("scene_break", ""),
        ("paragraph", "More."),
    ]
    assert book.format == "txt" and [e.label for e in book.toc] == ["story", "CHAPTER ONE", "Chapter 2: The Return"]
    assert book.warnings == []


def test_txt_chinese_and_gb18030(tmp_path: Path) -> None:
    path = tmp_path / "书.txt"
    path.write_bytes("第一章 开始\n\n这是第一段，\n继续。\n\n第二章 结束\n\n完。\n".encode("gb18030"))
    book = read_book(path)
    assert [c.title for c in book.chapters] == ["第一章 开始", "第二章 结束"]
    assert _kinds(book.chapters[0])[1] == ("paragraph", "这是第一段，继续。")  # no space joining CJK lines
    assert book.metadata.language == "zh"
    assert any("GB18030" in w for w in book.warnings)


def test_txt_blank_line_separated_titles(tmp_path: Path) -> None:
    path = tmp_path / "b.txt"
    path.write_text("The Beginning\n\nSome text here.\n\n\nThe Middle\n\nMore text.\n\n\nThe End\n\nDone.\n")
    assert [c.title for c in read_book(path).chapters] == ["The Beginning", "The Middle", "The End"]


def test_txt_latin1_and_single_chapter(tmp_path: Path) -> None:
    path = tmp_path / "cafe.txt"
    path.write_bytes("Un café, s'il vous plaît.\n".encode("cp1252"))
    book = read_book(path)
    assert [c.title for c in book.chapters] == ["cafe"]
    assert book.chapters[0].blocks[0].text == "Un café, s'il vous plaît."
    assert any("Windows-1252" in w for w in book.warnings)


def test_empty_text_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_text("\n\n  \n")
    with pytest.raises(BookError, match="no text"):
        read_book(path)


MARKDOWN = """---
title: My Book
author: Jane Roe
---
# My Book

Some intro text.

## Chapter One

It was a *dark* and [stormy](http://x) night.[^1]
Second line of the same paragraph. ![a picture](p.png)

### A section

- item one
- item two

***

> Quoted words.

```
code is skipped
```

## Chapter Two

Roses are red,{TWO_SPACES}
violets are blue.

[^1]: A footnote about the night.
""".replace("{TWO_SPACES}", "  ")  # a Markdown hard line break


@pytest.mark.parametrize("notes", [False, True])
def test_markdown(tmp_path: Path, notes: bool) -> None:
    path = tmp_path / "book.md"
    path.write_text(MARKDOWN)
    book = read_book(path, ReadOptions(read_notes=notes))
    assert (book.metadata.title, book.metadata.author) == ("My Book", "Jane Roe")
    assert [c.title for c in book.chapters] == ["My Book", "Chapter One", "Chapter Two"]
    one = [
        ("heading", "Chapter One"),
        ("paragraph", "It was a dark and stormy night. Second line of the same paragraph."),
        ("heading", "A section"),
        ("paragraph", "item one"),
        ("paragraph", "item two"),
        ("scene_break", ""),
        ("paragraph", "Quoted words."),
    ]
    assert _kinds(book.chapters[1]) == one + ([("note", "A footnote about the night.")] if notes else [])
    assert _kinds(book.chapters[2]) == [("heading", "Chapter Two"), ("paragraph", "Roses are red,\nviolets are blue.")]


def test_markdown_h1_chapters(tmp_path: Path) -> None:
    path = tmp_path / "b.md"
    path.write_text("# One\n\nA.\n\n## Sub\n\nB.\n\n# Two\n\nC.\n")
    book = read_book(path)
    assert [c.title for c in book.chapters] == ["One", "Two"]
    assert _kinds(book.chapters[0]) == [
        ("heading", "One"),
        ("paragraph", "A."),
        ("heading", "Sub"),
        ("paragraph", "B."),
    ]
