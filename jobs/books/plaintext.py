"""Plain text (.txt) and Markdown (.md) books: chapters from heading lines, paragraphs from blank lines.

.txt: a chapter starts at a line such as "Chapter 1", "CHAPTER ONE", "Part II: The Return", "Prologue" or
"第一章 …"; without any, at a short title line set off by two blank lines before and one after; without
those either, the whole file is one chapter. Hard-wrapped lines are joined (with no space between CJK
characters). Lines like "* * *" are scene breaks.
Markdown lives in :mod:`jobs.books.markdown`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from jobs.books.model import Block, BookMetadata, Chapter, ReadOptions
from jobs.books.xhtml import clean_lines
from jobs.errors import BookError

_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|"
    "seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|first|second|third|fourth|fifth|last"
)
_CHAPTER_LINE = re.compile(
    rf"^(?:(?:chapter|part|book|volume)\s+(?:\d+|[ivxlcdm]+|(?:{_NUMBER_WORDS})(?:[- ](?:{_NUMBER_WORDS}))?)\b"
    r"|(?:prologue|epilogue|preface|foreword|introduction|afterword)\b"
    r"|第[0-9零〇一二三四五六七八九十百千万两]+[章回节卷部篇集幕])"
    r"[^\n]{0,80}$",
    re.IGNORECASE,
)
_SCENE_LINE = re.compile(r"^\s*([*#~•·⁂]\s*){1,5}\s*$|^\s*[-—–_=]{3,}\s*$")
_SENTENCE_END = re.compile(r"[.!?,;:。！？，；：…”\"')]$")
_CJK = re.compile(r"[\u3000-\u30ff\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]")


def decode_text(data: bytes, path: Path, warn: Callable[[str], None]) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM, else GB18030 for Chinese text, else Windows-1252."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("gb18030")
        high = [c for c in text if ord(c) > 127]
        if high and sum(bool(_CJK.match(c)) for c in high) >= 0.8 * len(high):
            warn(f"{path.name} is not UTF-8; decoded as GB18030 (Chinese)")
            return text
    except UnicodeDecodeError:
        pass
    warn(f"{path.name} is not UTF-8; decoded as Windows-1252")
    return data.decode("cp1252", errors="replace")


def _join_lines(lines: list[str]) -> str:
    out = ""
    for line in (ln.strip() for ln in lines):
        if not line:
            continue
        if out and not (_CJK.match(out[-1]) and _CJK.match(line[0])):
            out += " "
        out += line
    return clean_lines(out)


def _paragraphs(lines: list[str]) -> list[Block]:
    blocks: list[Block] = []
    para: list[str] = []

    def flush() -> None:
        text = _join_lines(para)
        para.clear()
        if text:
            blocks.append(Block("paragraph", text))

    for line in lines:
        if not line.strip():
            flush()
        elif _SCENE_LINE.match(line):
            flush()
            if blocks and blocks[-1].kind != "scene_break":
                blocks.append(Block("scene_break", ""))
        else:
            para.append(line)
    flush()
    while blocks and blocks[-1].kind == "scene_break":
        blocks.pop()
    return blocks


def _is_title_line(lines: list[str], i: int) -> bool:
    """A short unpunctuated line with two blank lines (or the file start) before it and a blank line after."""
    line = lines[i].strip()
    if not line or len(line) > 60 or len(line.split()) > 8 or _SENTENCE_END.search(line):
        return False
    before = all(not lines[j].strip() for j in range(max(0, i - 2), i)) and (i >= 2 or i == 0)
    after = i + 1 >= len(lines) or not lines[i + 1].strip()
    return before and after


def _chapters_from_lines(lines: list[str], href: str, title: str) -> list[Chapter]:
    heads = [i for i, line in enumerate(lines) if _CHAPTER_LINE.match(line.strip())]
    if not heads:
        heads = [i for i in range(len(lines)) if _is_title_line(lines, i)]
    chapters: list[Chapter] = []
    front = lines[: heads[0]] if heads else lines
    front_blocks = _paragraphs(front)
    if front_blocks or not heads:
        chapters.append(Chapter(0, title, href, None, front_blocks))
    for n, start in enumerate(heads):
        end = heads[n + 1] if n + 1 < len(heads) else len(lines)
        heading = clean_lines(lines[start])
        blocks = [Block("heading", heading), *_paragraphs(lines[start + 1 : end])]
        chapters.append(Chapter(len(chapters), heading, href, f"line-{start + 1}", blocks))
    for chapter in chapters:
        if not any(b.text for b in chapter.blocks):
            chapter.skipped, chapter.skip_reason = True, "no text"
    return chapters


def read_text(path: Path, options: ReadOptions, warnings: list[str]) -> tuple[BookMetadata, list[Chapter]]:
    text = decode_text(path.read_bytes(), path, warnings.append)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if not any(line.strip() for line in lines):
        raise BookError(path, "the file contains no text")
    chapters = _chapters_from_lines(lines, path.name, path.stem)
    language = "zh" if len(_CJK.findall(text)) > 0.3 * max(1, len(text.replace(" ", ""))) else "en"
    return BookMetadata(path.stem, "Unknown", language), chapters
