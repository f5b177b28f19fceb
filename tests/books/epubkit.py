"""Build small synthetic EPUBs with zipfile for the reader's tests."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

CONTAINER = """<?xml version="1.0"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
  <rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles>
</container>"""


def xhtml(body: str, title: str = "t", body_type: str = "") -> str:
    attr = f' epub:type="{body_type}"' if body_type else ""
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">'
        f"<head><title>{title}</title><style>p {{ color: red }}</style></head><body{attr}>{body}</body></html>"
    )


@dataclass
class Doc:
    name: str  # file name under OEBPS/text/
    body: str
    body_type: str = ""
    linear: bool = True
    in_spine: bool = True


@dataclass
class EpubSpec:
    docs: list[Doc]
    toc: list[tuple[int, str, str]] = field(default_factory=list)  # (depth, label, href relative to OEBPS/)
    ncx: bool = False  # EPUB 2: NCX instead of a nav document
    title: str = "Synthetic Book"
    author: str = "A. Writer"
    language: str = "en"
    cover: bytes | None = None
    extra: dict[str, bytes] = field(default_factory=dict)  # more archive entries
    drop: set[str] = field(default_factory=set)  # archive entries to leave out


def _nav(toc: list[tuple[int, str, str]]) -> str:
    out, depth = ["<ol>"], 0
    for i, (d, label, href) in enumerate(toc):
        while depth < d:
            out.append("<ol>")
            depth += 1
        while depth > d:
            out.append("</li></ol>")
            depth -= 1
        if i and toc[i - 1][0] >= d:
            out.append("</li>")
        out.append(f'<li><a href="{href}">{label}</a>')
    while depth > 0:
        out.append("</li></ol>")
        depth -= 1
    out.append("</li></ol>" if toc else "</ol>")
    return xhtml(f'<nav epub:type="toc">{"".join(out)}</nav>', "Contents")


def _ncx(toc: list[tuple[int, str, str]]) -> str:
    parts, depth = [], -1
    for n, (d, label, href) in enumerate(toc):
        while depth >= d:
            parts.append("</navPoint>")
            depth -= 1
        parts.append(f'<navPoint id="p{n}" playOrder="{n + 1}"><navLabel><text>{label}</text></navLabel>')
        parts.append(f'<content src="{href}"/>')
        depth = d
    parts.extend("</navPoint>" for _ in range(depth + 1))
    return (
        '<?xml version="1.0"?><ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" version="2005-1">'
        f"<head/><docTitle><text>x</text></docTitle><navMap>{''.join(parts)}</navMap></ncx>"
    )


def _opf(spec: EpubSpec) -> str:
    items, refs = [], []
    for i, doc in enumerate(spec.docs):
        items.append(f'<item id="d{i}" href="text/{doc.name}" media-type="application/xhtml+xml"/>')
        if doc.in_spine:
            linear = "" if doc.linear else ' linear="no"'
            refs.append(f'<itemref idref="d{i}"{linear}/>')
    meta = ""
    if spec.ncx:
        items.append('<item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>')
    else:
        items.append('<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>')
    if spec.cover is not None:
        props = "" if spec.ncx else ' properties="cover-image"'
        items.append(f'<item id="cov" href="images/cover.png" media-type="image/png"{props}/>')
        meta = '<meta name="cover" content="cov"/>' if spec.ncx else ""
    version = "2.0" if spec.ncx else "3.0"
    spine_toc = ' toc="ncx"' if spec.ncx else ""
    return (
        f'<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="{version}" '
        'unique-identifier="uid"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f'<dc:identifier id="uid">urn:test:1</dc:identifier><dc:title>{spec.title}</dc:title>'
        f"<dc:creator>{spec.author}</dc:creator><dc:language>{spec.language}</dc:language>{meta}</metadata>"
        f"<manifest>{''.join(items)}</manifest><spine{spine_toc}>{''.join(refs)}</spine>"
        "</package>"
    )


def build_epub(path: Path, spec: EpubSpec) -> Path:
    entries: dict[str, bytes] = {
        "META-INF/container.xml": CONTAINER.encode(),
        "OEBPS/content.opf": _opf(spec).encode(),
    }
    entries["OEBPS/toc.ncx" if spec.ncx else "OEBPS/nav.xhtml"] = (_ncx if spec.ncx else _nav)(spec.toc).encode()
    for doc in spec.docs:
        entries[f"OEBPS/text/{doc.name}"] = xhtml(doc.body, doc.name, doc.body_type).encode()
    if spec.cover is not None:
        entries["OEBPS/images/cover.png"] = spec.cover
    entries.update(spec.extra)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), b"application/epub+zip")
        for name, data in entries.items():
            if name not in spec.drop:
                zf.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    return path
