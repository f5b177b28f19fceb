"""The real-world corpus (../shared/corpus): every TOC entry in order, every word read once, clear errors.

The expected text is computed here independently of the reader: the words of each spine file's <body>
(lxml ``itertext``), leaving out only note references and note bodies, compared as a multiset with the
words of the chapters that cover that file.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections import Counter
from functools import cache
from pathlib import Path

import pytest
from lxml import etree
from lxml import html as lxml_html

from jobs.books import Book, BookError, ReadOptions, read_book
from tests.paths import shared_dir

CORPUS = shared_dir() / "corpus"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text()) if CORPUS.is_dir() else []
WELL_FORMED = [b for b in MANIFEST if not b.get("malformed")]
WORD = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z0-9]+)*")
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
EPUB_TYPE = "{http://www.idpf.org/2007/ops}type"
NOTE_TYPES = {"noteref", "footnote", "endnote", "rearnote"}

pytestmark = pytest.mark.skipif(not MANIFEST, reason=f"corpus not found at {CORPUS}")


@cache
def _read(name: str, everything: bool = False) -> Book:
    options = ReadOptions(include_front=True, include_back=True) if everything else ReadOptions()
    return read_book(CORPUS / name, options)


def _source_tokens(epub: Path, href: str) -> Counter[str]:
    """Words (Latin) and Han characters of a file's <body>, without note references and note bodies."""
    data = zipfile.ZipFile(epub).read(href)
    try:
        root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        root = lxml_html.document_fromstring(data)
    body = next(el for el in root.iter() if isinstance(el.tag, str) and el.tag.split("}")[-1] == "body")
    for el in list(body.iter()):
        if _is_note(el):
            _drop(el)
    text = "".join(body.itertext())
    return Counter(WORD.findall(text)) + Counter(CJK.findall(text))


def _is_note(el: etree._Element) -> bool:
    """Standard Ebooks: epub:type noteref / endnotes list items; CUNY (EPUB 2): <a><sup>N</sup></a> references
    and the paragraphs of <div class="footnotes">."""
    tag = el.tag.split("}")[-1]
    types = set((el.get(EPUB_TYPE) or el.get("epub:type") or "").split())
    in_endnotes = tag == "li" and el.getparent().getparent().get(EPUB_TYPE) == "endnotes"
    sup_ref = tag == "a" and len(el) == 1 and el[0].tag.split("}")[-1] == "sup"
    in_footnotes = el.getparent() is not None and el.getparent().get("class") == "footnotes"
    return bool(types & NOTE_TYPES) or in_endnotes or sup_ref or in_footnotes


def _drop(el: etree._Element) -> None:
    """Remove an element but keep the text that follows it."""
    parent, prev = el.getparent(), el.getprevious()
    if prev is not None:
        prev.tail = (prev.tail or "") + (el.tail or "")
    else:
        parent.text = (parent.text or "") + (el.tail or "")
    parent.remove(el)


def _chapter_tokens(blocks) -> Counter[str]:  # type: ignore[no-untyped-def]
    text = " ".join(b.text for b in blocks if not b.synthetic)
    return Counter(WORD.findall(text)) + Counter(CJK.findall(text))


@pytest.mark.parametrize("entry", WELL_FORMED, ids=lambda b: b["file"])
def test_toc_is_read_in_order(entry: dict) -> None:
    book = _read(entry["file"])
    expected = [(t["depth"], t["label"], t["href"]) for t in entry["toc"]]
    assert [(e.depth, e.label, e.href) for e in book.toc] == expected
    # Every chapter-starting entry is a chapter with that title, href and anchor, in TOC order.
    starts = [e for e in book.toc if e.is_chapter]
    assert [e.depth for e in starts] == [0] * len(starts)  # in this corpus nested entries are sections
    assert len(starts) == len([t for t in entry["toc"] if t["depth"] == 0])
    indices = [e.chapter_index for e in starts]
    assert None not in indices and indices == sorted(i for i in indices if i is not None)
    for e in starts:
        assert e.chapter_index is not None
        chapter = book.chapters[e.chapter_index]
        path, _, frag = e.href.partition("#")
        assert (chapter.title, chapter.href, chapter.anchor) == (e.label, path, frag or None)
    # Deeper entries (poem sections) land inside their parent's chapter.
    parent = None
    for e in book.toc:
        if e.is_chapter:
            parent = e
        else:
            assert parent is not None and e.chapter_index == parent.chapter_index
    # Chapters not named by the TOC are front matter (e.g. a title page outside the TOC).
    listed = {e.chapter_index for e in starts}
    assert all(c.kind == "front" and c.skipped for c in book.chapters if c.index not in listed)
    assert entry["title"] == book.metadata.title and entry["creator"] == book.metadata.author
    assert entry["language"] == book.metadata.language
    assert book.warnings == [] or entry["file"].startswith("epub2-cuny")  # copyright.html is not well-formed


@pytest.mark.parametrize("entry", WELL_FORMED, ids=lambda b: b["file"])
def test_no_text_lost_or_duplicated(entry: dict) -> None:
    """For every spine file, the chapters covering it hold exactly the file's words."""
    book = _read(entry["file"], everything=True)
    by_file: dict[str, Counter[str]] = {}
    for chapter in book.chapters:
        assert len(chapter.files) == 1  # no chapter of this corpus spans several files
        by_file[chapter.files[0]] = by_file.get(chapter.files[0], Counter()) + _chapter_tokens(chapter.blocks)
    epub = CORPUS / entry["file"]
    spine_files = {t["href"].partition("#")[0] for t in entry["toc"]}
    assert spine_files <= set(by_file)
    for href, got in by_file.items():
        expected = _source_tokens(epub, href)
        assert got == expected, f"{href}: missing {expected - got}, extra {got - expected}"


@pytest.mark.parametrize("entry", WELL_FORMED, ids=lambda b: b["file"])
def test_word_counts_match_the_manifest(entry: dict) -> None:
    book = _read(entry["file"], everything=True)
    text = " ".join(b.text for c in book.chapters for b in c.blocks if not b.synthetic)
    whole = entry["text_whole_spine"]
    if whole["cjk_chars"]:
        assert len(CJK.findall(text)) == whole["cjk_chars"]
    else:
        # The manifest's count includes note bodies, which are read only at chapter ends (read_notes).
        noted = read_book(CORPUS / entry["file"], ReadOptions(include_front=True, include_back=True, read_notes=True))
        text = " ".join(b.text for c in noted.chapters for b in c.blocks if not b.synthetic)
        assert abs(len(WORD.findall(text)) - whole["words"]) <= 0.001 * whole["words"]


def test_default_skips() -> None:
    jekyll = _read("se-stevenson-jekyll-and-hyde.epub")
    assert [c.skip_reason for c in jekyll.chapters if c.skipped] == [
        "front matter: titlepage",
        "front matter: imprint",
        "back matter: colophon",
        "back matter: copyright-page",
    ]
    assert len(jekyll.readable_chapters) == 10
    poe = _read("se-poe-poetry.epub")
    assert poe.chapters[-3].skip_reason == "back matter: endnotes"
    assert len(poe.readable_chapters) == 53
    # Noterefs are removed from the text: "Tamerlane1" must read "Tamerlane".
    assert poe.readable_chapters[0].blocks[0].text == "Tamerlane"
    douglass = _read("epub2-cuny-douglass-narrative.epub")
    # The CUNY editors' "Note on the Text" is about the edition; Garrison's preface is part of the 1845 book.
    assert [c.title for c in douglass.chapters if c.skipped] == ["Title", "Copyright", "Note on the Text"]
    assert "editorial note" in douglass.chapters[2].why and not douglass.chapters[3].skipped
    cover = douglass.metadata.cover
    assert douglass.metadata.cover_mime == "image/jpeg" and cover is not None and cover[:2] == b"\xff\xd8"
    yecao = _read("epub3-zh-luxun-yecao.epub")
    # The 1931 preface to the English translation is Lu Xun's own text (epub:type appendix): read.
    assert [c.skip_reason for c in yecao.chapters if c.skipped] == ["front matter: titlepage"]
    assert "appendix" in yecao.chapters[-1].why and not yecao.chapters[-1].skipped
    for book in (jekyll, poe, douglass, yecao):
        assert all(c.why for c in book.chapters), book.path.name  # `render plan` can say why for every part


def test_verse_keeps_line_breaks() -> None:
    poe = _read("se-poe-poetry.epub")
    raven = next(c for c in poe.chapters if c.title == "The Raven")
    first = next(b for b in raven.blocks if b.kind == "paragraph")
    assert first.text.split("\n")[:2] == [
        "Once upon a midnight dreary, while I pondered, weak and weary,",
        "Over many a quaint and curious volume of forgotten lore—",
    ]


def test_malformed_truncated_zip() -> None:
    with pytest.raises(BookError, match="truncated or damaged"):
        read_book(CORPUS / "malformed-truncated-zip.epub")


def test_malformed_missing_container() -> None:
    with pytest.raises(BookError, match=r"META-INF/container.xml is missing.*epub/content.opf"):
        read_book(CORPUS / "malformed-missing-container.epub")
    book = read_book(CORPUS / "malformed-missing-container.epub", ReadOptions(lenient=True))
    assert [c.title for c in book.readable_chapters] == [
        c.title for c in _read("se-stevenson-jekyll-and-hyde.epub").readable_chapters
    ]
    assert any("container.xml is missing" in w for w in book.warnings)


def test_malformed_opf_missing_file() -> None:
    with pytest.raises(BookError, match=r"chapter-5.xhtml \('Incident of the Letter'\): missing file.*--allow-missing"):
        read_book(CORPUS / "malformed-opf-missing-file.epub")
    book = read_book(CORPUS / "malformed-opf-missing-file.epub", ReadOptions(allow_missing=True))
    assert [(m.href, m.title, m.reason) for m in book.missing] == [
        ("epub/text/chapter-5.xhtml", "Incident of the Letter", "missing file")
    ]
    assert book.warnings == [
        "'epub/text/chapter-5.xhtml' is listed in the OPF but missing from the archive; chapter skipped"
    ]
    missing = [c for c in book.chapters if c.skip_reason == "missing file"]
    assert [(c.title, c.href) for c in missing] == [("Incident of the Letter", "epub/text/chapter-5.xhtml")]
    good = _read("se-stevenson-jekyll-and-hyde.epub")
    assert [c.title for c in book.chapters] == [c.title for c in good.chapters]
    assert len(book.readable_chapters) == 9
