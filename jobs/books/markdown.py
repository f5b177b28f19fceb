"""Markdown books: chapters at '#' headings, paragraphs at blank lines, inline markup stripped.

Chapters start at the shallowest heading level used more than once; a single shallower heading before the
first chapter (``# Book title`` above ``## Chapter`` headings) is the book title; deeper headings become
heading blocks. YAML front matter (title/author/language) fills the metadata. Code blocks, HTML tags and
link targets are not read; footnotes (``[^1]`` … ``[^1]: text``) follow ReadOptions.read_notes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from jobs.books.model import Block, BookMetadata, Chapter, ReadOptions
from jobs.books.plaintext import _SCENE_LINE, decode_text
from jobs.books.xhtml import clean_lines
from jobs.errors import BookError

_ATX = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_SETEXT = re.compile(r"^\s*(=+|-+)\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_LIST = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_FOOTDEF = re.compile(r"^\[\^([^\]]+)\]:\s*(.*)$")
_FOOTREF = re.compile(r"\[\^([^\]]+)\]")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\[[^\]]*\])")
_EMPHASIS = re.compile(r"(?<![\w\\])[*_~]+(?=\S)|(?<=\S)[*_~]+(?![\w])")
_TAG = re.compile(r"<[^>\n]+>")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


@dataclass
class _Heading:
    level: int
    text: str


def _inline(text: str, image_alt: bool) -> tuple[str, list[str]]:
    refs = _FOOTREF.findall(text)
    text = _FOOTREF.sub("", text)
    text = _IMAGE.sub(lambda m: f" {m.group(1)} " if image_alt else "", text)
    text = _LINK.sub(r"\1", text)
    text = _TAG.sub("", text).replace("`", "")
    return _EMPHASIS.sub("", text).replace("\\", ""), refs


def _front_matter(lines: list[str]) -> tuple[dict[str, str], list[str]]:
    if not lines or lines[0].strip() != "---":
        return {}, lines
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            meta = {}
            for line in lines[1:end]:
                key, sep, value = line.partition(":")
                if sep:
                    meta[key.strip().lower()] = value.strip().strip("\"'")
            return meta, lines[end + 1 :]
    return {}, lines


class _Parser:
    def __init__(self, image_alt: bool) -> None:
        self.image_alt = image_alt
        self.events: list[_Heading | Block | str] = []  # str = a footnote reference id
        self.notes: dict[str, list[str]] = {}
        self.para: list[str] = []

    def flush(self) -> None:
        raw = "\n".join(self.para)
        self.para.clear()
        # Two trailing spaces or a backslash end a line (verse); other newlines are soft wraps.
        raw = re.sub(r"( {2,}|\\)\n", "\x00", raw).replace("\n", " ").replace("\x00", "\n")
        text, refs = _inline(raw, self.image_alt)
        text = clean_lines(text)
        if text:
            self.events.append(Block("paragraph", text))
        self.events.extend(refs)

    def parse(self, lines: list[str]) -> None:
        fence = False
        note_id: str | None = None
        for line in lines:
            if _FENCE.match(line):
                self.flush()
                fence = not fence
                continue
            if fence:
                continue
            stripped = line.strip()
            if note_id and line.startswith(("    ", "\t")) and stripped:
                self.notes[note_id].append(stripped)
                continue
            note_id = None
            if m := _FOOTDEF.match(stripped):
                self.flush()
                note_id = m.group(1)
                self.notes[note_id] = [m.group(2)]
            elif m := _ATX.match(stripped):
                self.flush()
                self.events.append(_Heading(len(m.group(1)), clean_lines(_inline(m.group(2), False)[0])))
            elif self.para and _SETEXT.match(line):
                text = clean_lines(_inline(" ".join(self.para), False)[0])
                self.para.clear()
                self.events.append(_Heading(1 if stripped.startswith("=") else 2, text))
            elif _SCENE_LINE.match(line) and stripped:
                self.flush()
                self.events.append(Block("scene_break", ""))
            elif not stripped:
                self.flush()
            else:
                if _LIST.match(line):
                    self.flush()
                    line = _LIST.sub("", line)
                self.para.append(re.sub(r"^\s*>\s?", "", line).rstrip("\n"))
        self.flush()


def _note_blocks(refs: list[str], notes: dict[str, list[str]]) -> list[Block]:
    out = []
    for ref in dict.fromkeys(refs):
        text = clean_lines(_inline(" ".join(notes.get(ref, [])), False)[0])
        if text:
            out.append(Block("note", text))
    return out


def _chapter_level(headings: list[_Heading]) -> int | None:
    levels = [h.level for h in headings]
    repeated = sorted(lv for lv in set(levels) if levels.count(lv) > 1)
    return repeated[0] if repeated else (min(levels) if levels else None)


def read_markdown(path: Path, options: ReadOptions, warnings: list[str]) -> tuple[BookMetadata, list[Chapter]]:
    text = decode_text(path.read_bytes(), path, warnings.append)
    text = _COMMENT.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    meta, lines = _front_matter(text.split("\n"))
    parser = _Parser(options.image_alt)
    parser.parse(lines)
    if not any(isinstance(e, Block) and e.text for e in parser.events) and not parser.notes:
        raise BookError(path, "the file contains no text")
    headings = [e for e in parser.events if isinstance(e, _Heading)]
    level = _chapter_level(headings)

    def _once(heading: _Heading) -> bool:
        return sum(h.level == heading.level for h in headings) == 1

    title = meta.get("title", "")
    chapters: list[Chapter] = []
    current = Chapter(0, "", path.name, None, [])
    refs: list[str] = []

    def close() -> None:
        if options.notes_at_chapter_end:
            current.blocks.extend(_note_blocks(refs, parser.notes))
        refs.clear()
        if current.blocks:
            current.index = len(chapters)
            current.title = current.title or title or path.stem
            chapters.append(current)

    for event in parser.events:
        if isinstance(event, str):
            refs.append(event)
        elif isinstance(event, Block):
            current.blocks.append(event)
        elif level is not None and event.level < level and not chapters and not current.blocks and _once(event):
            title = title or event.text  # the lone top heading names the book
        elif level is not None and event.level <= level:
            close()
            current = Chapter(0, event.text, path.name, _slug(event.text), [Block("heading", event.text)])
        else:
            current.blocks.append(Block("heading", event.text))
    close()
    metadata = BookMetadata(
        title=title or path.stem,
        author=meta.get("author", "Unknown"),
        language=meta.get("language", meta.get("lang", "en")),
    )
    return metadata, chapters


def _slug(text: str) -> str:
    return re.sub(r"[^\w]+", "-", text.lower()).strip("-")
