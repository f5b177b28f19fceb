"""How books are shaped into speech: verse lines and stanzas, list numbers, repeated headings, navigation
marks, front matter read or skipped with a reason, small readings. Real books from both corpora."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobs.books import Block, ReadOptions, read_book
from jobs.books.shape import mark_ordinals
from jobs.cli import cli
from jobs.exporting import navigation_marks
from renderer.text import normalize
from renderer.text.chunking import speech_text
from tests.books import owncorpus
from tests.books.epubkit import Doc, EpubSpec, build_epub
from tests.books.plans import OWN_BOOKS, POETRY, SHARED_BOOKS, book, path_of, plan

ALL_BOOKS = SHARED_BOOKS + OWN_BOOKS
LINE_END = re.compile(r"[,.;:!?…—–\-，。；：！？、][\"'”’»)\]」』》】]*$")


@pytest.mark.parametrize("name", ALL_BOOKS)
def test_verse_line_ends_are_pauses(name: str) -> None:
    """Every line end of a verse block is a chunk boundary or, inside a chunk, punctuation (a comma if the
    poet gave none), so "sought to borrow / From my books" never runs together."""
    verse_lines = 0
    for chapter, planned in zip(book(name).chapters, plan(name).chapters, strict=True):
        if chapter.skipped:
            continue
        for chunk in planned.chunks:
            lines = chunk.text.split("\n")
            spoken = speech_text(chunk.text)
            for line in lines[:-1]:
                verse_lines += 1
                assert LINE_END.search(line) or f"{line}, " in spoken, (chunk.text, spoken)
        kinds = [b.kind for b in chapter.blocks]
        if kinds.count("verse") >= 2 and "speaker" not in {c.boundary for c in planned.chunks}:
            assert {"stanza", "verse_line"} & {c.boundary for c in planned.chunks}, chapter.title
    if name in POETRY:
        assert verse_lines > 100  # the poetry book really is verse


def test_poems_pause_longer_between_stanzas_than_lines() -> None:
    from export import PauseOptions

    if not POETRY:
        pytest.skip("no book of poetry (manifest kind) in the corpus")
    name = POETRY[0]
    boundaries = {c.boundary for ch in plan(name).chapters for c in ch.chunks}
    assert {"verse_line", "stanza"} <= boundaries
    pauses = PauseOptions()
    assert pauses.after("sentence") > pauses.after("clause")
    assert pauses.after("stanza") > pauses.after("verse_line") > 0


@pytest.mark.parametrize("name", ALL_BOOKS)
def test_no_list_marker_is_glued_to_text(name: str) -> None:
    for chunk in (c for ch in plan(name).chapters for c in ch.chunks):
        assert not re.match(r"\d+[\u3400-\u9fff]", chunk.text), chunk.text
        assert not re.match(r"(\d+|[IVXLC]+\.)[A-Za-z]", chunk.text), chunk.text


@pytest.mark.parametrize("mode", ["read", "skip"])
def test_numbered_anecdotes(mode: str) -> None:
    name = next(b["file"] for b in owncorpus.MANIFEST if "numbered-anecdotes" in b["features"])
    numbers = owncorpus.entry(name)["numbered_paragraphs"]
    options = ReadOptions(list_numbers=mode)
    chapter = next(c for c in book(name, options).chapters if not c.skipped)
    assert [b.ordinal for b in chapter.blocks if b.kind == "paragraph"] == [str(n) for n in numbers]
    starts = {}
    for chunk in plan(name, options).chapters[0].chunks:
        starts.setdefault(chunk.block_index, chunk)
    firsts = [starts[i] for i in sorted(starts)][1:]  # the heading first
    for n, chunk in zip(numbers, firsts, strict=True):
        if mode == "read":  # the number as a label of its own, then a stop: "十一. 钟毓…", never "十一钟毓"
            assert chunk.text.startswith(f"{n}。"), chunk.text
            # (a leading "." is the original's guard before a short first clause: renderer/text/README.md)
            assert re.match(r"\.?[一二三四五六七八九十]+\.", chunk.normalized), chunk.normalized
        else:
            assert not re.match(r"\d", chunk.text), chunk.text


def test_list_markers_need_counting_or_an_enumeration_comma() -> None:
    def ordinals(texts: list[str]) -> list[str]:
        return [b.ordinal for b in mark_ordinals([Block("paragraph", t) for t in texts])]

    assert ordinals(["1823 was a hard year.", "The next came."]) == ["", ""]
    assert ordinals(["3D printing is new.", "I. Smith wrote it."]) == ["", ""]
    assert ordinals(["一九二四年九月十五日。", "十一、一个人"]) == ["", "十一"]
    assert ordinals(["12. The first.", "13. The second.", "After them."]) == ["12", "13", ""]
    assert ordinals(["IV. The fourth.", "V. The fifth."]) == ["4", "5"]
    assert ordinals(["11鍾毓少有令譽。", "12鍾毓兄弟小時。"]) == ["11", "12"]
    assert ordinals(["I went home.", "II. Then."]) == ["", ""]


def test_a_heading_repeated_atop_every_chapter_is_read_once() -> None:
    name = next(b["file"] for b in owncorpus.MANIFEST if "repeated-heading" in b["features"])
    heading = owncorpus.entry(name)["repeated_heading"]
    texts = [c.text for ch in plan(name).chapters for c in ch.chunks]
    assert texts.count(heading) == 1


def test_every_toc_entry_is_a_navigation_mark_with_its_start_chunk() -> None:
    name = next(b["file"] for b in owncorpus.MANIFEST if "nested-toc" in b["features"])
    toc = owncorpus.entry(name)["toc"]
    result = CliRunner().invoke(cli, ["plan", str(path_of(name)), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    marks = data["navigation"]
    assert [(m["title"], m["depth"]) for m in marks] == [(t["label"], t["depth"]) for t in toc]
    chapters = {c["number"]: c for c in data["chapters"]}
    for mark in marks:
        chapter = chapters[mark["chapter"]]
        if chapter["skipped"]:
            assert mark["chunk"] is None
            continue
        first = chapter["chunk_list"][mark["chunk"]]
        assert first["text"] == mark["title"]  # the chunk where the act or scene begins: its own heading
    nested = [m for m in marks if m["depth"] >= 2]
    assert nested and len({m["chapter"] for m in nested}) == 1  # scenes inside one act's file
    # What the export layer receives per chapter: NavMarks at chunk indices, the way the store keeps them.
    per_chapter = navigation_marks({"navigation": marks})
    assert [m.title for m in per_chapter[nested[0]["chapter"]]][-len(nested) :] == [m["title"] for m in nested]


def test_plan_shows_chunks_with_boundary_and_pause_and_says_why_front_matter_is_skipped() -> None:
    name = next(b["file"] for b in owncorpus.MANIFEST if "drama" in b["features"] and "nested-toc" in b["features"])
    result = CliRunner().invoke(cli, ["plan", str(path_of(name)), "--chunks"])
    assert result.exit_code == 0, result.output
    assert re.search(r"\[speaker 0\.60s\] \w+: ", result.output)
    assert re.search(r"\[stage_direction 0\.70s\] ", result.output)
    assert "why: halftitlepage (epub:type): never read by default" in result.output
    assert "why: dramatis-personae (epub:type): the author's own text, read" in result.output


def _front_book(tmp_path: Path) -> Path:
    docs = [
        Doc("a.xhtml", "<h1>Synthetic Book</h1><p>by</p><p>A. Writer</p>"),  # a title page without markup
        Doc("b.xhtml", "<p>© 2021 A. Writer. All rights reserved.</p><p>ISBN 978-0-00-000000-0</p>"),
        Doc("c.xhtml", '<section epub:type="dedication"><p>To my mother, who read to me every night.</p></section>',
            "frontmatter"),
        Doc("d.xhtml", "<h1>Preface</h1><p>I wrote this book over many winters, and I owe it to those who "
                       "listened to every chapter before it was written down.</p>"),
        Doc("e.xhtml", "<h1>One</h1><p>The story begins.</p>"),
    ]  # fmt: skip
    toc = [(0, "Cover", "text/a.xhtml"), (0, "Notice", "text/b.xhtml"), (0, "For Mother", "text/c.xhtml"),
           (0, "Preface", "text/d.xhtml"), (0, "One", "text/e.xhtml")]  # fmt: skip
    return build_epub(tmp_path / "front.epub", EpubSpec(docs=docs, toc=toc))


def test_front_matter_is_judged_by_type_label_and_content(tmp_path: Path) -> None:
    chapters = read_book(_front_book(tmp_path)).chapters
    assert [(c.title, c.skipped) for c in chapters] == [
        ("Cover", True), ("Notice", True), ("For Mother", False), ("Preface", False), ("One", False),
    ]  # fmt: skip
    assert "title page" in chapters[0].why or "cover" in chapters[0].why
    assert "copyright page (content" in chapters[1].why
    assert "dedication" in chapters[2].why and "read" in chapters[2].why
    # A half-title without any markup: only the book's title.
    half = build_epub(tmp_path / "half.epub", EpubSpec(
        docs=[Doc("h.xhtml", "<h2>Synthetic Book</h2>"), Doc("e.xhtml", "<h1>One</h1><p>The story begins.</p>")],
        toc=[(0, "Synthetic Book", "text/h.xhtml"), (0, "One", "text/e.xhtml")]))  # fmt: skip
    first = read_book(half).chapters[0]
    assert first.skipped and "title page (content)" in first.why
    assert not read_book(half, ReadOptions(include_front=True)).chapters[0].skipped


def test_the_authors_dedication_is_read() -> None:
    for entry in owncorpus.MANIFEST:
        roles = {p["href"]: p["role"] for p in entry["spine"]}
        for chapter in book(entry["file"]).chapters:
            if roles.get(chapter.href.removeprefix("epub/")) == "dedication":
                assert not chapter.skipped and "dedication" in chapter.why


def test_small_readings() -> None:
    withheld = [c for name in ALL_BOOKS for ch in plan(name).chapters for c in ch.chunks if "⸻" in c.text]
    assert not any("⸻" in c.normalized for c in withheld)  # Poe's "To the River ⸻" in the public set
    assert "⸻" not in normalize(speech_text("To the River ⸻"), "en")
    spoken = normalize(speech_text("Wm. Lloyd Garrison wrote to Chas. Sumner."), "en")
    assert spoken.lstrip(".").startswith("William Lloyd")  # "." = the original's guard before "Wm"
    assert "Charles Sumner" in normalize("Wm. Lloyd Garrison wrote to Chas. Sumner.", "en")
    assert normalize("龚自珍(1823-49)。", "zh") == "龚自珍一八二三到四九."
    assert "一七八五到一八五零" in normalize("林则徐（1785—1850）", "zh")


def test_a_dropped_repeated_heading_leaves_the_chapter_title_announced(tmp_path: Path) -> None:
    docs = [Doc(f"c{i}.xhtml", f"<h1>Synthetic Book</h1><p>Text of part {i}.</p>") for i in (1, 2, 3)]
    toc = [(0, f"Part {i}", f"text/c{i}.xhtml") for i in (1, 2, 3)]
    chapters = read_book(build_epub(tmp_path / "r.epub", EpubSpec(docs=docs, toc=toc))).chapters
    assert [[b.text for b in c.blocks if b.kind == "heading"] for c in chapters] == [
        ["Synthetic Book"], ["Part 2"], ["Part 3"]
    ]


def test_bracketed_text_in_a_play_is_a_stage_direction() -> None:
    """The Chinese play in the public corpus (过客) puts inline directions in 〔〕 inside speeches."""
    for name in SHARED_BOOKS:
        for chapter in book(name).chapters:
            kinds = {b.kind for b in chapter.blocks}
            if "stage_direction" not in kinds:
                continue
            for block in chapter.blocks:
                if block.kind != "stage_direction":
                    assert not re.search(r"〔[^〕]{1,200}〕|\[[^\]]{1,200}\]", block.text), block.text
