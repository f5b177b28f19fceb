"""Synthetic EPUBs: TOC → chapter mapping, front/back matter, notes, headings, verse, scene breaks, metadata."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.books import ReadOptions, read_book
from tests.books.epubkit import Doc, EpubSpec, build_epub


def _titles(book) -> list[str]:  # type: ignore[no-untyped-def]
    return [c.title for c in book.chapters if not c.skipped]


def _texts(chapter) -> list[str]:  # type: ignore[no-untyped-def]
    return [b.text for b in chapter.blocks if b.kind == "paragraph"]


def test_chapter_split_over_several_files(tmp_path: Path) -> None:
    spec = EpubSpec(
        docs=[
            Doc("c1a.xhtml", "<h1>One</h1><p>First part.</p>"),
            Doc("c1b.xhtml", "<p>Second part.</p>"),
            Doc("c1c.xhtml", "<p>Third part.</p>"),
            Doc("c2.xhtml", "<h1>Two</h1><p>Other chapter.</p>"),
        ],
        toc=[(0, "Chapter One", "text/c1a.xhtml"), (0, "Chapter Two", "text/c2.xhtml")],
    )
    book = read_book(build_epub(tmp_path / "b.epub", spec))
    assert _titles(book) == ["Chapter One", "Chapter Two"]
    first = book.chapters[0]
    assert _texts(first) == ["First part.", "Second part.", "Third part."]
    assert first.files == ["OEBPS/text/c1a.xhtml", "OEBPS/text/c1b.xhtml", "OEBPS/text/c1c.xhtml"]
    assert _texts(book.chapters[1]) == ["Other chapter."]
    assert book.warnings == []


def test_several_chapters_in_one_file_by_anchor(tmp_path: Path) -> None:
    body = (
        "<p>Before any chapter.</p>"
        '<section id="a"><h2>Alpha</h2><p>Alpha text.</p></section>'
        '<section id="b"><h2>Beta</h2><p>Beta <span id="mid">text</span> here.</p>'
        '<div id="b-1"><h3>I</h3><p>Part one of beta.</p></div></section>'
        '<h2 id="c">Gamma</h2><p>Gamma text.</p>'
    )
    spec = EpubSpec(
        docs=[Doc("pre.xhtml", "<p>Preface words.</p>"), Doc("all.xhtml", body)],
        toc=[
            (0, "Preface", "text/pre.xhtml"),
            (0, "Alpha", "text/all.xhtml#a"),
            (0, "Beta", "text/all.xhtml#b"),
            (1, "I", "text/all.xhtml#b-1"),
            (0, "Gamma", "text/all.xhtml#c"),
        ],
    )
    book = read_book(build_epub(tmp_path / "b.epub", spec))
    assert [c.title for c in book.chapters] == ["Preface", "Alpha", "Beta", "Gamma"]
    # Text before the first anchor of a file continues the previous chapter (nothing lost).
    assert _texts(book.chapters[0]) == ["Preface words.", "Before any chapter."]
    assert [c.anchor for c in book.chapters] == [None, "a", "b", "c"]
    beta = book.chapters[2]
    assert [(b.kind, b.text) for b in beta.blocks] == [
        ("heading", "Beta"),
        ("paragraph", "Beta text here."),
        ("heading", "I"),
        ("paragraph", "Part one of beta."),
    ]
    assert _texts(book.chapters[3]) == ["Gamma text."]
    # The nested entry stays in its parent's chapter, as a section, and is listed in Book.toc.
    assert [(e.depth, e.label, e.chapter_index, e.is_chapter) for e in book.toc] == [
        (0, "Preface", 0, True),
        (0, "Alpha", 1, True),
        (0, "Beta", 2, True),
        (1, "I", 2, False),
        (0, "Gamma", 3, True),
    ]
    deep = read_book(tmp_path / "b.epub", ReadOptions(toc_depth=2))
    assert [c.title for c in deep.chapters] == ["Preface", "Alpha", "Beta", "I", "Gamma"]


def test_nested_entries_in_other_files_become_chapters(tmp_path: Path) -> None:
    spec = EpubSpec(
        docs=[Doc("part1.xhtml", "<h1>Part One</h1>"), Doc("c1.xhtml", "<p>One.</p>"), Doc("c2.xhtml", "<p>Two.</p>")],
        toc=[(0, "Part One", "text/part1.xhtml"), (1, "Ch 1", "text/c1.xhtml"), (1, "Ch 2", "text/c2.xhtml")],
    )
    book = read_book(build_epub(tmp_path / "b.epub", spec))
    assert [c.title for c in book.chapters] == ["Part One", "Ch 1", "Ch 2"]
    # A part page holding only its heading is still read: it announces the part.
    assert not book.chapters[0].skipped and book.chapters[0].blocks[0].text == "Part One"
    # A chapter without its own heading gets its title as a (synthetic) heading so it is spoken first.
    first = book.chapters[1].blocks[0]
    assert (first.kind, first.text, first.synthetic) == ("heading", "Ch 1", True)


def test_non_linear_items_are_separate_and_skipped(tmp_path: Path) -> None:
    spec = EpubSpec(
        docs=[
            Doc("c1.xhtml", "<h1>One</h1><p>Main one.</p>"),
            Doc("popup.xhtml", "<p>Answer key.</p>", linear=False),
            Doc("c1b.xhtml", "<p>Main one continued.</p>"),
            Doc("c2.xhtml", "<h1>Two</h1><p>Main two.</p>"),
        ],
        toc=[(0, "One", "text/c1.xhtml"), (0, "Two", "text/c2.xhtml")],
    )
    book = read_book(build_epub(tmp_path / "b.epub", spec))
    one, popup, two = book.chapters
    assert _texts(one) == ["Main one.", "Main one continued."]
    assert popup.skipped and popup.skip_reason == "non-linear" and _texts(popup) == ["Answer key."]
    assert _texts(two) == ["Main two."]
    again = read_book(tmp_path / "b.epub", ReadOptions(include_nonlinear=True))
    assert not again.chapters[1].skipped


def test_front_and_back_matter(tmp_path: Path) -> None:
    spec = EpubSpec(
        docs=[
            Doc("cover.xhtml", '<img src="../images/c.png" alt="Cover art"/>'),
            Doc("title.xhtml", '<section epub:type="titlepage"><h1>Book</h1></section>', "frontmatter"),
            Doc("copyright.xhtml", "<p>Copyright 2020 Someone.</p>"),
            Doc("c1.xhtml", "<h1>One</h1><p>Story.</p>", "bodymatter"),
            Doc("colophon.xhtml", '<section epub:type="colophon"><p>Set in Type.</p></section>', "backmatter"),
            Doc("appendix.xhtml", '<section epub:type="appendix"><p>Extra.</p></section>', "backmatter"),
        ],
        toc=[
            (0, "Titlepage", "text/title.xhtml"),
            (0, "Copyright", "text/copyright.xhtml"),
            (0, "One", "text/c1.xhtml"),
            (0, "Colophon", "text/colophon.xhtml"),
            (0, "Appendix", "text/appendix.xhtml"),
        ],
    )
    path = build_epub(tmp_path / "b.epub", spec)
    book = read_book(path)
    assert [(c.title, c.kind, c.skip_reason) for c in book.chapters] == [
        ("Titlepage", "front", "front matter: titlepage"),
        ("Copyright", "front", "front matter: copyright"),
        ("One", "body", None),
        ("Colophon", "back", "back matter: colophon"),
        ("Appendix", "back", None),  # the author's text: read even in back matter
    ]
    assert [c.title for c in book.readable_chapters] == ["One", "Appendix"]
    everything = read_book(path, ReadOptions(include_front=True, include_back=True, image_alt=True))
    assert [c.skipped for c in everything.chapters] == [False] * 6
    assert _texts(everything.chapters[0]) == ["Cover art"]  # the cover page, only readable through its alt text


FOOTNOTES = (
    '<h1>One</h1><p>He paid $5<a epub:type="noteref" href="#n1">1</a> on Monday.'
    '<sup><a href="#n2">2</a></sup></p><p>x<sup>2</sup> stays.</p>'
    '<aside epub:type="footnote" id="n1"><p>About the money.</p></aside>'
    '<div class="footnote" id="n2"><p>Second note.</p></div>'
)


@pytest.mark.parametrize("mode", ["skip", "chapter_end"])
def test_footnotes(tmp_path: Path, mode: str) -> None:
    spec = EpubSpec(docs=[Doc("c1.xhtml", FOOTNOTES)], toc=[(0, "One", "text/c1.xhtml")])
    book = read_book(build_epub(tmp_path / "b.epub", spec), ReadOptions(read_notes=mode))
    blocks = [(b.kind, b.text) for b in book.chapters[0].blocks]
    body = [("heading", "One"), ("paragraph", "He paid $5 on Monday."), ("paragraph", "x2 stays.")]
    notes = [("note", "About the money."), ("note", "Second note.")] if mode == "chapter_end" else []
    assert blocks == body + notes


def test_endnotes_in_another_file(tmp_path: Path) -> None:
    notes = '<section epub:type="endnotes"><h2>Notes</h2><ol><li id="e1"><p>The endnote.</p></li></ol></section>'
    spec = EpubSpec(
        docs=[
            Doc("c1.xhtml", '<h1>One</h1><p>Text<a epub:type="noteref" href="notes.xhtml#e1">1</a>.</p>'),
            Doc("notes.xhtml", notes, "backmatter"),
        ],
        toc=[(0, "One", "text/c1.xhtml"), (0, "Notes", "text/notes.xhtml")],
    )
    path = build_epub(tmp_path / "b.epub", spec)
    plain = read_book(path)
    assert _texts(plain.chapters[0]) == ["Text."]
    assert plain.chapters[1].skip_reason == "back matter: endnotes"
    with_notes = read_book(path, ReadOptions(read_notes=True))
    assert with_notes.chapters[0].blocks[-1].text == "The endnote."


def test_blocks_verse_scene_breaks_and_ignored_elements(tmp_path: Path) -> None:
    body = (
        "<h2>Title <em>here</em></h2><script>var x = 1;</script>"
        "<p>Line one<br/>line two<br/>  line three</p><hr/>"
        '<p epub:type="z3998:section-break">   </p><p>After   the\n break.</p>'
        '<p class="center">* * *</p><p>Last <span epub:type="pagebreak" title="7">7</span>words.</p>'
        '<svg xmlns="http://www.w3.org/2000/svg"><text>ignored svg</text></svg>'
    )
    spec = EpubSpec(docs=[Doc("c1.xhtml", body)], toc=[(0, "From TOC", "text/c1.xhtml")])
    book = read_book(build_epub(tmp_path / "b.epub", spec))
    chapter = book.chapters[0]
    assert chapter.title == "From TOC"
    assert [(b.kind, b.text) for b in chapter.blocks] == [
        ("heading", "Title here"),
        ("paragraph", "Line one\nline two\nline three"),
        ("scene_break", ""),
        ("paragraph", "After the break."),
        ("scene_break", ""),
        ("paragraph", "Last words."),
    ]


def test_titles_fall_back_to_heading_then_number(tmp_path: Path) -> None:
    spec = EpubSpec(
        docs=[
            Doc("cover.xhtml", "<p>Cover words.</p>", "frontmatter"),
            Doc("a.xhtml", "<h1>Own Heading</h1><p>A.</p>"),
            Doc("b.xhtml", "<p>B.</p>"),
        ],
        toc=[],
    )
    book = read_book(build_epub(tmp_path / "b.epub", spec))
    # No table of contents: one chapter per spine document; "Chapter N" counts body chapters only.
    assert [(c.title, c.kind) for c in book.chapters] == [
        ("Chapter 1", "front"),
        ("Own Heading", "body"),
        ("Chapter 2", "body"),
    ]
    assert any("no table of contents" in w for w in book.warnings)
    spec.toc = [(0, "Listed", "text/a.xhtml")]
    book = read_book(build_epub(tmp_path / "c.epub", spec))
    # With a TOC, an unlisted body document continues the chapter before it.
    assert [c.title for c in book.chapters] == ["Chapter 1", "Listed"]
    assert [b.text for b in book.chapters[1].blocks] == ["Own Heading", "A.", "B."]


def test_epub2_ncx_and_metadata(tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
    spec = EpubSpec(
        docs=[Doc("c1.xhtml", "<p>One.</p>"), Doc("c2.xhtml", '<p id="x">Pre.</p><h1 id="two">Two</h1><p>2.</p>')],
        toc=[(0, "First", "text/c1.xhtml"), (0, "Second", "text/c2.xhtml#two")],
        ncx=True,
        cover=png,
        title="Old Book",
        author="B. Author",
        language="fr",
    )
    book = read_book(build_epub(tmp_path / "b.epub", spec))
    assert [c.title for c in book.chapters] == ["First", "Second"]
    assert _texts(book.chapters[0]) == ["One.", "Pre."]
    md = book.metadata
    assert (md.title, md.author, md.language, md.identifier) == ("Old Book", "B. Author", "fr", "urn:test:1")
    assert (md.cover, md.cover_mime) == (png, "image/png")
    assert len(book.source_hash) == 64 and book.format == "epub"


def test_epub3_cover_image_property(tmp_path: Path) -> None:
    spec = EpubSpec(docs=[Doc("c1.xhtml", "<p>One.</p>")], toc=[(0, "One", "text/c1.xhtml")], cover=b"PNGDATA")
    book = read_book(build_epub(tmp_path / "b.epub", spec))
    assert book.metadata.cover == b"PNGDATA" and book.metadata.cover_mime == "image/png"


def test_epub2_nested_ncx(tmp_path: Path) -> None:
    body = '<h1 id="p">Poem</h1><h2 id="p1">I</h2><p>First.</p><h2 id="p2">II</h2><p>Second.</p>'
    spec = EpubSpec(
        docs=[Doc("poems.xhtml", body), Doc("other.xhtml", "<h1>Other</h1><p>Prose.</p>")],
        toc=[
            (0, "Poem", "text/poems.xhtml#p"),
            (1, "I", "text/poems.xhtml#p1"),
            (1, "II", "text/poems.xhtml#p2"),
            (0, "Other", "text/other.xhtml"),
        ],
        ncx=True,
    )
    book = read_book(build_epub(tmp_path / "b.epub", spec))
    assert [(e.depth, e.label, e.chapter_index, e.is_chapter) for e in book.toc] == [
        (0, "Poem", 0, True),
        (1, "I", 0, False),
        (1, "II", 0, False),
        (0, "Other", 1, True),
    ]
    assert [b.text for b in book.chapters[0].blocks] == ["Poem", "I", "First.", "II", "Second."]


def test_read_options_validation_and_round_trip() -> None:
    from jobs.books import BookError

    with pytest.raises(BookError, match="read_notes"):
        ReadOptions(read_notes="inline")
    with pytest.raises(BookError, match="toc_depth"):
        ReadOptions(toc_depth=0)
    with pytest.raises(BookError, match="unknown read options: colour"):
        ReadOptions.from_dict({"colour": "red"})
    options = ReadOptions(include_front=True, read_notes=True, toc_depth=2)
    assert options.read_notes is True and options.notes_at_chapter_end
    assert not ReadOptions().read_notes and not ReadOptions(read_notes="skip").notes_at_chapter_end
    data = options.to_dict()
    assert data["read_notes"] == "chapter_end"
    assert ReadOptions.from_dict(data).to_dict() == data
