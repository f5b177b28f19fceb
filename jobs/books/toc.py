"""Table of contents: the EPUB 3 nav document (epub:type="toc") or the EPUB 2 NCX, flattened in order."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import unquote

from lxml import etree

from jobs.books.archive import SafeArchive, join_href
from jobs.books.model import TocEntry
from jobs.books.xhtml import clean_lines
from jobs.books.xmlsafe import XmlError, epub_types, local_name, parse_xhtml, parse_xml


def _href(base: str, raw: str) -> str | None:
    path = join_href(base, raw)
    if path is None:
        return None
    frag = unquote(raw.partition("#")[2])
    return f"{path}#{frag}" if frag else path


def _label(el: etree._Element) -> str:
    return clean_lines(" ".join("".join(el.itertext()).split()))


def _walk_nav_list(ol: etree._Element, base: str, depth: int, out: list[TocEntry]) -> None:
    for li in ol:
        if local_name(li) != "li":
            continue
        link = next((c for c in li if local_name(c) in ("a", "span")), None)
        if link is not None and local_name(link) == "a" and link.get("href"):
            href = _href(base, link.get("href") or "")
            if href is not None:
                out.append(TocEntry(depth, _label(link), href))
        for sub in li:
            if local_name(sub) == "ol":
                _walk_nav_list(sub, base, depth + 1, out)


def read_nav(archive: SafeArchive, nav_href: str, warn: Callable[[str], None]) -> list[TocEntry]:
    try:
        root = parse_xhtml(archive.read(nav_href), nav_href, warn)
    except (KeyError, XmlError) as exc:
        warn(f"navigation document {nav_href!r} cannot be read ({exc}); falling back to the spine")
        return []
    navs = [el for el in root.iter() if local_name(el) == "nav"]
    toc_nav = next((n for n in navs if {"toc", "doc-toc"} & epub_types(n)), navs[0] if navs else None)
    out: list[TocEntry] = []
    if toc_nav is not None:
        ol = next((el for el in toc_nav.iter() if local_name(el) == "ol"), None)
        if ol is not None:
            _walk_nav_list(ol, nav_href, 0, out)
    return out


def _walk_ncx(parent: etree._Element, base: str, depth: int, out: list[TocEntry]) -> None:
    for point in parent:
        if local_name(point) != "navpoint":
            continue
        label_el = point.find("{*}navLabel")
        content = point.find("{*}content")
        src = content.get("src") if content is not None else None
        if src:
            href = _href(base, src)
            if href is not None:
                out.append(TocEntry(depth, _label(label_el) if label_el is not None else "", href))
        _walk_ncx(point, base, depth + 1, out)


def read_ncx(archive: SafeArchive, ncx_href: str, warn: Callable[[str], None]) -> list[TocEntry]:
    try:
        root = parse_xml(archive.read(ncx_href), ncx_href)
    except (KeyError, XmlError) as exc:
        warn(f"NCX table of contents {ncx_href!r} cannot be read ({exc}); falling back to the spine")
        return []
    nav_map = root.find("{*}navMap")
    out: list[TocEntry] = []
    if nav_map is not None:
        _walk_ncx(nav_map, ncx_href, 0, out)
    return out
