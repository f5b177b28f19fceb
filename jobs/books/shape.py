"""Book-wide shaping after reading, for every format: list numbers, repeated headings, navigation points.

- A paragraph's leading list number ("11鍾毓…", "12. The…", "IV. The…", "十一、…") is navigation, not text:
  it is taken off into ``Block.ordinal`` so it is never run into the sentence. Only numbers that count up
  from one paragraph to the next (or a Chinese "、" enumeration) qualify, so "1823 was a hard year" stays.
- A heading repeated at the top of many chapters (the book's title atop every chapter file) is read once.
- Plays in plain text ("HAMLET. To be, or not to be"; Chinese "翁——孩子。") get their speakers as
  ``Block.speaker`` when many paragraphs open with the same few names.
- Every TOC entry gets the block where it starts (``TocEntry.block_index``): the navigation points.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Iterable

from jobs.books.drama import tidy_name
from jobs.books.model import Block, Book, Chapter, TocEntry

_CJK_DIGITS = "〇零一二三四五六七八九"
_ROMAN = {"i": 1, "v": 5, "x": 10, "l": 50, "c": 100, "d": 500, "m": 1000}
_ORDINAL = re.compile(
    r"^\s*(?P<open>[(（\[]?)\s*"
    r"(?P<num>\d{1,4}|[IVXLCDM]{1,7}|[ivxlcdm]{1,7}|[〇零一二三四五六七八九十百]{1,6})"
    r"\s*(?P<close>[)）\]]?)(?P<sep>\s*[.．:：、]\s*|\s+|(?=[\u3400-\u9fff]))(?=\S)"
)
# "翁——孩子。喂…": a Chinese play's speaker, a short name and a double dash (Lu Xun's 过客).
_DASH_SPEAKER = re.compile(r"^\s*(?P<name>[\u3400-\u9fff]{1,4})(?:——|──)\s*")
_CAPS_SPEAKER = re.compile(r"^(?P<name>[A-Z][A-Z'’ .-]{1,28}[A-Z])\.\s+(?=\S)")
_NORM = re.compile(r"[\W_]+")


def _roman(text: str) -> int | None:
    values = [_ROMAN.get(c) for c in text.lower()]
    if None in values:
        return None
    total = 0
    for i, v in enumerate(values):
        assert v is not None
        nxt = values[i + 1] if i + 1 < len(values) else 0
        total += -v if nxt and v < nxt else v
    return total


def _chinese(text: str) -> int | None:
    if not all(c in _CJK_DIGITS + "十百" for c in text):
        return None
    total, current = 0, 0
    for c in text:
        if c in _CJK_DIGITS:
            current = _CJK_DIGITS.index(c) % 10 if c not in "〇零" else 0
        elif c == "十":
            total += (current or 1) * 10
            current = 0
        elif c == "百":
            total += (current or 1) * 100
            current = 0
    return total + current


@dataclasses.dataclass(frozen=True)
class _Candidate:
    block: int
    value: int
    label: str  # what is read: digits (roman numerals as digits), Chinese numerals as they are
    rest: str  # the text after the marker
    certain: bool  # an unambiguous marker ("十一、") that needs no counting neighbour


def _candidate(index: int, block: Block) -> _Candidate | None:
    if block.kind not in ("paragraph", "verse") or block.ordinal:
        return None
    m = _ORDINAL.match(block.text)
    if m is None:
        return None
    num, sep = m.group("num"), m.group("sep").strip()
    rest = block.text[m.end() :]
    if num.isdigit():
        value: int | None = int(num)
        glued = not m.group("sep")
        if glued and not re.match(r"[\u3400-\u9fff]", rest):  # "3D", "1st" are words, not list markers
            return None
        label = num
    elif num[0] in _CJK_DIGITS + "十百":
        if sep != "、" and not m.group("close"):
            return None  # 一九二四年 is a date, not a marker
        value, label = _chinese(num), num
    else:
        if not sep or sep == "、" or (num in ("I", "i") and not m.group("open")):
            return None  # "I went" is a pronoun; roman markers need "IV." or "(iv)"
        value = _roman(num)
        label = str(value)
    if value is None or not rest.strip():
        return None
    certain = sep == "、" or bool(m.group("open") and m.group("close"))
    return _Candidate(index, value, label, rest, certain)


def mark_ordinals(blocks: list[Block]) -> list[Block]:
    """Take leading list numbers off the paragraphs they open (see module docstring)."""
    found = [c for i, b in enumerate(blocks) if (c := _candidate(i, b)) is not None]
    keep: set[int] = set()
    for k, c in enumerate(found):
        before = found[k - 1] if k else None
        after = found[k + 1] if k + 1 < len(found) else None
        counts = (before is not None and before.value == c.value - 1) or (
            after is not None and after.value == c.value + 1
        )
        if c.certain or counts:
            keep.add(c.block)
    out = list(blocks)
    for c in found:
        if c.block in keep:
            out[c.block] = dataclasses.replace(blocks[c.block], text=c.rest.lstrip(), ordinal=c.label)
    return out


def mark_caps_speakers(blocks: list[Block]) -> list[Block]:
    """Plain-text plays: "HAMLET. To be…" → speaker 'Hamlet', when at least 5 paragraphs open with names
    and the names repeat (a cast, not a novel's shouting)."""
    matches = {i: m for i, b in enumerate(blocks) if b.kind == "paragraph" and not b.speaker
               and (m := _CAPS_SPEAKER.match(b.text))}  # fmt: skip
    names = [m.group("name") for m in matches.values()]
    paragraphs = sum(b.kind == "paragraph" for b in blocks)
    if len(names) < 5 or len(set(names)) > len(names) // 2 or len(names) < paragraphs // 5:
        return blocks
    out = list(blocks)
    for i, m in matches.items():
        out[i] = dataclasses.replace(blocks[i], text=blocks[i].text[m.end() :], speaker=tidy_name(m.group("name")))
    return out


def mark_dash_speakers(blocks: list[Block]) -> list[Block]:
    """Chinese plays: "翁——孩子。喂…" → speaker '翁', for names that open at least two paragraphs, when at
    least 5 paragraphs open so (the cast list's "老翁——约七十岁" names each once and stays text). A name
    left alone by a stage direction ("孩——〔向东望着，〕有谁走来了") goes to the speech after the direction."""
    matches = {i: m for i, b in enumerate(blocks) if b.kind == "paragraph" and not b.speaker
               and (m := _DASH_SPEAKER.match(b.text))}  # fmt: skip
    counts = Counter(m.group("name") for m in matches.values())
    cast = {name for name, n in counts.items() if n >= 2}
    if sum(counts[name] for name in cast) < 5:
        return blocks
    out = list(blocks)
    for i, m in matches.items():
        if m.group("name") in cast:
            out[i] = dataclasses.replace(blocks[i], text=blocks[i].text[m.end() :], speaker=m.group("name"))
    return _carry_bare_speakers(out)


def _carry_bare_speakers(blocks: list[Block]) -> list[Block]:
    """A block that is only a speaker's name hands the name to the speech after its stage directions."""
    out = list(blocks)
    bare = set()
    for i, block in enumerate(out):
        if not block.speaker or re.search(r"\w", block.text):
            continue
        j = i + 1
        while j < len(out) and out[j].kind == "stage_direction":
            j += 1
        if j < len(out) and out[j].kind in ("paragraph", "verse") and not out[j].speaker and j > i + 1:
            out[j] = dataclasses.replace(out[j], speaker=block.speaker, joined=False)
            bare.add(i)
    return without(out, bare)


def _norm(text: str) -> str:
    return _NORM.sub("", text).casefold()


def _top_heading(chapter: Chapter) -> int | None:
    """Index of the chapter's first real block when it is a heading."""
    first = next((i for i, b in enumerate(chapter.blocks) if not b.synthetic), None)
    return first if first is not None and chapter.blocks[first].kind == "heading" else None


def drop_repeated_headings(chapters: list[Chapter], book_title: str) -> None:
    """A heading opening many chapters with the same text (the book's title atop each file) is read once.

    Numbered headings ("Scene I") are structure and stay; so does the first occurrence.
    """
    readable = [c for c in chapters if not c.skipped]
    tops: Counter[str] = Counter()
    for chapter in readable:
        at = _top_heading(chapter)
        if at is not None:
            tops[_norm(chapter.blocks[at].text)] += 1
    title = _norm(book_title)
    repeated = {
        text for text, n in tops.items()
        if text and not re.search(r"(\d|\b[ivxlcdm]+)$", text)
        and ((n >= 3 and n * 2 >= len(readable)) or (text == title and n >= 2))
    }  # fmt: skip
    seen: set[str] = set()
    for chapter in readable:
        at = _top_heading(chapter)
        if at is None or _norm(chapter.blocks[at].text) not in repeated:
            continue
        text = _norm(chapter.blocks[at].text)
        if text in seen and len(chapter.blocks) > at + 1:
            chapter.blocks = without(chapter.blocks, {at})
            if chapter.blocks[0].kind != "heading" and chapter.title and _norm(chapter.title) != text:
                # the dropped heading stood where the chapter's title is announced: announce the title instead
                chapter.blocks.insert(0, Block("heading", chapter.title, synthetic=True))
        seen.add(text)


def without(blocks: list[Block], drop: Iterable[int]) -> list[Block]:
    """The blocks minus those at ``drop``; their navigation marks move to the next block kept."""
    dropped = set(drop)
    out: list[Block] = []
    carried: tuple[int, ...] = ()
    for i, block in enumerate(blocks):
        if i in dropped:
            carried += block.marks
            continue
        if carried:
            block = dataclasses.replace(block, marks=carried + block.marks)
            carried = ()
        out.append(block)
    if carried and out:
        out[-1] = dataclasses.replace(out[-1], marks=out[-1].marks + carried)
    return out


def locate_toc(toc: list[TocEntry], chapters: list[Chapter]) -> list[TocEntry]:
    """Every entry with the block where it starts: 0 for a chapter start, else the block carrying its mark."""
    where: dict[int, int] = {}
    for chapter in chapters:
        for b, block in enumerate(chapter.blocks):
            for mark in block.marks:
                where.setdefault(mark, b)
    out = []
    for i, entry in enumerate(toc):
        at = 0 if entry.is_chapter else where.get(i)
        out.append(dataclasses.replace(entry, block_index=at if entry.chapter_index is not None else None))
    return out


def shape_book(book: Book) -> Book:
    """Apply the book-wide shaping (module docstring) in place and return the book."""
    for chapter in book.chapters:
        chapter.blocks = mark_dash_speakers(mark_caps_speakers(mark_ordinals(chapter.blocks)))
    drop_repeated_headings(book.chapters, book.metadata.title)
    book.toc = locate_toc(book.toc, book.chapters)
    return book
