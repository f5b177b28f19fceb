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

from jobs.books import drama
from jobs.books.drama import STAGE_CLOSE, STAGE_OPEN, Features
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
_STAGE_SPAN = re.compile(f"{STAGE_OPEN}[^{STAGE_CLOSE}]*{STAGE_CLOSE}?")
_LEAD_PUNCT = re.compile(r"^[\s.:—–]+")


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


def _short_lines(text: str) -> bool:
    """Two or more line breaks between short lines: a poem even without poem markup."""
    lines = text.split("\n")
    return len(lines) >= 3 and all(len(line) <= 80 for line in lines)


class _Walker:
    def __init__(
        self, wanted_ids: set[str], image_alt: bool, features: Features = Features(), read_stage: bool = True
    ) -> None:
        self.wanted = wanted_ids
        self.image_alt = image_alt
        self.features = features
        self.read_stage = read_stage
        self.items: list[Item] = []
        self.notes: dict[str, list[Block]] = {}
        self.found: set[str] = set()
        self._buf: list[str] = []
        self._kinds: list[str] = ["paragraph"]
        self._ancestor_types: list[frozenset[str]] = []
        self._blocks: list[etree._Element] = []  # the block elements being read, innermost last
        self._speaker = ""  # the speaker of the speech being read ('' outside plays)
        self._turn_scope: etree._Element | None = None  # the element whose end ends the speech (a table row)
        self._turn_blocks = 0  # blocks of the current speech emitted so far
        self._strip_lead = False  # drop the ". " between an inline speaker name and the speech
        self._strip_close = ""  # the closing bracket of a bracketed stage direction, still to drop
        self._stage = 0  # inside stage-direction markup
        self._cast = 0  # inside a dramatis personae list: names there are text, not speakers
        self._verse = 0  # inside poem or verse markup
        self._lines = 0  # inside a stanza whose child blocks are its lines

    def flush(self) -> None:
        raw = "".join(self._buf)
        self._buf.clear()
        if not self.read_stage:
            raw = _STAGE_SPAN.sub(" ", raw)
        text = clean_lines(raw)
        if not text.strip(STAGE_OPEN + STAGE_CLOSE + " \n"):
            return
        kind = self._kinds[-1]
        if kind == "paragraph" and _SCENE_TEXT.match(text):
            self.items.append(Block("scene_break", ""))
            return
        if kind == "paragraph" and (self._verse or _short_lines(text)):
            kind = "verse"
        if self.features.drama and kind != "heading":
            text = drama.mark_bracketed(text)  # "〔向东望着，〕", "[Exit.]" in a play's text
            if not self.read_stage:
                text = clean_lines(_STAGE_SPAN.sub(" ", text))
                if not text:
                    return
        pieces = drama.split_stage(text) if STAGE_OPEN in text else [(False, text)]
        if kind == "stage_direction":
            pieces = [(True, piece) for _, piece in pieces]
        self._emit(kind, pieces)

    def _emit(self, kind: str, pieces: list[tuple[bool, str]]) -> None:
        """Blocks of one flushed buffer; the speaker goes on the speech's first words, later blocks are joined."""
        if kind == "heading":
            self.items += [Block(kind, text) for _, text in pieces]
            return
        first_speech = next((i for i, (stage, _) in enumerate(pieces) if not stage), 0)
        for i, (stage, text) in enumerate(pieces):
            block_kind = "stage_direction" if stage else kind
            if stage:
                text = drama.bracketed(text) or text
            speaker, joined = "", False
            if self._speaker and self._turn_blocks == 0 and i == first_speech:
                speaker = self._speaker
            elif self._speaker and (self._turn_blocks > 0 or i > first_speech):
                joined = True
            self.items.append(Block(block_kind, text, speaker=speaker, joined=joined))
            if speaker or joined:
                self._turn_blocks += 1
        if self._speaker and self._turn_scope is None and self._turn_blocks:
            self._end_turn()

    def _end_turn(self) -> None:
        self._speaker, self._turn_scope, self._turn_blocks = "", None, 0

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
        if self._speaker_here(el, tag, types):
            return
        if self._stage_inline(el, tag, types, in_notes):
            return
        self._cast += bool(types & drama.CAST_TYPES)
        self._verse += drama.is_verse_context(el, types)
        self._walk_children(el, tag, types, in_notes or _is_note_container(el, types))
        self._cast -= bool(types & drama.CAST_TYPES)
        self._verse -= drama.is_verse_context(el, types)
        if el is self._turn_scope:
            self.flush()
            self._end_turn()

    def _at_block_start(self) -> bool:
        return not "".join(self._buf).strip()

    def _speaker_here(self, el: etree._Element, tag: str, types: set[str]) -> bool:
        """A speaker's name: a persona cell or paragraph (the speech follows), or an inline name that opens a
        paragraph ("<b>Hamlet</b>. To be"). The name is kept aside and read with the speech."""
        if self._stage or self._cast or tag not in drama.SPEAKER_CELL_TAGS:
            return False
        persona = drama.is_persona(el, types)
        lead_caps = self.features.small_caps_speakers and drama.is_small_caps(el) and tag in drama.INLINE_TAGS
        if not (persona or lead_caps):
            return False
        name = drama.speaker_name(el)
        if not name:
            return False
        if tag in BLOCK_TAGS or tag in ("p", "div", "dt", "h5", "h6"):
            self.flush()
            row = next((a for a in el.iterancestors() if local_name(a) == "tr"), None)
            self._speaker, self._turn_scope, self._turn_blocks = name, row, 0
            return True
        tail = el.tail or ""
        raw = "".join(el.itertext()).strip()
        speech_follows = raw.endswith((".", ":")) or bool(re.match(r"^\s*[.:—–]", tail))
        if not self._at_block_start() or not speech_follows or not self._blocks:
            return False
        self._speaker, self._turn_scope, self._turn_blocks = name, self._blocks[-1], 0
        self._strip_lead = True
        return True

    def _stage_inline(self, el: etree._Element, tag: str, types: set[str], in_notes: bool) -> bool:
        """An inline stage direction: marked (epub:type, class) or, in a play, italics in brackets."""
        if tag in BLOCK_TAGS:
            return False
        marked = drama.is_stage(el, types)
        bracketed = False
        if not marked and self.features.drama and tag in ("i", "em"):
            before = "".join(self._buf).rstrip()
            inner = "".join(el.itertext())
            outer = before.endswith(("[", "(")) and (el.tail or "").lstrip().startswith(("]", ")"))
            bracketed = outer or drama.bracketed(inner) is not None
            if outer:
                self._drop_open_bracket()
                self._strip_close = "]" if (el.tail or "").lstrip().startswith("]") else ")"
        if not (marked or bracketed):
            return False
        self._buf.append(STAGE_OPEN)
        self._stage += 1
        self._walk_children(el, tag, types, in_notes)
        self._stage -= 1
        self._buf.append(STAGE_CLOSE)
        return True

    def _drop_open_bracket(self) -> None:
        for i in range(len(self._buf) - 1, -1, -1):
            stripped = self._buf[i].rstrip()
            if stripped:
                self._buf[i] = stripped[:-1]
                return

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
        stanza = bool(drama.classes(el) & drama.STANZA_CLASSES) and not self._lines
        line_block = self._lines > 0 and tag in BLOCK_TAGS  # a line of a stanza: part of the stanza's block
        block = tag in BLOCK_TAGS and not line_block
        if block:
            self.flush()
            self._kinds.append(self._block_kind(el, tag, types))
            self._blocks.append(el)
        self._lines += stanza
        self._ancestor_types.append(frozenset(types))
        self._text(el.text)
        for child in el:
            self.walk(child, in_notes)
            self._text(child.tail)
        self._ancestor_types.pop()
        self._lines -= stanza
        if line_block or drama.classes(el) & drama.LINE_CLASSES:
            self._buf.append("\n")
        if block:
            self.flush()
            self._kinds.pop()
            self._blocks.pop()

    def _block_kind(self, el: etree._Element, tag: str, types: set[str]) -> str:
        parent_tag = local_name(el.getparent()) if el.getparent() is not None else ""
        outer = self._kinds[-1]
        if tag in HEADING_TAGS or (parent_tag == "hgroup" and tag == "p") or outer == "heading":
            return "heading"
        if drama.is_stage(el, types) and not self._cast or outer == "stage_direction":
            return "stage_direction"
        if drama.classes(el) & drama.STANZA_CLASSES:
            return "verse"
        return "paragraph"

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
    root: etree._Element,
    wanted_ids: set[str],
    image_alt: bool,
    warn: Callable[[str], None] | None = None,
    read_stage: bool = True,
) -> ContentDoc:
    """Walk the document's body and return its item stream, notes, <title> and structural epub:types."""
    body = next((el for el in root.iter() if local_name(el) == "body"), root)
    title_el = next((el for el in root.iter() if local_name(el) == "title"), None)
    title = clean_lines("".join(title_el.itertext())) if title_el is not None else ""
    types = set(epub_types(body))
    for child in body:
        if local_name(child) in ("section", "article", "div", "nav", "main"):
            types |= epub_types(child)
    walker = _Walker(wanted_ids, image_alt, drama.scan(body), read_stage)
    walker.walk(body)
    walker.flush()
    return ContentDoc(walker.items, walker.notes, title.replace("\n", " "), frozenset(types), walker.found)
