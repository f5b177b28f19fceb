"""EPUB 2/3 → chapters in spine order, cut at the table of contents' targets.

Mapping rule: a chapter starts at each chapter-starting TOC entry's position (a spine file, or an element
with the entry's #anchor inside it) and runs until the next chapter start in spine order, across file
boundaries. So one file can hold several chapters and one chapter can span several files. Text before the
first TOC position (a cover or title page outside the TOC) becomes chapters of its own, one per file.
A linear file without a TOC entry continues the chapter before it, unless it is itself front/back matter.
Non-linear spine items (linear="no") are never merged into the reading flow: each is its own chapter.

Which entries start chapters (``ReadOptions.toc_depth``): by default the top-level entries, and deeper
entries pointing at a different file than their parent (part → chapter files). Deeper entries that point
into their parent's file (the numbered sections of a poem) stay inside that chapter as its headings.
Every entry is kept, in order, in ``Book.toc`` with the chapter it falls in.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from jobs.books.archive import SafeArchive, join_href
from jobs.books.classify import judge, matter_kind
from jobs.books.model import Block, BookMetadata, Chapter, MissingPart, ReadOptions, TocEntry
from jobs.books.package import Package, find_opf, read_package
from jobs.books.toc import read_nav, read_ncx
from jobs.books.xhtml import Anchor, ContentDoc, NoteRef, extract
from jobs.books.xmlsafe import XmlError, parse_xhtml, parse_xml
from jobs.errors import BookError


@dataclass
class _Draft:
    """A chapter being assembled."""

    title: str
    href: str
    anchor: str | None
    types: frozenset[str] = frozenset()
    from_toc: bool = False
    linear: bool = True
    missing: str | None = None
    blocks: list[Block] = field(default_factory=list)
    noterefs: list[tuple[str, str]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    toc_ids: list[int] = field(default_factory=list)
    pending_marks: list[int] = field(default_factory=list)  # TOC entries that start at the next block

    def add(self, block: Block) -> None:
        if self.pending_marks:
            block = dataclasses.replace(block, marks=block.marks + tuple(self.pending_marks))
            self.pending_marks.clear()
        self.blocks.append(block)


def _split(href: str) -> tuple[str, str | None]:
    path, _, frag = href.partition("#")
    return path, (frag or None)


def _chapter_starts(toc: list[TocEntry], spine_files: set[str], depth: int | None) -> list[bool]:
    """Which TOC entries start a chapter (see module docstring)."""
    starts: list[bool] = []
    parent_file: dict[int, str] = {}  # depth → file of the latest entry at that depth
    for entry in toc:
        path, _ = _split(entry.href)
        parent_file[entry.depth] = path
        if path not in spine_files:
            starts.append(False)
        elif depth is not None:
            starts.append(entry.depth < depth)
        else:
            parent = parent_file.get(entry.depth - 1)
            starts.append(entry.depth == 0 or parent != path)
    return starts


class _EpubReader:
    def __init__(self, path: Path, options: ReadOptions, warnings: list[str], missing: list[MissingPart]) -> None:
        self.path = path
        self.options = options
        self.warnings = warnings
        self.missing = missing
        self.archive = SafeArchive(
            path,
            max_uncompressed_bytes=options.max_uncompressed_bytes,
            max_compression_ratio=options.max_compression_ratio,
            max_text_bytes=options.max_text_bytes,
        )
        self.docs: dict[str, ContentDoc | None] = {}

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def _load(self, href: str, wanted: set[str]) -> ContentDoc | None:
        if href in self.docs:
            return self.docs[href]
        doc = None
        if self.archive.exists(href):
            try:
                root = parse_xhtml(self.archive.read(href), href, self.warn)
                doc = extract(root, wanted, self.options.image_alt)
            except XmlError as exc:
                self.warn(f"{exc}; its text is skipped")
        self.docs[href] = doc
        return doc

    def read(self) -> tuple[BookMetadata, list[Chapter], list[TocEntry]]:
        try:
            pkg = read_package(self.archive, find_opf(self.archive, self.options.lenient, self.warn), self.warn)
            self.archive.check_drm({i.href for i in pkg.manifest.values()}, parse_xml)
            toc = self._toc(pkg)
            drafts, toc = self._assemble(pkg, toc)
            self._check_missing()
            chapters: list[Chapter] = []
            for i, draft in enumerate(drafts):
                number = 1 + sum(c.kind == "body" for c in chapters)  # "Chapter N" counts body chapters only
                chapters.append(self._finish(i, draft, number, pkg.metadata))
            return pkg.metadata, chapters, toc
        finally:
            self.archive.close()

    def _toc(self, pkg: Package) -> list[TocEntry]:
        toc = read_nav(self.archive, pkg.nav_href, self.warn) if pkg.nav_href else []
        if not toc and pkg.ncx_href:
            toc = read_ncx(self.archive, pkg.ncx_href, self.warn)
        if not toc:
            self.warn("the book has no table of contents; one chapter per spine document")
        return toc

    def _assemble(self, pkg: Package, toc: list[TocEntry]) -> tuple[list[_Draft], list[TocEntry]]:
        spine_files = {s.href for s in pkg.spine}
        starts = _chapter_starts(toc, spine_files, self.options.toc_depth)
        for entry in toc:
            if _split(entry.href)[0] not in spine_files:
                self.warn(f"TOC entry {entry.label!r} points at {entry.href!r}, which is not in the spine")
        flow = _Flow(toc, starts)
        for item in pkg.spine:
            ids = flow.by_file.get(item.href, [])
            doc = self._load(item.href, {f for i in ids if (f := _split(toc[i].href)[1])})
            if doc is None:
                reason = "missing file" if not self.archive.exists(item.href) else "unreadable file"
                if reason == "missing file":
                    self.warn(f"{item.href!r} is listed in the OPF but missing from the archive; chapter skipped")
                title = next((toc[i].label for i in ids), "")
                self.missing.append(MissingPart(item.href, title, reason))
                flow.missing_file(item.href, reason)
                continue
            for i in ids:
                frag = _split(toc[i].href)[1]
                if frag and frag not in doc.anchors_found:
                    self.warn(f"TOC target {toc[i].href!r} not found in the file; using the start of the file")
            flow.add_file(item.href, item.linear, doc)
        return flow.drafts, flow.finish_toc()

    def _check_missing(self) -> None:
        """A book with unreadable parts stops here unless the user chose to go on without them."""
        if not self.missing or self.options.allow_missing:
            return
        parts = "; ".join(m.describe() for m in self.missing)
        raise BookError(
            self.path,
            f"{len(self.missing)} part(s) of the book cannot be read, so the audiobook would have a hole: {parts}",
            "repair or download the EPUB again, or run again with --allow-missing to render the rest: "
            "the export report then fails coverage and names what is missing",
        )

    def _notes(self, draft: _Draft) -> list[Block]:
        blocks: list[Block] = []
        seen: set[tuple[str, str]] = set()
        for ref in draft.noterefs:
            if ref in seen:
                continue
            seen.add(ref)
            doc = self._load(ref[0], set())
            if doc is not None and ref[1] in doc.notes:
                blocks.extend(doc.notes[ref[1]])
        return blocks

    def _finish(self, index: int, d: _Draft, number: int, meta: BookMetadata) -> Chapter:
        blocks = _tidy_breaks(d.blocks)
        first_heading = next((b.text for b in blocks if b.kind == "heading"), "")
        title = d.title or first_heading.replace("\n", " ") or f"Chapter {number}"
        if d.from_toc and blocks and blocks[0].kind != "heading":
            blocks.insert(0, Block("heading", title, synthetic=True))
        if self.options.notes_at_chapter_end:
            blocks.extend(self._notes(d))
        texts = [b.text for b in blocks if not b.synthetic and b.text]
        verdict = judge(d.types, d.title, d.href, texts, meta.title, meta.author)
        kind, why = verdict.kind, verdict.why
        included = (kind == "front" and self.options.include_front) or (kind == "back" and self.options.include_back)
        skipped, reason = False, None
        if d.missing:
            skipped, reason, why = True, d.missing, f"{d.missing}: the part cannot be read"
        elif not d.linear and not self.options.include_nonlinear:
            skipped, reason, why = True, "non-linear", "non-linear (linear=\"no\" in the spine): not read by default"
        elif not verdict.read and not included:
            skipped, reason = True, f"{'back' if kind == 'back' else 'front'} matter: {verdict.name}"
        elif not texts:
            skipped, reason, why = True, "no text", "no text"
        elif not verdict.read:
            why = f"{why}; read because of --include-{kind}"
        return Chapter(
            index=index, title=title, href=d.href, anchor=d.anchor, blocks=blocks, skipped=skipped,
            skip_reason=reason, kind=kind, files=d.files or [d.href], why=why,
        )  # fmt: skip


def _kind(draft: _Draft) -> str:
    return matter_kind(draft.types, draft.title, draft.href)[0]


def _tidy_breaks(blocks: list[Block]) -> list[Block]:
    """Drop scene breaks at a chapter's edges and collapse runs of them: they only matter between text."""
    out: list[Block] = []
    for block in blocks:
        if block.kind == "scene_break" and (not out or out[-1].kind == "scene_break"):
            continue
        out.append(block)
    while out and out[-1].kind == "scene_break":
        out.pop()
    return out


def read_epub(
    path: Path, options: ReadOptions, warnings: list[str], missing: list[MissingPart] | None = None
) -> tuple[BookMetadata, list[Chapter], list[TocEntry]]:
    """Read an EPUB; unreadable spine documents are appended to ``missing`` (see ReadOptions.allow_missing)."""
    return _EpubReader(path, options, warnings, [] if missing is None else missing).read()


class _Flow:
    """Cuts the spine's item streams into chapter drafts at the chapter-starting TOC positions."""

    def __init__(self, toc: list[TocEntry], starts: list[bool]) -> None:
        self.toc = toc
        self.starts = starts
        self.by_file: dict[str, list[int]] = {}
        for i, entry in enumerate(toc):
            self.by_file.setdefault(_split(entry.href)[0], []).append(i)
        self.drafts: list[_Draft] = []
        self.entry_chapter: dict[int, int] = {}
        self.current: _Draft | None = None  # the linear chapter that unlisted linear text continues

    def _new(self, i: int | None, href: str, anchor: str | None, types: frozenset[str], linear: bool) -> _Draft:
        label = self.toc[i].label if i is not None else ""
        draft = _Draft(label, href, anchor, types, from_toc=i is not None, linear=linear, files=[href])
        self.drafts.append(draft)
        if i is not None:
            self.entry_chapter[i] = len(self.drafts) - 1
            draft.pending_marks.append(i)
        if linear:
            self.current = draft
        return draft

    def missing_file(self, href: str, reason: str) -> None:
        titled = [i for i in self.by_file.get(href, []) if self.starts[i]]
        for i in titled or [None]:  # type: ignore[list-item]
            self._new(i, href, None, frozenset(), True).missing = reason
        self.current = None  # text after a missing chapter must not vanish into a skipped one

    def add_file(self, href: str, linear: bool, doc: ContentDoc) -> None:
        ids = self.by_file.get(href, [])
        at_start = [i for i in ids if (_split(self.toc[i].href)[1] or "") not in doc.anchors_found]
        anchored: dict[str, list[int]] = {}
        for i in ids:
            if i not in at_start:
                anchored.setdefault(_split(self.toc[i].href)[1] or "", []).append(i)
        target: _Draft | None = None
        for i in (i for i in at_start if self.starts[i]):
            target = self._new(i, href, None, doc.types, linear)
        # Text before the file's first chapter start continues the chapter before it when both are linear body
        # text; otherwise it gets its own (untitled) chapter. Both are decided lazily, at the first block, so a
        # file opening with a chapter anchor neither yields an empty chapter nor extends the one before.
        kind = matter_kind(doc.types, "", href)[0]
        current = self.current
        can_continue = (
            any(self.starts)  # without a usable TOC every spine document is a chapter
            and linear
            and current is not None
            and current.linear
            and kind == "body" == _kind(current)
        )
        file_marks = [i for i in at_start if not self.starts[i]]  # entries at the file's start inside a chapter
        for i in at_start:
            if target is not None:
                self.entry_chapter.setdefault(i, self.drafts.index(target))
        if target is not None:
            target.pending_marks += [i for i in file_marks if i not in target.pending_marks]
            file_marks = []
        for it in doc.items:
            if isinstance(it, Anchor):
                for i in anchored.get(it.id, []):
                    if self.starts[i]:
                        target = self._new(i, href, it.id, it.types, linear)
                    elif target is not None:
                        self.entry_chapter.setdefault(i, self.drafts.index(target))
                        target.pending_marks.append(i)
                    else:
                        file_marks.append(i)
                continue
            if target is None:
                if can_continue and current is not None:
                    target = current
                    target.files.append(href)
                else:
                    target = self._new(None, href, None, doc.types, linear)
                for i in file_marks:
                    self.entry_chapter.setdefault(i, self.drafts.index(target))
                target.pending_marks += file_marks
                file_marks = []
            if isinstance(it, NoteRef):
                resolved = join_href(href, it.target) if it.target else None
                frag = it.target.partition("#")[2]
                if resolved and frag:
                    target.noterefs.append((resolved, frag))
            else:
                target.add(it)

    def finish_toc(self) -> list[TocEntry]:
        return [
            dataclasses.replace(e, chapter_index=self.entry_chapter.get(i), is_chapter=self.starts[i])
            for i, e in enumerate(self.toc)
        ]
