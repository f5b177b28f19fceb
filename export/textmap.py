"""Find a chunk's sentences in the book's XHTML and give each an id'd ``<span>``, the media overlay's target.

Text is compared on its letters and digits only (case-folded), so whitespace, punctuation, soft hyphens and
markup never matter; note references and page-break markers, which the planner leaves out of the spoken
text, are left out here too. A sentence's span is the smallest well-nested range around its words: when the
words sit in different inline elements the range grows to whole elements, and sentences whose ranges then
overlap share one span. A range that would have to wrap block elements (or sit where a span may not) is left
unsynchronised, never made invalid. Inserting these spans is the only change made to a document.
"""

from __future__ import annotations

import unicodedata
from array import array
from collections.abc import Iterator
from dataclasses import dataclass

from lxml import etree

XHTML_NS = "http://www.w3.org/1999/xhtml"
_EPUB_TYPE = "{http://www.idpf.org/2007/ops}type"
_SKIP_TAGS = frozenset("head script style template noscript svg math rt rp title".split())
_SKIP_TYPES = frozenset("noteref doc-noteref pagebreak doc-pagebreak backlink doc-backlink".split())
# Elements a <span> may wrap (HTML phrasing content) and elements that may not hold a <span> child.
PHRASING = frozenset(
    "a abbr b bdi bdo br cite code data del dfn em i img ins kbd mark q ruby s samp small span strong sub sup "
    "time u var wbr label output meter progress".split())
_NO_SPAN_PARENTS = frozenset(
    "html head ul ol dl table thead tbody tfoot tr colgroup hgroup select optgroup datalist picture ruby".split())
_FALLBACK_CHARS = 16  # a chunk that does not match exactly is found by its first and last letters


def local(el: etree._Element) -> str:
    tag = el.tag
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def text_key(text: str) -> str:
    """What text is compared on: its letters and digits, case-folded."""
    return "".join(ch.casefold() for ch in text if ch.isalnum())


def _skipped(el: etree._Element) -> bool:
    if local(el) in _SKIP_TAGS:
        return True
    types = set((el.get(_EPUB_TYPE) or "").lower().split()) | set((el.get("role") or "").lower().split())
    if types & _SKIP_TYPES:
        return True
    # EPUB 2 note references are only visual: <sup><a href="#n1">1</a></sup> or <a href="#n1"><sup>1</sup></a>
    if local(el) in ("sup", "a"):
        link = el if local(el) == "a" else next((c for c in el.iter() if local(c) == "a"), None)
        has_sup = local(el) == "sup" or any(local(c) == "sup" for c in el.iter())
        text = "".join(el.itertext()).strip()
        return link is not None and "#" in (link.get("href") or "") and has_sup and len(text) <= 4
    return False


@dataclass(frozen=True)
class Position:
    """A point in the text: offset ``offset`` into slot ``slot`` of ``parent`` (slot 0 = parent.text,
    slot k = the tail of parent's k-th child)."""

    parent: etree._Element
    slot: int
    offset: int


def slot_text(parent: etree._Element, slot: int) -> str:
    return (parent.text if slot == 0 else parent[slot - 1].tail) or ""


def _set_slot_text(parent: etree._Element, slot: int, text: str) -> None:
    if slot == 0:
        parent.text = text or None
    else:
        parent[slot - 1].tail = text or None


class TextIndex:
    """The readable text of one XHTML document, indexed from key characters back to text positions."""

    def __init__(self, root: etree._Element) -> None:
        self.root = root
        self._parts: list[str] = []  # the key, one piece per text slot
        self._length = 0
        # Per key character, compactly (a novel has millions): which text slot it is in, and where in it.
        self._slots: list[tuple[etree._Element, int]] = []
        self._slot_of = array("i")
        self._offset_of = array("i")
        self.element_span: dict[etree._Element, tuple[int, int]] = {}
        self.ids = {el.get("id") for el in root.iter() if el.get("id")}
        body = next((el for el in root.iter() if local(el) == "body"), None)
        if body is not None:
            self._walk(body)
        self.key = "".join(self._parts)
        self._parts.clear()

    def _add(self, parent: etree._Element, slot: int, text: str | None) -> None:
        if not text:
            return
        number = len(self._slots)
        self._slots.append((parent, slot))
        piece = []
        for offset, ch in enumerate(text):
            if ch.isalnum():
                folded = ch.casefold()
                piece.append(folded)
                self._slot_of.extend([number] * len(folded))
                self._offset_of.extend([offset] * len(folded))
        key = "".join(piece)
        self._parts.append(key)
        self._length += len(key)

    def _where(self, key_offset: int) -> tuple[etree._Element, int, int]:
        parent, slot = self._slots[self._slot_of[key_offset]]
        return parent, slot, self._offset_of[key_offset]

    def _walk(self, el: etree._Element) -> None:
        start = self._length
        if not _skipped(el):
            self._add(el, 0, el.text)
            for i, child in enumerate(el):
                if isinstance(child.tag, str):
                    self._walk(child)
                self._add(el, i + 1, child.tail)
        self.element_span[el] = (start, self._length)

    def element_start(self, element_id: str) -> int | None:
        for el, (start, _) in self.element_span.items():
            if el.get("id") == element_id:
                return start
        return None

    def locate(self, key: str, start: int, stop: int) -> tuple[int, int] | None:
        """Key offsets [begin, end) of ``key`` searched in [start, stop); None when it is not there."""
        if not key:
            return None
        found = self.key.find(key, start, stop)
        if found >= 0:
            return found, found + len(key)
        if len(key) < 2 * _FALLBACK_CHARS:
            return None
        head, tail = key[:_FALLBACK_CHARS], key[-_FALLBACK_CHARS:]
        begin = self.key.find(head, start, stop)
        if begin < 0:
            return None
        end = self.key.find(tail, begin + _FALLBACK_CHARS, min(stop, begin + 2 * len(key) + 40))
        return (begin, end + _FALLBACK_CHARS) if end >= 0 else None

    def positions(self, begin: int, end: int) -> tuple[Position, Position]:
        """Text positions around key range [begin, end), widened over opening punctuation before it and
        closing punctuation after it (quotes, the full stop), never over whitespace or another word."""
        parent, slot, offset = self._where(begin)
        text = slot_text(parent, slot)
        while offset > 0 and _opens(text[offset - 1]):
            offset -= 1
        first = Position(parent, slot, offset)
        parent, slot, offset = self._where(end - 1)
        text, offset = slot_text(parent, slot), offset + 1
        while offset < len(text) and _closes(text[offset]):
            offset += 1
        return first, Position(parent, slot, offset)


def _opens(ch: str) -> bool:
    return unicodedata.category(ch) in ("Ps", "Pi") or ch in "\"'¿¡"


def _closes(ch: str) -> bool:
    return unicodedata.category(ch) in ("Pe", "Pf", "Po") and ch not in "¿¡"


def _ancestors(el: etree._Element) -> Iterator[etree._Element]:
    node: etree._Element | None = el
    while node is not None:
        yield node
        node = node.getparent()


def nest(index: TextIndex, first: Position, last: Position, begin: int, end: int
         ) -> tuple[Position, Position, int, int]:
    """The smallest range around [first, last) whose two ends share one parent element, with the key range
    [begin, end) widened to match (it then covers whole inline elements)."""
    if first.parent is last.parent:
        return first, last, begin, end
    above_last = list(_ancestors(last.parent))
    common = next(a for a in _ancestors(first.parent) if any(a is b for b in above_last))
    while first.parent is not common:
        child, parent = first.parent, first.parent.getparent()
        slot = parent.index(child)
        text = slot_text(parent, slot)
        offset = len(text)
        while offset > 0 and _opens(text[offset - 1]):
            offset -= 1
        first = Position(parent, slot, offset)
        begin = min(begin, index.element_span.get(child, (begin, end))[0])
    while last.parent is not common:
        child, parent = last.parent, last.parent.getparent()
        text, offset = slot_text(parent, parent.index(child) + 1), 0
        while offset < len(text) and _closes(text[offset]):
            offset += 1
        last = Position(parent, parent.index(child) + 1, offset)
        end = max(end, index.element_span.get(child, (begin, end))[1])
    return first, last, begin, end


def can_wrap(first: Position, last: Position) -> bool:
    """Whether a <span> may replace this range: a parent that takes text, phrasing children only."""
    if local(first.parent) in _NO_SPAN_PARENTS:
        return False
    moved = first.parent[first.slot:last.slot]
    return all(not isinstance(c.tag, str) or local(c) in PHRASING for c in moved)


def wrap(first: Position, last: Position, span_id: str) -> etree._Element:
    """Put the range (ends sharing one parent) into a new ``<span id=span_id>``; the text is unchanged."""
    parent, head = first.parent, slot_text(first.parent, first.slot)
    # Made as a child of ``parent`` so that it shares the document's XHTML namespace declaration.
    span = etree.SubElement(parent, f"{{{XHTML_NS}}}span", {"id": span_id})
    if first.slot == last.slot:
        span.text, span.tail = head[first.offset:last.offset] or None, head[last.offset:] or None
    else:
        moved = list(parent[first.slot:last.slot])
        tail = moved[-1].tail or ""
        moved[-1].tail = tail[:last.offset] or None
        span.text, span.tail = head[first.offset:] or None, tail[last.offset:] or None
        for child in moved:
            span.append(child)  # lxml moves each child with its tail
    _set_slot_text(parent, first.slot, head[:first.offset])
    parent.insert(first.slot, span)
    return span
