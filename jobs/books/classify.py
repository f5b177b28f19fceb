"""Front and back matter: decided from epub:type first, then from the TOC label and the file name."""

from __future__ import annotations

import posixpath
import re

FRONT_TYPES = (
    "cover", "doc-cover", "titlepage", "halftitlepage", "copyright-page", "imprint", "toc", "doc-toc",
    "landmarks", "loi", "lot", "seriespage", "frontmatter",
)  # fmt: skip
BACK_TYPES = (
    "colophon", "endnotes", "footnotes", "rearnotes", "doc-endnotes", "index", "doc-index", "backmatter",
)  # fmt: skip
# Types that look like front/back matter but are the book's own text inside body matter.
_LABEL_FRONT = re.compile(
    r"^(cover|title|title ?page|half[- ]?title|copyright( page)?|imprint|(table of )?contents|toc)$", re.IGNORECASE
)
_LABEL_BACK = re.compile(r"^(colophon|uncopyright|(end|foot)?notes|index)$", re.IGNORECASE)
_FILE_FRONT = re.compile(r"(^|[-_])(cover|titlepage|title|halftitle|copyright|imprint|toc|contents)([-_]?\d*)$")
_FILE_BACK = re.compile(r"(^|[-_])(colophon|uncopyright|endnotes|footnotes|notes)([-_]?\d*)$")


def matter_kind(types: frozenset[str] | set[str], label: str, href: str) -> tuple[str, str | None]:
    """('body'|'front'|'back', the reason it is front/back matter or None).

    The most specific epub:type wins (a 'copyright-page' section inside 'backmatter' is back matter named
    'copyright-page'); without types, the label and then the file name decide.
    """
    for kind, names in (("front", FRONT_TYPES), ("back", BACK_TYPES)):
        specific = [t for t in names if t in types and not t.endswith("matter")]
        if specific:
            wrapper = "backmatter" if "backmatter" in types else "frontmatter" if "frontmatter" in types else ""
            final = "back" if wrapper == "backmatter" else "front" if wrapper == "frontmatter" else kind
            return final, specific[0]
    if "bodymatter" in types:
        return "body", None
    for kind, wrapper in (("front", "frontmatter"), ("back", "backmatter")):
        if wrapper in types:
            named = sorted(t for t in types if t != wrapper and ":" not in t)
            return kind, named[0] if named else wrapper
    clean = " ".join(label.split())
    if _LABEL_FRONT.match(clean):
        return "front", clean.lower()
    if _LABEL_BACK.match(clean):
        return "back", clean.lower()
    stem = posixpath.splitext(posixpath.basename(href.split("#", 1)[0]))[0].lower()
    if _FILE_FRONT.search(stem):
        return "front", stem
    if _FILE_BACK.search(stem):
        return "back", stem
    return "body", None
