"""Plays and poems in XHTML: who speaks, what is a stage direction, where a verse line ends.

Recognised from markup first, the way publishers write it:

- Standard Ebooks: ``epub:type="z3998:persona"`` (a table cell or an inline name before the speech),
  ``z3998:stage-direction`` (a cell, a paragraph or inline ``<i>``), ``z3998:verse``/``z3998:poem`` blocks;
- others: ``class="speaker"`` (also persona, character, charname...), stage directions as
  ``class="stage"``/``stagedir``/``direction`` or as italics in brackets (``[<i>Exit.</i>]``), speaker names
  in small caps at the start of a paragraph, poems as ``class="poem"``/``stanza``/``verse`` with lines as
  ``<br/>``, ``class="line"`` spans or line paragraphs.

Small-caps names and bracketed italics are ambiguous in prose, so they count only where the document shows
enough of them (:func:`scan`): several paragraphs opening with the same few small-caps names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from jobs.books.xmlsafe import epub_types, local_name

PERSONA_TYPES = frozenset({"z3998:persona"})
STAGE_TYPES = frozenset({"z3998:stage-direction"})
DRAMA_TYPES = frozenset({"z3998:drama", "z3998:dramatis-personae", *PERSONA_TYPES, *STAGE_TYPES})
VERSE_TYPES = frozenset({"z3998:verse", "z3998:poem", "z3998:song", "z3998:hymn", "z3998:lyrics", "z3998:stanza"})
CAST_TYPES = frozenset({"z3998:dramatis-personae"})
SPEAKER_CLASSES = frozenset({"speaker", "persona", "character", "charname", "speech-speaker", "spkr", "speaker-name"})
STAGE_CLASSES = frozenset({"stage", "stagedir", "stage-direction", "stagedirection", "direction", "sd"})
VERSE_CLASSES = frozenset({"poem", "poetry", "verse", "stanza", "song", "lyrics", "lg"})
STANZA_CLASSES = frozenset({"stanza", "lg"})
LINE_CLASSES = frozenset({"line", "verse-line", "l"})
SMALL_CAPS_CLASSES = frozenset({"smallcaps", "small-caps", "smcap", "smcp", "sc", "caps"})
SPEAKER_CELL_TAGS = frozenset({"td", "th", "p", "div", "dt", "span", "b", "strong", "h5", "h6"})
INLINE_TAGS = frozenset({"b", "strong", "span", "i", "em", "a", "abbr", "small", "sc"})

#: Stage-direction text inside a block's buffer is wrapped in these, then split out when the block ends.
STAGE_OPEN, STAGE_CLOSE = "\x02", "\x03"
_SMALL_CAPS_STYLE = re.compile(r"font-variant\s*:\s*small-caps", re.IGNORECASE)
_SPEECH_LEAD = re.compile(r"^\s*[.:—–]")


def classes(el: etree._Element) -> set[str]:
    return set((el.get("class") or "").lower().split())


def is_small_caps(el: etree._Element) -> bool:
    return bool(classes(el) & SMALL_CAPS_CLASSES) or bool(_SMALL_CAPS_STYLE.search(el.get("style") or ""))


def is_persona(el: etree._Element, types: set[str]) -> bool:
    return bool(types & PERSONA_TYPES) or bool(classes(el) & SPEAKER_CLASSES)


def is_stage(el: etree._Element, types: set[str]) -> bool:
    return bool(types & STAGE_TYPES) or bool(classes(el) & STAGE_CLASSES)


def is_verse_context(el: etree._Element, types: set[str]) -> bool:
    return bool(types & VERSE_TYPES) or bool(classes(el) & VERSE_CLASSES)


def speaker_name(el: etree._Element) -> str:
    """A persona element's name, tidied: line breaks become "and", trailing punctuation goes, ALL CAPS is
    title-cased ("MARCELLUS<br/>BERNARDO." → "Marcellus and Bernardo")."""
    parts: list[str] = [el.text or ""]
    for child in el.iter():
        if child is el:
            continue
        if local_name(child) == "br":
            parts.append(" and ")
        else:
            parts.append(child.text or "")
        parts.append(child.tail or "")
    return tidy_name("".join(parts))


def tidy_name(raw: str) -> str:
    name = " ".join(raw.split()).strip(" .:,;—–-")
    letters = [c for c in name if c.isalpha()]
    if letters and all(c.isupper() for c in letters) and any(ord(c) < 0x250 for c in letters):
        name = " ".join(w.capitalize() if w.lower() != "and" else "and" for w in name.split())
    return name


@dataclass(frozen=True)
class Features:
    """What a document's markup shows: whether it is drama, and whether small caps name its speakers."""

    drama: bool = False
    small_caps_speakers: bool = False


def _lead_small_caps(block: etree._Element) -> str | None:
    """The small-caps text a paragraph opens with, when what follows reads like a speech ("NAME. text")."""
    if (block.text or "").strip() or not len(block):
        return None
    first = block[0]
    if not isinstance(first.tag, str) or not is_small_caps(first):
        return None
    name = "".join(first.itertext()).strip()
    rest = first.tail or ""
    if not name or len(name.split()) > 4 or not (name.endswith((".", ":")) or _SPEECH_LEAD.match(rest)):
        return None
    return tidy_name(name)


def scan(body: etree._Element) -> Features:
    """Drama evidence of a document: drama markup, or at least 3 paragraphs opening with small-caps names
    of which some repeat (a novel's small-caps first words do not repeat like a cast does)."""
    drama = False
    names: list[str] = []
    for el in body.iter():
        if not isinstance(el.tag, str):
            continue
        types = epub_types(el)
        if types & DRAMA_TYPES or classes(el) & (SPEAKER_CLASSES | STAGE_CLASSES):
            drama = True
        if local_name(el) in ("p", "div", "td", "dd"):
            name = _lead_small_caps(el)
            if name:
                names.append(name.casefold())
    speakers = len(names) >= 3 and len(set(names)) <= len(names) * 2 // 3
    return Features(drama=drama or speakers, small_caps_speakers=speakers)


def split_stage(text: str) -> list[tuple[bool, str]]:
    """A block's text cut at its stage-direction marks: (is_stage_direction, text) pieces, empty ones dropped."""
    pieces: list[tuple[bool, str]] = []
    for part in re.split(f"({STAGE_OPEN}[^{STAGE_CLOSE}]*{STAGE_CLOSE}?)", text):
        stage = part.startswith(STAGE_OPEN)
        clean = part.strip(STAGE_OPEN + STAGE_CLOSE).strip()
        clean = clean.strip("\n").strip()
        if clean.strip("[]() "):
            pieces.append((stage, clean))
    return pieces


_BRACKETED = re.compile(r"(?<![\w\x02])([\[〔［][^\[\]〔〕［］\x02\x03\n]{1,200}[\]〕］])")


def mark_bracketed(text: str) -> str:
    """In a play, text in square or tortoise-shell brackets is a stage direction: mark it as one."""
    return _BRACKETED.sub(lambda m: f"{STAGE_OPEN}{m.group(1)}{STAGE_CLOSE}", text)


def bracketed(text: str) -> str | None:
    """The inside of "[Exit.]" or "(Aside.)" (a whole italic run in brackets), else None."""
    stripped = text.strip()
    if len(stripped) > 2 and stripped[0] + stripped[-1] in ("[]", "()", "〔〕", "［］"):
        return stripped[1:-1].strip()
    return None
