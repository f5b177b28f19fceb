"""Read-along EPUB: the original book plus chapter audio and EPUB 3 Media Overlays (one SMIL per document).

Every spine document that holds rendered text gets a SMIL file whose ``<par>`` elements pair a sentence
(an id'd span inserted around it, see :mod:`export.textmap`) with its interval in the chapter's MP3. The
package document lists the audio and SMIL files, points each document at its overlay and gives the
durations. Everything else (styles, images, fonts, the text itself, documents with nothing rendered:
chapters not selected, skipped front/back matter, foot- and endnotes that were not read) is copied as is.
"""

from __future__ import annotations

import hashlib
import shutil
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from export.assemble import ChunkPlacement
from export.cues import Cue, chunk_cues
from export.epub import OPF_NS, Package, read_entry, read_package, relative, safe_parser
from export.errors import ReadAlongError
from export.textmap import Position, TextIndex, can_wrap, nest, text_key, wrap

SMIL_NS = "http://www.w3.org/ns/SMIL"
EPUB_OPS_NS = "http://www.idpf.org/2007/ops"
_XHTML = "application/xhtml+xml"
_SEARCH_SLACK = 3000  # key characters a sentence may lie past the previous one (skipped notes, captions)


@dataclass(frozen=True)
class ChapterStart:
    """Where a plan chapter begins: its spine document (archive path) and element id, if any."""

    number: int
    path: str
    anchor: str | None = None


@dataclass(frozen=True)
class ReadAlongSource:
    """The book to add media overlays to. ``starts``: every chapter of the plan in reading order (rendered
    or not: they bound where each chapter's text is looked for). ``sha256``: the planned file's hash."""

    epub: Path
    file_name: str
    starts: tuple[ChapterStart, ...]
    sha256: str | None = None
    narrator: str = ""


@dataclass(frozen=True)
class ReadAlongChapter:
    number: int
    audio: Path  # MP3
    placements: Sequence[ChunkPlacement]


@dataclass
class ReadAlongResult:
    path: Path
    sentences: int = 0  # cues synchronised
    unsynced: int = 0  # cues whose text was not found (or could not be wrapped)
    documents: int = 0  # documents with an overlay


@dataclass
class _Doc:
    path: str
    item_id: str
    index: TextIndex
    base: int  # offset of this document in the book's key


@dataclass
class _Unit:
    """One future <par>: cues of one chapter that share a span."""

    chapter: int
    doc: _Doc
    cues: list[Cue]
    begin: int
    end: int
    first: Position
    last: Position
    span_id: str = ""


@dataclass
class _Book:
    zf: zipfile.ZipFile
    package: Package
    docs: list[_Doc] = field(default_factory=list)

    def doc_at(self, offset: int) -> _Doc | None:
        for doc in reversed(self.docs):
            if doc.base <= offset:
                return doc
        return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while piece := f.read(1 << 20):
            digest.update(piece)
    return digest.hexdigest()


def _check_version(package: Package, epub: Path) -> None:
    if not package.version.startswith("3"):
        raise ReadAlongError(
            f"{epub.name} is an EPUB {package.version or '2'} book; media overlays need EPUB 3. Convert it "
            "(e.g. Calibre's 'Convert books' to EPUB 3, or Sigil) and render the converted file, or use "
            "--subtitles for text synchronised with the audio")


def check_source(epub: Path, sha256: str | None = None) -> None:
    """Refuse, before any work, a book the read-along EPUB cannot be made from (with what to do)."""
    if not epub.is_file():
        raise ReadAlongError(f"the read-along EPUB is made from the book file, and {epub} is gone")
    if sha256 and _sha256(epub) != sha256:
        raise ReadAlongError(f"{epub} changed since it was planned; render it again first "
                             "(unchanged chunks are kept), then export")
    try:
        with zipfile.ZipFile(epub) as zf:
            _check_version(read_package(zf), epub)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ReadAlongError(f"cannot read {epub}: {exc}") from exc


def _load(zf: zipfile.ZipFile, source: ReadAlongSource) -> _Book:
    package = read_package(zf)
    _check_version(package, source.epub)
    book, base = _Book(zf, package), 0
    for item_id in package.spine:
        item = package.manifest[item_id]
        if item.media_type != _XHTML or item.path not in zf.NameToInfo:
            continue
        try:
            root = etree.fromstring(read_entry(zf, item.path), parser=safe_parser())
        except etree.XMLSyntaxError:
            continue  # not well-formed: left as it is, its sentences unsynchronised
        index = TextIndex(root)
        book.docs.append(_Doc(item.path, item_id, index, base))
        base += len(index.key) + 1  # a separator, so no match runs across two documents
    return book


def _start_offset(book: _Book, start: ChapterStart) -> int | None:
    doc = next((d for d in book.docs if d.path == start.path), None)
    if doc is None:
        return None
    local = doc.index.element_start(start.anchor) if start.anchor else 0
    return doc.base + (local or 0)


def _locate(book: _Book, key: str, cursor: int, stop: int) -> tuple[_Doc, int, int] | None:
    doc = book.doc_at(cursor)
    while doc is not None and doc.base < stop:
        local_start = max(0, cursor - doc.base)
        local_stop = min(len(doc.index.key), stop - doc.base)
        found = doc.index.locate(key, local_start, local_stop) if local_start < local_stop else None
        if found is not None:
            return doc, found[0], found[1]
        following = [d for d in book.docs if d.base > doc.base]
        doc = following[0] if following else None
    return None


def _find_chunk(book: _Book, placement: ChunkPlacement, i: int, cursor: int, stop: int
                ) -> list[tuple[Cue, tuple[_Doc, int, int]]]:
    """A chunk's cues with their places: per sentence when every sentence is found in order, else the
    whole chunk as one cue (its sentences were split differently from the text), else nothing."""
    cues = chunk_cues(placement, i)
    if not cues:
        return []
    limit = min(stop, cursor + _SEARCH_SLACK + 3 * len(text_key(placement.text)))
    found: list[tuple[Cue, tuple[_Doc, int, int]]] = []
    for cue in cues:
        hit = _locate(book, text_key(cue.text), cursor, limit)
        if hit is None:
            break
        found.append((cue, hit))
        cursor = hit[0].base + hit[2]
    if len(found) == len(cues):
        return found
    whole = _locate(book, text_key(placement.text), cursor if not found else found[0][1][0].base + found[0][1][1],
                    limit)
    return [(Cue(placement.text, cues[0].start_s, cues[-1].end_s, i), whole)] if whole is not None else []


def _chapter_units(book: _Book, chapter: ReadAlongChapter, start: int, stop: int) -> tuple[list[_Unit], int]:
    """The chapter's located cues as units, searched in order from the chapter's start; and how many
    cues were not found."""
    units, unsynced, cursor = [], 0, start
    for i, placement in enumerate(chapter.placements):
        found = _find_chunk(book, placement, i, cursor, stop)
        if not found:
            unsynced += len(chunk_cues(placement, i))
        for cue, (doc, begin, end) in found:
            first, last = doc.index.positions(begin, end)
            units.append(_Unit(chapter.number, doc, [cue], begin, end, first, last))
            cursor = doc.base + end
    return units, unsynced


def _separate(units: list[_Unit]) -> list[_Unit]:
    """Same-text-node neighbours must not share characters (punctuation may have widened both)."""
    for prev, cur in zip(units, units[1:], strict=False):
        a, b = prev.last, cur.first
        if a.parent is b.parent and a.slot == b.slot and b.offset < a.offset:
            cur.first = Position(b.parent, b.slot, a.offset)
    return units


def _nested(units: list[_Unit]) -> tuple[list[_Unit], int]:
    """Make every unit well nested; merge units of one chapter whose widened ranges overlap."""
    out: list[_Unit] = []
    dropped = 0
    for unit in units:
        unit.first, unit.last, unit.begin, unit.end = nest(unit.doc.index, unit.first, unit.last, unit.begin,
                                                           unit.end)
        while out and out[-1].doc is unit.doc and unit.begin < out[-1].end:
            prev = out.pop()
            if prev.chapter != unit.chapter:  # two chapters' audio cannot share one span
                dropped += len(unit.cues)
                unit = prev
                break
            first, last, begin, end = nest(unit.doc.index, prev.first, unit.last, prev.begin, unit.end)
            unit = _Unit(unit.chapter, unit.doc, prev.cues + unit.cues, begin, end, first, last)
        out.append(unit)
    kept = [u for u in out if can_wrap(u.first, u.last)]
    return kept, dropped + sum(len(u.cues) for u in out) - sum(len(u.cues) for u in kept)


def _clock(seconds: float) -> str:
    ms = int(round(max(0.0, seconds) * 1000))
    return f"{ms // 3_600_000}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def _unique_id(taken: set[str], stem: str) -> str:
    n, candidate = 1, stem
    while candidate in taken:
        n += 1
        candidate = f"{stem}-{n}"
    taken.add(candidate)
    return candidate


def _smil(doc: _Doc, smil_path: str, units: list[_Unit], audio_paths: dict[int, str]) -> bytes:
    smil = etree.Element(f"{{{SMIL_NS}}}smil", nsmap={None: SMIL_NS, "epub": EPUB_OPS_NS}, version="3.0")
    body = etree.SubElement(smil, f"{{{SMIL_NS}}}body")
    seq = etree.SubElement(body, f"{{{SMIL_NS}}}seq", {f"{{{EPUB_OPS_NS}}}textref": relative(smil_path, doc.path)})
    seq.set("id", "seq1")
    for n, unit in enumerate(units, start=1):
        par = etree.SubElement(seq, f"{{{SMIL_NS}}}par", id=f"par{n}")
        etree.SubElement(par, f"{{{SMIL_NS}}}text", src=f"{relative(smil_path, doc.path)}#{unit.span_id}")
        etree.SubElement(par, f"{{{SMIL_NS}}}audio", src=relative(smil_path, audio_paths[unit.chapter]),
                         clipBegin=_clock(unit.cues[0].start_s), clipEnd=_clock(unit.cues[-1].end_s))
    return etree.tostring(smil, xml_declaration=True, encoding="utf-8", pretty_print=True)


def _free_folder(zf: zipfile.ZipFile, package: Package) -> str:
    base = package.opf_path.rpartition("/")[0]
    names = zf.namelist()
    n, folder = 1, "readalong"
    while any(name.startswith(f"{base}/{folder}/" if base else f"{folder}/") for name in names):
        n += 1
        folder = f"readalong{n}"
    return f"{base}/{folder}" if base else folder


def _update_package(package: Package, overlays: list[tuple[_Doc, str, float]], audio: dict[int, str],
                    narrator: str) -> bytes:
    root, md = package.root, package.metadata
    manifest = root.find(f"{{{OPF_NS}}}manifest")
    assert manifest is not None
    taken = set(package.manifest) | {el.get("id") for el in root.iter() if el.get("id")}
    for number, path in sorted(audio.items()):
        etree.SubElement(manifest, f"{{{OPF_NS}}}item", id=_unique_id(taken, f"readalong-audio-{number}"),
                         href=relative(package.opf_path, path), attrib={"media-type": "audio/mpeg"})
    total = 0.0
    for doc, smil_path, duration in overlays:
        smil_id = _unique_id(taken, f"readalong-mo-{doc.item_id}")
        etree.SubElement(manifest, f"{{{OPF_NS}}}item", id=smil_id, href=relative(package.opf_path, smil_path),
                         attrib={"media-type": "application/smil+xml"})
        package.manifest[doc.item_id].element.set("media-overlay", smil_id)
        etree.SubElement(md, f"{{{OPF_NS}}}meta", property="media:duration", refines=f"#{smil_id}").text = \
            _clock(duration)
        total += round(duration, 3)
    etree.SubElement(md, f"{{{OPF_NS}}}meta", property="media:duration").text = _clock(total)
    if narrator:
        etree.SubElement(md, f"{{{OPF_NS}}}meta", property="media:narrator").text = narrator
    modified = next((m for m in md.iter(f"{{{OPF_NS}}}meta") if m.get("property") == "dcterms:modified"), None)
    if modified is None:
        modified = etree.SubElement(md, f"{{{OPF_NS}}}meta", property="dcterms:modified")
    modified.text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="utf-8")


def _write_zip(zf: zipfile.ZipFile, out: Path, replaced: dict[str, bytes], added: dict[str, bytes | Path]) -> None:
    tmp = out.with_name(out.name + ".part")
    with zipfile.ZipFile(tmp, "w") as zout:
        zout.writestr(zipfile.ZipInfo("mimetype", (2020, 1, 1, 0, 0, 0)), b"application/epub+zip",
                      compress_type=zipfile.ZIP_STORED)
        for info in zf.infolist():
            if info.filename == "mimetype" or info.is_dir():
                continue
            if info.filename in replaced:
                zout.writestr(info, replaced[info.filename], compress_type=zipfile.ZIP_DEFLATED)
                continue
            with zf.open(info) as src, zout.open(info, "w") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        for name, content in added.items():
            info = zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0))
            if isinstance(content, Path):
                info.compress_type = zipfile.ZIP_STORED  # MP3 does not compress
                with open(content, "rb") as src, zout.open(info, "w", force_zip64=True) as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            else:
                zout.writestr(info, content, compress_type=zipfile.ZIP_DEFLATED)
    tmp.replace(out)


def write_read_along(source: ReadAlongSource, chapters: Sequence[ReadAlongChapter], out_dir: Path) -> ReadAlongResult:
    """Write ``out_dir / source.file_name``: the book with its rendered chapters' audio and media overlays."""
    check_source(source.epub, source.sha256)
    result = ReadAlongResult(Path(out_dir) / source.file_name)
    with zipfile.ZipFile(source.epub) as zf:
        book = _load(zf, source)
        units = _all_units(book, source, chapters, result)
        folder = _free_folder(zf, book.package)
        audio = {ch.number: f"{folder}/audio-{ch.number:03d}.mp3" for ch in chapters}
        replaced: dict[str, bytes] = {}
        added: dict[str, bytes | Path] = {audio[ch.number]: ch.audio for ch in chapters}
        overlays = []
        for doc in book.docs:
            mine = [u for u in units if u.doc is doc]
            if not mine:
                continue
            for n, unit in reversed(list(enumerate(mine, start=1))):  # last first: earlier positions stay valid
                unit.span_id = _unique_id(doc.index.ids, f"ra{unit.chapter}-{n}")
                wrap(unit.first, unit.last, unit.span_id)
            replaced[doc.path] = etree.tostring(doc.index.root.getroottree(), xml_declaration=True,
                                                encoding="utf-8")
            smil_path = f"{folder}/{doc.path.rpartition('/')[2].rpartition('.')[0] or doc.item_id}.smil"
            while smil_path in added:
                smil_path = smil_path[:-5] + "-2.smil"
            added[smil_path] = _smil(doc, smil_path, mine, audio)
            overlays.append((doc, smil_path, sum(u.cues[-1].end_s - u.cues[0].start_s for u in mine)))
        result.documents = len(overlays)
        if overlays:
            replaced[book.package.opf_path] = _update_package(book.package, overlays, audio, source.narrator)
        else:
            added.clear()  # nothing to synchronise: the book unchanged is a valid (if plain) result
        _write_zip(zf, result.path, replaced, added)
    return result


def _all_units(book: _Book, source: ReadAlongSource, chapters: Sequence[ReadAlongChapter],
               result: ReadAlongResult) -> list[_Unit]:
    offsets = {s.number: _start_offset(book, s) for s in source.starts}
    order = [s.number for s in source.starts]
    units: list[_Unit] = []
    for chapter in chapters:
        start = offsets.get(chapter.number)
        if start is None or not book.docs:
            result.unsynced += sum(len(chunk_cues(p, i)) for i, p in enumerate(chapter.placements))
            continue
        later = [offsets.get(n) for n in order[order.index(chapter.number) + 1:]]
        stop = min((o for o in later if o is not None and o > start), default=book.docs[-1].base + 10**9)
        found, missed = _chapter_units(book, chapter, start, stop)
        units += found
        result.unsynced += missed
    units.sort(key=lambda u: (u.doc.base, u.begin))
    kept: list[_Unit] = []
    for doc in book.docs:
        mine, dropped = _nested(_separate([u for u in units if u.doc is doc]))
        kept += mine
        result.unsynced += dropped
    result.sentences = sum(len(u.cues) for u in kept)
    return kept
