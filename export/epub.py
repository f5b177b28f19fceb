"""The source EPUB as the export stage needs it: OPF metadata for tags, spine and manifest for read-along.

The book was read and checked by the planner already; this reader is deliberately small. It still parses
without entities, DTDs or network access, and reads every entry in bounded pieces (a book changed on disk
since it was planned must not be able to blow up memory).
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from lxml import etree

from export.errors import ReadAlongError

CONTAINER = "META-INF/container.xml"
OPF_NS = "http://www.idpf.org/2007/opf"
DC_NS = "http://purl.org/dc/elements/1.1/"
#: An entry larger than this is not a text file of a real book (the planner's limits are far stricter).
MAX_ENTRY_BYTES = 64 * 1024 * 1024
_YEAR = re.compile(r"\b(\d{4})\b")


def safe_parser(recover: bool = False) -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                           recover=recover)


def read_entry(zf: zipfile.ZipFile, name: str, limit: int = MAX_ENTRY_BYTES) -> bytes:
    """An entry's bytes, read in pieces and refused past ``limit`` whatever its header claims."""
    chunks, total = [], 0
    with zf.open(name) as f:
        while piece := f.read(1 << 20):
            total += len(piece)
            if total > limit:
                raise ReadAlongError(f"{name} in the EPUB is larger than {limit // (1 << 20)} MB; not a text file")
            chunks.append(piece)
    return b"".join(chunks)


@dataclass(frozen=True)
class ManifestEntry:
    id: str
    path: str  # archive path
    media_type: str
    element: etree._Element = field(compare=False, repr=False)


@dataclass
class Package:
    """The OPF: its archive path, parsed tree, manifest (by id) and spine (manifest ids, in order)."""

    opf_path: str
    root: etree._Element
    manifest: dict[str, ManifestEntry]
    spine: list[str]

    @property
    def version(self) -> str:
        return self.root.get("version") or ""

    @property
    def metadata(self) -> etree._Element:
        md = self.root.find(f"{{{OPF_NS}}}metadata")
        if md is None:
            raise ReadAlongError(f"{self.opf_path} has no <metadata>")
        return md

    def by_path(self) -> dict[str, ManifestEntry]:
        return {e.path: e for e in self.manifest.values()}


def resolve(base_file: str, href: str) -> str:
    """Archive path of ``href`` written inside ``base_file`` (fragment dropped)."""
    target = unquote(href.partition("#")[0])
    return posixpath.normpath(posixpath.join(posixpath.dirname(base_file), target)).lstrip("/")


def relative(from_file: str, to_path: str) -> str:
    """``to_path`` as an href written inside ``from_file`` (both archive paths)."""
    return posixpath.relpath(to_path, posixpath.dirname(from_file) or ".")


def opf_path(zf: zipfile.ZipFile) -> str:
    try:
        root = etree.fromstring(read_entry(zf, CONTAINER), parser=safe_parser())
    except (KeyError, etree.XMLSyntaxError) as exc:
        raise ReadAlongError(f"the EPUB's {CONTAINER} is missing or damaged ({exc})") from exc
    for rootfile in root.iter("{*}rootfile"):
        if rootfile.get("full-path"):
            return str(rootfile.get("full-path"))
    raise ReadAlongError(f"the EPUB's {CONTAINER} names no package document")


def read_package(zf: zipfile.ZipFile) -> Package:
    path = opf_path(zf)
    try:
        root = etree.fromstring(read_entry(zf, path), parser=safe_parser())
    except (KeyError, etree.XMLSyntaxError) as exc:
        raise ReadAlongError(f"the EPUB's package document {path} is missing or damaged ({exc})") from exc
    manifest = {}
    for item in root.iter(f"{{{OPF_NS}}}item"):
        item_id, href = item.get("id"), item.get("href")
        if item_id and href:
            manifest[item_id] = ManifestEntry(item_id, resolve(path, href), item.get("media-type") or "", item)
    spine = [ref.get("idref") or "" for ref in root.iter(f"{{{OPF_NS}}}itemref")]
    return Package(path, root, manifest, [i for i in spine if i in manifest])


def _text(el: etree._Element | None) -> str:
    return " ".join("".join(el.itertext()).split()) if el is not None else ""


@dataclass(frozen=True)
class OpfMetadata:
    """What the tags take from the OPF beyond title/author/language (which the plan stores)."""

    year: str = ""
    description: str = ""
    publisher: str = ""


def opf_metadata(epub: Path) -> OpfMetadata:
    """Year (of dc:date), description and publisher of an EPUB; empty fields when it has none."""
    try:
        with zipfile.ZipFile(epub) as zf:
            md = read_package(zf).metadata
    except (OSError, zipfile.BadZipFile) as exc:
        raise ReadAlongError(f"cannot read {epub}: {exc}") from exc
    date = _text(md.find(f"{{{DC_NS}}}date"))
    year = _YEAR.search(date)
    return OpfMetadata(year.group(1) if year else "", _text(md.find(f"{{{DC_NS}}}description")),
                       _text(md.find(f"{{{DC_NS}}}publisher")))
