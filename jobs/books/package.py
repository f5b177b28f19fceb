"""EPUB package: META-INF/container.xml → OPF → metadata, manifest, spine, nav/NCX and cover."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from jobs.books.archive import SafeArchive, join_href
from jobs.books.model import BookMetadata
from jobs.books.xmlsafe import XmlError, local_name, parse_xml
from jobs.errors import BookError

CONTAINER = "META-INF/container.xml"
CONTENT_TYPES = ("application/xhtml+xml", "text/html", "application/xml", "text/x-oeb1-document")


@dataclass
class ManifestItem:
    id: str
    href: str  # archive path
    media_type: str
    properties: set[str] = field(default_factory=set)


@dataclass
class SpineItem:
    href: str
    linear: bool
    media_type: str


@dataclass
class Package:
    opf_path: str
    version: str
    metadata: BookMetadata
    manifest: dict[str, ManifestItem]
    spine: list[SpineItem]
    nav_href: str | None
    ncx_href: str | None
    guide: list[tuple[str, str]]  # (type, archive href with fragment)


def find_opf(archive: SafeArchive, lenient: bool, warn: Callable[[str], None]) -> str:
    """The OPF path named by container.xml; optionally the archive's single .opf when the container is missing."""
    if archive.exists(CONTAINER):
        try:
            root = parse_xml(archive.read(CONTAINER), CONTAINER)
        except XmlError as exc:
            raise BookError(archive.path, str(exc), "the EPUB is damaged; repair it with an EPUB editor") from exc
        for rootfile in root.iter("{*}rootfile"):
            full_path = rootfile.get("full-path") or ""
            media = rootfile.get("media-type") or "application/oebps-package+xml"
            if full_path and media == "application/oebps-package+xml":
                if not archive.exists(full_path):
                    raise BookError(archive.path, f"{CONTAINER} names {full_path!r}, which is not in the archive")
                return archive.resolve(full_path) or full_path
        raise BookError(archive.path, f"{CONTAINER} names no OPF package document (rootfile)")
    opfs = sorted(n for n in archive.names() if n.lower().endswith(".opf"))
    found = f"; the archive holds {opfs[0]!r}" if len(opfs) == 1 else ""
    if not lenient or len(opfs) != 1:
        raise BookError(
            archive.path,
            f"{CONTAINER} is missing, so the book's package document (OPF) is unknown{found}",
            "repair the EPUB (e.g. re-save it with Calibre or Sigil)"
            + (", or run again with --lenient to use that OPF" if len(opfs) == 1 else ""),
        )
    warn(f"{CONTAINER} is missing; using the only package document in the archive, {opfs[0]!r}")
    return opfs[0]


def _text(el) -> str:  # type: ignore[no-untyped-def]
    return " ".join("".join(el.itertext()).split()) if el is not None else ""


def _metadata(root, manifest: dict[str, ManifestItem], archive: SafeArchive, warn) -> BookMetadata:  # type: ignore[no-untyped-def]
    md = root.find("{*}metadata")
    if md is None:
        md = root
    titles = [_text(e) for e in md.iter("{*}title") if _text(e)]
    creators = [_text(e) for e in md.iter("{*}creator") if _text(e)]
    languages = [_text(e) for e in md.iter("{*}language") if _text(e)]
    uid = root.get("unique-identifier")
    ids = list(md.iter("{*}identifier"))
    ident = next((_text(e) for e in ids if uid and e.get("id") == uid), None) or (_text(ids[0]) if ids else None)
    cover = next((i for i in manifest.values() if "cover-image" in i.properties), None)
    if cover is None:  # EPUB 2: <meta name="cover" content="manifest-id"/>
        meta = next((m for m in md.iter("{*}meta") if m.get("name") == "cover"), None)
        if meta is not None:
            cover = manifest.get(meta.get("content") or "")
    cover_bytes = None
    if cover is not None and cover.media_type.startswith("image/"):
        if archive.exists(cover.href):
            cover_bytes = archive.read(cover.href)
        else:
            warn(f"cover image {cover.href!r} is listed in the OPF but missing from the archive")
    return BookMetadata(
        title=titles[0] if titles else archive.path.stem,
        author=", ".join(creators) if creators else "Unknown",
        language=languages[0] if languages else "en",
        cover=cover_bytes,
        cover_mime=cover.media_type if cover_bytes is not None and cover is not None else None,
        identifier=ident,
    )


def _manifest(root, opf_path: str, warn) -> dict[str, ManifestItem]:  # type: ignore[no-untyped-def]
    items: dict[str, ManifestItem] = {}
    for el in root.iter("{*}item"):
        href = join_href(opf_path, el.get("href") or "")
        if href is None:
            warn(f"manifest item {el.get('href')!r} points outside the archive; ignored")
            continue
        item_id = el.get("id") or href
        props = set((el.get("properties") or "").split())
        items[item_id] = ManifestItem(item_id, href, (el.get("media-type") or "").lower(), props)
    return items


def read_package(archive: SafeArchive, opf_path: str, warn: Callable[[str], None]) -> Package:
    try:
        root = parse_xml(archive.read(opf_path), opf_path)
    except XmlError as exc:
        raise BookError(archive.path, str(exc), "the EPUB is damaged; repair it with an EPUB editor") from exc
    if local_name(root) != "package":
        raise BookError(archive.path, f"{opf_path} is not an OPF package document")
    manifest = _manifest(root, opf_path, warn)
    spine_el = root.find("{*}spine")
    spine: list[SpineItem] = []
    for ref in spine_el.iter("{*}itemref") if spine_el is not None else []:
        item = manifest.get(ref.get("idref") or "")
        if item is None:
            warn(f"spine item {ref.get('idref')!r} is not in the manifest; skipped")
            continue
        if item.media_type not in CONTENT_TYPES and not item.href.lower().endswith((".xhtml", ".html", ".htm")):
            warn(f"spine item {item.href!r} has media type {item.media_type!r}, not a text document; skipped")
            continue
        spine.append(SpineItem(item.href, (ref.get("linear") or "yes").lower() != "no", item.media_type))
    if not spine:
        raise BookError(archive.path, f"{opf_path} lists no readable documents in its spine")
    nav = next((i.href for i in manifest.values() if "nav" in i.properties), None)
    ncx_id = spine_el.get("toc") if spine_el is not None else None
    ncx_item = manifest.get(ncx_id or "") or next(
        (i for i in manifest.values() if i.media_type == "application/x-dtbncx+xml"), None
    )
    guide = []
    for ref in root.iter("{*}reference"):
        href = join_href(opf_path, ref.get("href") or "")
        if href:
            frag = (ref.get("href") or "").partition("#")[2]
            guide.append(((ref.get("type") or "").lower(), href + (f"#{frag}" if frag else "")))
    return Package(
        opf_path=opf_path,
        version=root.get("version") or "",
        metadata=_metadata(root, manifest, archive, warn),
        manifest=manifest,
        spine=spine,
        nav_href=nav,
        ncx_href=ncx_item.href if ncx_item is not None else None,
        guide=guide,
    )
