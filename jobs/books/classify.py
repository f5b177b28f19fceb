"""Front and back matter: what a part of the book is, and whether a listener hears it.

Decided from the epub:type first, then the TOC label and file name, then the text itself and its size:

- the publisher's pages (cover, title and half-title page, copyright page, imprint, contents, colophon,
  index, notes, Project Gutenberg's licence, an editor's note on the edition) are never read by default;
- the author's own text around the body (dedication, epigraph, preface, foreword, introduction, prologue,
  epilogue, afterword, appendix, dramatis personae, ...) is read, wherever the EPUB puts it;
- a part whose text is only the book's title and author is a title page, whatever its markup says.

:func:`judge` returns the decision and, in words, why, so ``render plan`` can show it.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass

SKIP_FRONT_TYPES = (
    "cover", "doc-cover", "titlepage", "halftitlepage", "copyright-page", "imprint", "toc", "doc-toc",
    "landmarks", "loi", "lot", "seriespage", "frontispiece", "errata", "other-credits", "contributors",
)  # fmt: skip
SKIP_BACK_TYPES = (
    "colophon", "endnotes", "footnotes", "rearnotes", "doc-endnotes", "index", "doc-index", "bibliography",
    "doc-bibliography", "glossary", "doc-glossary",
)  # fmt: skip
# The author's text around the body: read by default even inside front or back matter.
AUTHOR_TYPES = (
    "dedication", "doc-dedication", "epigraph", "doc-epigraph", "preface", "doc-preface", "foreword",
    "doc-foreword", "introduction", "doc-introduction", "prologue", "doc-prologue", "preamble", "epilogue",
    "doc-epilogue", "afterword", "doc-afterword", "conclusion", "doc-conclusion", "appendix", "doc-appendix",
    "z3998:dramatis-personae", "acknowledgments", "doc-acknowledgments", "z3998:letter", "prelude",
)  # fmt: skip
FRONT_TYPES = SKIP_FRONT_TYPES + ("frontmatter",)  # kept for readers of the old names
BACK_TYPES = SKIP_BACK_TYPES + ("backmatter",)

_LABEL_SKIP_FRONT = re.compile(
    r"^(cover|title|title ?page|half[- ]?title( page)?|copyright( page)?|imprint|(table of )?contents|toc|"
    r"frontispiece|list of (illustrations|figures|tables))$",
    re.IGNORECASE,
)
_LABEL_SKIP_BACK = re.compile(r"^(colophon|uncopyright|(end|foot)?notes|index|bibliography|glossary)$", re.IGNORECASE)
_LABEL_AUTHOR = re.compile(
    r"^(dedication|epigraph|preface|foreword|introduction|prologue|preamble|epilogue|afterword|conclusion|"
    r"appendix( [a-z0-9]+)?|dramatis personae|(the )?persons of the (play|drama)|characters|acknowledge?ments)\b",
    re.IGNORECASE,
)
_LABEL_EDITORIAL = re.compile(
    r"^((a )?note on the (text|translation|edition)|(transcriber|editor|publisher)['’]?s?['’]? note|"
    r"about (this|the) (e-?book|edition|text)|about the (publisher|author)|credits|project gutenberg)",
    re.IGNORECASE,
)
_FILE_FRONT = re.compile(r"(^|[-_])(cover|titlepage|title|halftitle(page)?|copyright|imprint|toc|contents)([-_]?\d*)$")
_FILE_BACK = re.compile(r"(^|[-_])(colophon|uncopyright|endnotes|footnotes|notes)([-_]?\d*)$")
_WORD = re.compile(r"[^\W_]+")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_COPYRIGHT_SIGNS = re.compile(
    r"©|\(c\)\s*\d{4}|\bcopyright\b|all rights reserved|\bisbn\b|creative commons|public domain|"
    r"\blicen[cs]ed?\b|first published|printed in|版权|版權|著作权",
    re.IGNORECASE,
)
_GUTENBERG = re.compile(r"project gutenberg", re.IGNORECASE)
_EDITION_SIGNS = re.compile(r"this (e-?book|edition|text)|transcriber|was prepared|the present edition", re.IGNORECASE)


@dataclass(frozen=True)
class Judgement:
    kind: str  # 'body' | 'front' | 'back'
    read: bool  # read by default
    name: str  # what the part is: 'titlepage', 'dedication', 'editorial note', ...
    why: str  # the reason in words, for `render plan`


def matter_kind(types: frozenset[str] | set[str], label: str, href: str) -> tuple[str, str | None]:
    """('body'|'front'|'back', the reason it is front/back matter or None) from markup, label and file name.

    The most specific epub:type wins (a 'copyright-page' section inside 'backmatter' is back matter named
    'copyright-page'); without types, the label and then the file name decide.
    """
    for kind, names in (("front", SKIP_FRONT_TYPES), ("back", SKIP_BACK_TYPES), ("", AUTHOR_TYPES)):
        specific = [t for t in names if t in types]
        if specific:
            wrapper = "backmatter" if "backmatter" in types else "frontmatter" if "frontmatter" in types else ""
            final = "back" if wrapper == "backmatter" else "front" if wrapper == "frontmatter" else kind or "body"
            return final, specific[0].removeprefix("doc-").removeprefix("z3998:")
    if "bodymatter" in types:
        return "body", None
    for kind, wrapper in (("front", "frontmatter"), ("back", "backmatter")):
        if wrapper in types:
            named = sorted(t for t in types if t != wrapper and ":" not in t)
            return kind, named[0] if named else wrapper
    clean = " ".join(label.split())
    if _LABEL_SKIP_FRONT.match(clean):
        return "front", clean.lower()
    if _LABEL_SKIP_BACK.match(clean):
        return "back", clean.lower()
    stem = posixpath.splitext(posixpath.basename(href.split("#", 1)[0]))[0].lower()
    if _FILE_FRONT.search(stem):
        return "front", stem
    if _FILE_BACK.search(stem):
        return "back", stem
    return "body", None


def _words(text: str) -> list[str]:
    return [w.casefold() for w in _WORD.findall(text)] + _CJK.findall(text)


def _only_title_and_author(texts: Sequence[str], title: str, author: str) -> bool:
    """Text made of nothing but the book's title, its author and a few connecting words ('by', a city...)."""
    words = _words(" ".join(texts))
    known = set(_words(title)) | set(_words(author)) | {"by", "a", "an", "the", "of", "and", "or", "written"}
    if not words or not set(_words(title)) or len(words) > 40:
        return False
    other = [w for w in words if w not in known]
    return len(other) <= max(3, len(words) // 4) and any(w in words for w in _words(title))


def judge(
    types: frozenset[str] | set[str], label: str, href: str, texts: Sequence[str], title: str, author: str
) -> Judgement:
    """Whether a part of the book is read by default, and why (``texts``: its blocks' text, headings included)."""
    kind, name = matter_kind(types, label, href)
    words = _words(" ".join(texts))
    joined = " ".join(texts)
    if name is not None and (name in AUTHOR_TYPES or f"doc-{name}" in AUTHOR_TYPES or f"z3998:{name}" in AUTHOR_TYPES):
        return Judgement(kind, True, name, f"{name} (epub:type): the author's own text, read")
    if name is not None and kind != "body" and name not in ("frontmatter", "backmatter"):
        return Judgement(kind, False, name, f"{name} ({_source(types, name)}): never read by default")
    clean = " ".join(label.split())
    if _LABEL_EDITORIAL.match(clean) or (len(words) < 400 and _GUTENBERG.search(joined)):
        return Judgement("front" if kind == "body" else kind, False, "editorial note",
                         f"editorial note ({clean or 'content'}): about the edition, not the author's text")
    if _LABEL_AUTHOR.match(clean):
        return Judgement(kind, True, clean.lower(), f"{clean.lower()} (label): the author's own text, read")
    if _only_title_and_author(texts, title, author):
        return Judgement("front", False, "title page", "title page (content): only the book's title and author")
    signs = {m.group().lower() for m in _COPYRIGHT_SIGNS.finditer(joined)}
    if len(words) < 250 and (len(signs) >= 2 or (signs and len(words) < 60)):
        shown = ", ".join(sorted(signs)[:3])
        return Judgement("front" if kind == "body" else kind, False, "copyright page",
                         f"copyright page (content: {shown}): never read by default")
    if len(words) < 200 and _EDITION_SIGNS.search(joined) and signs:
        return Judgement("front" if kind == "body" else kind, False, "editorial note",
                         "editorial note (content): about the edition, not the author's text")
    if kind == "body":
        return Judgement("body", True, "", "body text")
    if len(words) >= 30:
        return Judgement(kind, True, name or kind, f"{kind} matter with text of its own ({len(words)} words): read")
    return Judgement(kind, False, name or kind, f"{kind} matter without text of its own: not read by default")


def _source(types: frozenset[str] | set[str], name: str) -> str:
    return "epub:type" if any(t.endswith(name) for t in types) else "label or file name"
