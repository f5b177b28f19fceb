"""This project's small openly licensed books (``tests/books/corpus``): drama, numbered anecdotes, a dedication.

Each is built into an EPUB 3 from the XHTML excerpts and ``manifest.json`` (OPF and nav written here), so the
repository holds reviewable text, not binaries. See ``corpus/MANIFEST.md`` for sources and licences.
"""

from __future__ import annotations

import json
import zipfile
from html import escape
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).with_name("corpus")
MANIFEST: list[dict[str, Any]] = json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))
CONTAINER = (
    '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
    '<rootfiles><rootfile full-path="epub/content.opf" media-type="application/oebps-package+xml"/></rootfiles>'
    "</container>"
)


def entry(name: str) -> dict[str, Any]:
    return next(e for e in MANIFEST if e["file"] == name)


def _nav(toc: list[dict[str, Any]]) -> str:
    out, previous = ["<ol>"], -1
    for item in toc:
        depth = item["depth"]
        if previous >= 0 and depth > previous:
            out.append("<ol>" * (depth - previous))  # nested inside the open <li>
        elif previous >= 0:
            out.append("</li>" + "</ol></li>" * (previous - depth))
        out.append(f'<li><a href="{item["href"]}">{escape(item["label"])}</a>')
        previous = depth
    out.append("</li>" + "</ol></li>" * max(previous, 0) + "</ol>")
    return (
        '<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml" '
        'xmlns:epub="http://www.idpf.org/2007/ops"><head><title>Table of Contents</title></head>'
        f'<body epub:type="frontmatter"><nav epub:type="toc">{"".join(out)}</nav></body></html>'
    )


def _opf(book: dict[str, Any]) -> str:
    items = ['<item id="nav" href="toc.xhtml" media-type="application/xhtml+xml" properties="nav"/>']
    refs = []
    for i, part in enumerate(book["spine"]):
        items.append(f'<item id="s{i}" href="{part["href"]}" media-type="application/xhtml+xml"/>')
        refs.append(f'<itemref idref="s{i}"/>')
    return (
        '<?xml version="1.0" encoding="utf-8"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" '
        'unique-identifier="uid"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f'<dc:identifier id="uid">urn:audiobook-renderer:test:{escape(book["file"])}</dc:identifier>'
        f'<dc:title>{escape(book["title"])}</dc:title><dc:creator>{escape(book["creator"])}</dc:creator>'
        f'<dc:language>{book["language"]}</dc:language></metadata>'
        f'<manifest>{"".join(items)}</manifest><spine>{"".join(refs)}</spine></package>'
    )


def build(name: str, out_dir: Path) -> Path:
    """Build the book ``name`` (its ``file`` in the manifest) into ``out_dir`` and return its path."""
    book = entry(name)
    path = Path(out_dir) / book["file"]
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), b"application/epub+zip")
        zf.writestr("META-INF/container.xml", CONTAINER, compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr("epub/content.opf", _opf(book), compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr("epub/toc.xhtml", _nav(book["toc"]), compress_type=zipfile.ZIP_DEFLATED)
        for part in book["spine"]:
            data = (CORPUS / part["source"]).read_bytes()
            zf.writestr(f"epub/{part['href']}", data, compress_type=zipfile.ZIP_DEFLATED)
    return path
