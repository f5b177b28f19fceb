"""Plays as listeners hear them: the speaker's name in the same chunk as the speech, stage directions as
asides of their own (or skipped), whatever markup the publisher used.

Facts come from the source XHTML (persona cells, stage directions, counted with lxml here) and from
``tests/books/corpus/manifest.json`` (joint speakers, spine roles).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from lxml import etree

from jobs.books import ReadOptions, read_book
from jobs.books.drama import tidy_name
from jobs.planner import VoiceRef, build_plan
from tests.books import owncorpus
from tests.books.epubkit import Doc, EpubSpec, build_epub
from tests.books.plans import book, plan

PLAYS = [b["file"] for b in owncorpus.MANIFEST if "drama" in b["features"]]
EPUB_TYPE = "{http://www.idpf.org/2007/ops}type"


def _source(name: str) -> etree._Element:
    part = next(p for p in owncorpus.entry(name)["spine"] if p["role"] == "body")
    return etree.parse(str(owncorpus.CORPUS / part["source"])).getroot()


def _speakers(name: str) -> list[str]:
    """The persona cells of the source, in order, as the reader names them."""
    cells = [el for el in _source(name).iter("{*}td") if "z3998:persona" in (el.get(EPUB_TYPE) or "")]
    return [tidy_name(" and ".join(t.strip() for t in el.itertext() if t.strip())) for el in cells]


def _stage_texts(name: str) -> list[str]:
    found = [el for el in _source(name).iter() if "z3998:stage-direction" in (el.get(EPUB_TYPE) or "")]
    return [" ".join("".join(el.itertext()).split()) for el in found]


def _chunks(name: str, options: ReadOptions = ReadOptions()) -> list:  # type: ignore[type-arg]
    return [c for ch in plan(name, options).chapters for c in ch.chunks]


@pytest.mark.parametrize("name", PLAYS)
def test_every_speech_starts_with_its_speakers_name_in_the_same_chunk(name: str) -> None:
    speakers = _speakers(name)
    chunks = _chunks(name)
    prefixed = [c.text.split(": ", 1)[0] for c in chunks if any(c.text.startswith(f"{s}: ") for s in speakers)]
    assert prefixed == speakers  # each persona cell names exactly one chunk, in order
    for chunk in chunks:  # no chunk is only a name: something speakable follows it
        rest = chunk.text.split(": ", 1)[1] if chunk.text.split(": ", 1)[0] in speakers else chunk.text
        assert re.search(r"\w", rest), chunk.text
    assert not any(c.text.strip(" .:") in speakers for c in chunks)
    for joint in owncorpus.entry(name)["joint_speakers"]:
        assert any(c.text.startswith(f"{joint}: ") for c in chunks), joint


@pytest.mark.parametrize("name", PLAYS)
def test_stage_directions_are_asides_of_their_own(name: str) -> None:
    chunks = _chunks(name)
    texts = [" ".join(c.text.split()) for c in chunks]
    for stage in _stage_texts(name):
        at = texts.index(stage)  # its own chunk, never read on in the dialogue voice
        assert chunks[at].boundary in ("stage_direction", "aside", "chapter_end"), stage
    # A speech interrupted by a stage direction pauses before it as an aside.
    before = [chunks[i - 1].boundary for i, t in enumerate(texts) if t in _stage_texts(name) and i]
    assert "aside" in before or name.startswith("se-earnest")  # Hamlet has speeches ending in "Exit."


@pytest.mark.parametrize("name", PLAYS)
def test_stage_directions_and_speaker_names_can_be_skipped(name: str) -> None:
    options = ReadOptions(stage_directions="skip", speaker_names="skip")
    texts = [" ".join(c.text.split()) for c in _chunks(name, options)]
    stage = set(_stage_texts(name))
    assert not stage & set(texts)
    assert not any(t.startswith(f"{s}: ") for t in texts for s in _speakers(name))
    words = re.findall(r"\w+", " ".join(texts))
    assert "Who" in words or "Did" in words  # the dialogue itself is all there
    # The speakers stay known to the book (one voice per character later), only not read.
    assert {b.speaker for ch in book(name, options).chapters for b in ch.blocks if b.speaker} >= set(_speakers(name))


def test_cast_list_is_read_and_the_half_title_is_not() -> None:
    hamlet = owncorpus.entry("se-hamlet-excerpt.epub")
    roles = {p["href"]: p["role"] for p in hamlet["spine"]}
    for chapter in book(hamlet["file"]).chapters:
        role = roles[chapter.href.removeprefix("epub/")]
        if role in ("half-title", "title", "copyright", "imprint"):
            assert chapter.skipped and chapter.why, chapter.title
        elif role in ("dramatis-personae", "dedication", "body"):
            assert not chapter.skipped, (chapter.title, chapter.why)
    personae = next(c for c in book(hamlet["file"]).chapters if c.title == "Dramatis Personae")
    assert not any(b.speaker for b in personae.blocks)  # "Claudius, king of Denmark" is a line, not a speech


def _rows(name: str) -> list[tuple[str, list[tuple[bool, str]]]]:
    """The play's rows as (speaker or '', [(is_stage_direction, text)...]), read from the SE source."""
    out = []
    for tr in _source(name).iter("{*}tr"):
        cells = list(tr)
        who = tidy_name(" ".join(cells[0].itertext())) if cells and len(cells) > 1 else ""
        pieces: list[tuple[bool, str]] = []
        speech = cells[-1]
        if speech.text and speech.text.strip():
            pieces.append((False, speech.text.strip()))
        for child in speech:
            is_stage = "z3998:stage-direction" in (child.get(EPUB_TYPE) or "")
            pieces.append((is_stage, " ".join("".join(child.itertext()).split())))
            if child.tail and child.tail.strip():
                pieces.append((False, child.tail.strip()))
        out.append((who, pieces))
    return out


def _variant(name: str, style: str) -> str:
    """The same play in another publisher's markup (the text is the source's, only the markup changes)."""
    html = []
    for who, pieces in _rows(name):
        parts = [f"<i>[{text}]</i>" if stage else text for stage, text in pieces]
        if style == "speaker-class":
            if who:
                html.append(f'<p class="speaker">{who.upper()}</p>')
            parts = [f"[<i>{text}</i>]" if stage else text for stage, text in pieces]
            html.append(f"<p>{' '.join(parts)}</p>")
        else:  # small caps names opening the paragraph
            lead = f'<span class="smallcaps">{who}.</span> ' if who else ""
            html.append(f"<p>{lead}{' '.join(parts)}</p>")
    return "<h2>Act I</h2>" + "".join(html)


@pytest.mark.parametrize("style", ["speaker-class", "small-caps"])
def test_other_publishers_markup(tmp_path: Path, style: str) -> None:
    name = "se-earnest-excerpt.epub"
    spec = EpubSpec(docs=[Doc("act-1.xhtml", _variant(name, style))], toc=[(0, "Act I", "text/act-1.xhtml")])
    path = build_epub(tmp_path / f"{style}.epub", spec)
    chunks = [c for ch in build_plan(read_book(path), VoiceRef("v", "id"), {}, "e").chapters for c in ch.chunks]
    texts = [" ".join(c.text.split()) for c in chunks]
    speakers = [s for s in _speakers(name)]
    prefixed = [t.split(": ", 1)[0] for t in texts if any(t.startswith(f"{s}: ") for s in speakers)]
    assert prefixed == speakers
    assert not any(t.strip(" .:") in speakers for t in texts)
    for stage in (text for _, pieces in _rows(name) for is_stage, text in pieces if is_stage):
        assert stage in texts, stage


def test_bracketed_italics_in_prose_are_not_stage_directions(tmp_path: Path) -> None:
    """Without any drama evidence, "[sic]" in italics stays in the sentence."""
    body = "<h1>One</h1><p>He wrote <i>[sic]</i> in the margin and <span class=\"smallcaps\">Smith.</span> left.</p>"
    path = build_epub(tmp_path / "p.epub", EpubSpec(docs=[Doc("c.xhtml", body)], toc=[(0, "One", "text/c.xhtml")]))
    blocks = read_book(path).chapters[0].blocks
    assert [(b.kind, b.text, b.speaker) for b in blocks[1:]] == [
        ("paragraph", "He wrote [sic] in the margin and Smith. left.", "")
    ]


def test_plain_text_play_speakers(tmp_path: Path) -> None:
    """A play as plain text ("ALGERNON. Did you hear…"): many paragraphs opening with the same few names."""
    name = "se-earnest-excerpt.epub"
    paragraphs = [f"{who.upper()}. " + " ".join(t for stage, t in pieces if not stage)
                  for who, pieces in _rows(name) if who]  # fmt: skip
    text = "Act I\n\n\n" + "\n\n".join(paragraphs) + "\n"
    path = tmp_path / "play.txt"
    path.write_text(text, encoding="utf-8")
    blocks = [b for ch in read_book(path).chapters for b in ch.blocks if b.kind == "paragraph"]
    assert [b.speaker for b in blocks] == [s for s in _speakers(name)]
    options = dataclasses.replace(ReadOptions(), speaker_names="skip")
    chunks = build_plan(read_book(path, options), VoiceRef("v", "id"), {}, "e").chapters[0].chunks
    assert not any(c.text.startswith("Algernon") for c in chunks)
