"""XHTML content document → a flat stream of blocks, anchor marks and note references.

The stream keeps document order so a file holding several chapters can be cut at the TOC's anchors, and so
footnotes can be attached to the chapter that references them. Only block-level text is produced; scripts,
styles, images (unless their alt text is wanted), page-break markers and note bodies are left out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from lxml import etree

from jobs.books.model import Block
from jobs.books.xmlsafe import epub_types, local_name

BLOCK_TAGS = frozenset(
    "address article aside blockquote body caption center dd details dialog div dl dt fieldset figcaption figure "
    "footer form h1 h2 h3 h4 h5 h6 header hgroup li main nav ol p pre section summary table tbody td tfoot th "
    "thead tr ul html".split()
)
HEADING_TAGS = frozenset("h1 h2 h3 h4 h5 h6".split())
SKIP_TAGS = frozenset(
    "head script style template noscript svg math object iframe video audio canvas rt rp button input select "
    "textarea title meta link".split()
)
NOTE_TYPES = frozenset({"footnote", "endnote", "rearnote", "note", "doc-footnote", "doc-endnote"})
NOTE_CONTAINER_TYPES = frozenset({"footnotes", "endnotes", "rearnotes", "doc-endnotes", "doc-footnotes"})
NOTEREF_TYPES = frozenset({"noteref", "doc-noteref"})
SKIP_TYPES = frozenset({"pagebreak", "doc-pagebreak", "backlink", "doc-backlink"})
BREAK_TYPES = frozenset({"z3998:section-break", "break", "se:section-break", "transition"})

_NOTE_MARK = re.compile(r"^[\[(]?(\d{1,3}|[*†‡§¶]{1,3}|[a-z])[\])]?$")
_SCENE_TEXT = re.compile(r"^[\s*⁂•·~#—–-]{1,15}$")
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u2060\ufeff"), None)
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Anchor:
    """An element with an id the TOC points at; ``types`` = epub:type of it and its ancestors."""

    id: str
    types: frozenset[str]


@dataclass(frozen=True)
class NoteRef:
    """A footnote/endnote reference; target = raw href ('file#id' or '#id')."""

    target: str


Item = Block | Anchor | NoteRef


@dataclass
class ContentDoc:
    items: list[Item]
    notes: dict[str, list[Block]] = field(default_factory=dict)
    title: str = ""
    types: frozenset[str] = frozenset()
    anchors_found: set[str] = field(default_factory=set)


def clean_lines(text: str) -> str:
    """Collapse whitespace inside each line, drop empty lines; '\\n' separates verse lines."""
    lines = (_SPACES.sub(" ", line).strip() for line in text.translate(_INVISIBLE).split("\n"))
    return "\n".join(line for line in lines if line)


def _is_noteref(el: etree._Element, tag: str) -> bool:
    if epub_types(el) & NOTEREF_TYPES:
        return True
    if tag not in ("a", "sup"):
        return False
    # EPUB2 books mark note references only visually: <sup><a href="#n1">1</a></sup> or <a href="#n1"><sup>1
    link = el if tag == "a" else next((c for c in el.iter() if local_name(c) == "a"), None)
    if link is None or "#" not in (link.get("href") or ""):
        return False
    has_sup = tag == "sup" or any(local_name(c) == "sup" for c in el.iter()) or local_name(el.getparent()) == "sup"
    text = "".join(el.itertext()).strip()
    return has_sup and bool(_NOTE_MARK.match(text))


def _is_note(el: etree._Element, tag: str, types: set[str]) -> bool:
    if tag == "aside" or types & NOTE_TYPES:
        return True
    classes = (el.get("class") or "").lower()
    return tag in ("div", "p", "li") and ("footnote" in classes or "endnote" in classes) and el.get("id") is not None


def _is_note_container(el: etree._Element, types: set[str]) -> bool:
    """A list of notes: epub:type endnotes/footnotes, or (EPUB 2) class="footnotes"/"endnotes"."""
    classes = (el.get("class") or "").lower().split()
    return bool(types & NOTE_CONTAINER_TYPES) or "footnotes" in classes or "endnotes" in classes


class _Walker:
    def __init__(self, wanted_ids: set[str], image_alt: bool) -> None:
        self.wanted = wanted_ids
        self.image_alt = image_alt
        self.items: list[Item] = []
        self.notes: dict[str, list[Block]] = {}
        self.found: set[str] = set()
        self._buf: list[str] = []
        self._kinds: list[str] = ["paragraph"]
        self._ancestor_types: list[frozenset[str]] = []

    def flush(self) -> None:
        text = clean_lines("".join(self._buf))
        self._buf.clear()
        if not text:
            return
        kind = self._kinds[-1]
        if kind == "paragraph" and _SCENE_TEXT.match(text):
            self.items.append(Block("scene_break", ""))
        else:
            self.items.append(Block(kind, text))

    def walk(self, el: etree._Element, in_notes: bool = False) -> None:
        tag = local_name(el)
        types = epub_types(el)
        if not tag or tag in SKIP_TAGS or types & SKIP_TYPES:
            return
        el_id = el.get("id")
        if el_id and el_id in self.wanted:
            self.flush()
            self.found.add(el_id)
            self.items.append(Anchor(el_id, frozenset().union(types, *self._ancestor_types)))
        if _is_noteref(el, tag):
            href = el.get("href") or next((a.get("href") for a in el.iter() if a.get("href")), "")
            self.items.append(NoteRef(href or ""))
            return
        if _is_note(el, tag, types) or (in_notes and (tag == "li" or (el_id and tag in BLOCK_TAGS))):
            self._take_note(el)
            return
        self._walk_children(el, tag, types, in_notes or _is_note_container(el, types))

    def _walk_children(self, el: etree._Element, tag: str, types: set[str], in_notes: bool) -> None:
        if tag == "br":
            self._buf.append("\n")
            return
        if tag == "hr" or (types & BREAK_TYPES and not "".join(el.itertext()).strip()):
            self.flush()
            self.items.append(Block("scene_break", ""))
            return
        if tag == "img":
            alt = (el.get("alt") or "").strip()
            if self.image_alt and alt:
                self._buf.append(f" {alt} ")
            return
        block = tag in BLOCK_TAGS
        if block:
            self.flush()
            parent_tag = local_name(el.getparent()) if el.getparent() is not None else ""
            heading = tag in HEADING_TAGS or (parent_tag == "hgroup" and tag == "p")
            self._kinds.append("heading" if heading or self._kinds[-1] == "heading" else "paragraph")
        self._ancestor_types.append(frozenset(types))
        self._text(el.text)
        for child in el:
            self.walk(child, in_notes)
            self._text(child.tail)
        self._ancestor_types.pop()
        if block:
            self.flush()
            self._kinds.pop()

    def _text(self, text: str | None) -> None:
        # Source line breaks are just whitespace; only <br/> makes a line break ('\n') in a block.
        if text:
            self._buf.append(text.replace("\r", " ").replace("\n", " "))

    def _take_note(self, el: etree._Element) -> None:
        """Collect a note body under its id (and its first descendant id), out of the main stream."""
        self.flush()
        sub = _Walker(set(), self.image_alt)
        sub._walk_children(el, local_name(el), set(), False)
        sub.flush()
        blocks = [Block("note", b.text) for b in sub.items if isinstance(b, Block) and b.text]
        ids = [el.get("id")] + [c.get("id") for c in el.iter() if c is not el]
        for note_id in ids:
            if note_id:
                self.notes.setdefault(note_id, blocks)
                break
        self.notes.update(sub.notes)


def extract(
    root: etree._Element, wanted_ids: set[str], image_alt: bool, warn: Callable[[str], None] | None = None
) -> ContentDoc:
    """Walk the document's body and return its item stream, notes, <title> and structural epub:types."""
    body = next((el for el in root.iter() if local_name(el) == "body"), root)
    title_el = next((el for el in root.iter() if local_name(el) == "title"), None)
    title = clean_lines("".join(title_el.itertext())) if title_el is not None else ""
    types = set(epub_types(body))
    for child in body:
        if local_name(child) in ("section", "article", "div", "nav", "main"):
            types |= epub_types(child)
    walker = _Walker(wanted_ids, image_alt)
    walker.walk(body)
    walker.flush()
    return ContentDoc(walker.items, walker.notes, title.replace("\n", " "), frozenset(types), walker.found)
