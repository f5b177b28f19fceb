"""Sentence cues, subtitle formats, span insertion in XHTML, chapter marks and publishing (no audio rendered)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from lxml import etree

from export.assemble import ChunkPlacement
from export.book import chapter_marks
from export.cues import Cue, chapter_cues, split_sentences
from export.model import ChapterManifest, ChunkAudio, NavMark
from export.publish import MANIFEST_NAME, publish, written_files
from export.subtitles import format_srt, format_vtt
from export.textmap import TextIndex, can_wrap, nest, text_key, wrap


def placement(text: str, start: float, end: float, key: str = "k", silent: bool = False) -> ChunkPlacement:
    return ChunkPlacement(key, text, start, end, 0.0, -20.0, 0.0, 0.0, 10, 10, silent)


@pytest.mark.parametrize(("text", "expected"), [
    ("Dr. Marsh came. She stayed!", ["Dr. Marsh came.", "She stayed!"]),
    ("“No!” she said. Then J. R. Smith left... and came back?", ["“No!” she said.",
                                                                   "Then J. R. Smith left... and came back?"]),
    ("她站在船尾。灯塔静静地立在海边！", ["她站在船尾。", "灯塔静静地立在海边！"]),
    ("One line\nand a verse line.", ["One line\nand a verse line."]),
])
def test_sentences_of_a_chunk(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_cues_share_the_chunk_interval_by_spoken_weight() -> None:
    chunks = [placement("Short one. A much longer second sentence follows here.", 1.0, 5.0),
              placement("Silent.", 5.5, 5.5, silent=True), placement("第一句。第二句很长很长很长。", 6.0, 9.0)]
    cues = chapter_cues(chunks, offset_s=100.0)
    assert [c.chunk for c in cues] == [0, 0, 2, 2]  # the silent chunk has nothing to show
    assert cues[0].start_s == 101.0 and cues[1].end_s == 105.0 and cues[0].end_s == cues[1].start_s
    assert cues[0].end_s - cues[0].start_s < cues[1].end_s - cues[1].start_s  # fewer letters, less time
    assert cues[2].start_s == 106.0 and cues[3].end_s == 109.0
    assert cues[3].end_s - cues[3].start_s > 1.5  # 7 CJK characters against 3


def _parse_clock(text: str) -> float:
    h, m, s = re.split(r":", text.replace(",", "."))
    return int(h) * 3600 + int(m) * 60 + float(s)


def test_srt_and_vtt_cues_are_numbered_timed_and_escaped() -> None:
    cues = [Cue("A <b> & c --> d.", 0.5, 2.25, 0), Cue("x", 3.0, 3.01, 1),
            Cue("Second line is long enough to be wrapped onto two lines of text here.", 3661.5, 3663.0, 2)]
    srt = format_srt(cues).strip().split("\n\n")
    assert len(srt) == 2  # the 10 ms cue is dropped
    assert srt[0].split("\n")[:2] == ["1", "00:00:00,500 --> 00:00:02,250"]
    assert srt[1].split("\n")[1] == "01:01:01,500 --> 01:01:03,000"
    assert all(len(line) <= 42 for line in srt[1].split("\n")[2:]) and len(srt[1].split("\n")) == 4
    vtt = format_vtt(cues)
    assert vtt.startswith("WEBVTT\n\n")
    first = vtt.split("\n\n")[1].split("\n")
    assert first[0] == "00:00:00.500 --> 00:00:02.250"
    assert first[1] == "A &lt;b&gt; &amp; c -&gt; d."
    times = [_parse_clock(t) for t in re.findall(r"(\d\d:\d\d:\d\d[.,]\d{3})", vtt)]
    assert times == sorted(times)


XHTML = ('<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops"><head><title>t</title>'
         '</head><body><h1>Title</h1><p id="p1">He said <em>hello. How</em> are you? Fine, <b>thanks</b>.'
         '<a epub:type="noteref" href="#n1">1</a> Next one.</p><ul><li>Item one.</li><li>Item two.</li></ul></body>'
         '</html>')


def _units(index: TextIndex, texts: list[str]) -> list[tuple[int, int]]:
    out, cursor = [], 0
    for text in texts:
        found = index.locate(text_key(text), cursor, len(index.key))
        assert found is not None, text
        out.append(found)
        cursor = found[1]
    return out


def test_spans_wrap_sentences_without_changing_the_text() -> None:
    root = etree.fromstring(XHTML)
    before = "".join(root.itertext())
    index = TextIndex(root)
    assert "1" not in index.key  # the note reference is not spoken, so it is not matched either
    hello, how, fine, nxt = _units(index, ["He said hello.", "How are you?", "Fine, thanks.", "Next one."])
    first_a, last_a, begin_a, end_a = nest(index, *index.positions(*hello), *hello)
    first_b, last_b, begin_b, end_b = nest(index, *index.positions(*how), *how)
    assert begin_b < end_a  # both grew to cover <em>: they overlap and must share one span
    shared = nest(index, first_a, last_b, begin_a, end_b)
    single = nest(index, *index.positions(*fine), *fine)
    assert can_wrap(shared[0], shared[1]) and can_wrap(single[0], single[1])
    wrap(single[0], single[1], "s2")  # later ranges first: earlier positions stay valid
    wrap(shared[0], shared[1], "s1")
    assert "".join(root.itertext()) == before
    spans = {s.get("id"): "".join(s.itertext()) for s in root.iter("{http://www.w3.org/1999/xhtml}span")}
    assert spans == {"s1": "He said hello. How are you?", "s2": "Fine, thanks."}
    serialized = etree.tostring(root, encoding="unicode")
    assert 'xmlns="' not in serialized.split("<span", 1)[1]  # the span shares the document's namespace


def test_a_range_across_list_items_is_left_unwrapped() -> None:
    root = etree.fromstring(XHTML)
    index = TextIndex(root)
    begin, end = _units(index, ["Item one. Item two."])[0]
    first, last, _, _ = nest(index, *index.positions(begin, end), begin, end)
    assert not can_wrap(first, last)  # a span may not hold <li> elements


def test_nav_marks_become_chapter_marks_in_the_book_file(tmp_path: Path) -> None:
    chunks = [ChunkAudio(tmp_path / f"{i}.wav", "sentence", f"t{i}", f"k{i}") for i in range(4)]
    placements = [placement(f"t{i}", 1.0 + 2 * i, 2.0 + 2 * i) for i in range(4)]
    chapter = ChapterManifest(3, "Part One", chunks, (NavMark("Section A", 1, 1), NavMark("Section B", 1, 3)))
    marks = chapter_marks(chapter, placements, 100.0, 110.0)
    assert [(m.title, m.start_s, m.end_s) for m in marks] == [
        ("Part One", 100.0, 102.5), ("Section A", 102.5, 106.5), ("Section B", 106.5, 110.0)]
    plain = chapter_marks(ChapterManifest(3, "Part One", chunks), placements, 0.0, 9.0)
    assert [(m.title, m.start_s, m.end_s) for m in plain] == [("Part One", 0.0, 9.0)]


def _stage(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text(f"new {name}")
    return folder


def test_publish_replaces_the_previous_export_and_keeps_foreign_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "my notes.txt").write_text("mine")
    (out / "01 - Mine.mp3").write_text("a file the program did not write")
    publish(_stage(tmp_path / "s1", ["03 - Morning.mp3", "04 - Home.mp3", "report.json"]), out)
    stale = publish(_stage(tmp_path / "s2", ["01 - Keeper.flac", "03 - Morning.flac", "report.json"]), out)
    assert stale == ["03 - Morning.mp3", "04 - Home.mp3"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["my notes.txt", "01 - Mine.mp3", "01 - Keeper.flac", "03 - Morning.flac", "report.json", MANIFEST_NAME])
    assert (out / "01 - Mine.mp3").read_text() == "a file the program did not write"
    assert json.loads((out / MANIFEST_NAME).read_text())["files"] == ["01 - Keeper.flac", "03 - Morning.flac",
                                                                      "report.json"]


def test_a_crash_while_publishing_is_cleaned_up_by_the_next_export(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    publish(_stage(tmp_path / "s1", ["01 - A.mp3", "02 - B.mp3"]), out)

    def crash(name: str) -> None:
        raise KeyboardInterrupt(name)

    with pytest.raises(KeyboardInterrupt):
        publish(_stage(tmp_path / "s2", ["01 - A.wav", "02 - B.wav"]), out, on_step=crash)
    assert written_files(out) == {"01 - A.mp3", "02 - B.mp3", "01 - A.wav", "02 - B.wav"}
    publish(_stage(tmp_path / "s3", ["01 - A.wav"]), out)
    assert sorted(p.name for p in out.iterdir()) == sorted(["01 - A.wav", MANIFEST_NAME])


def test_an_export_from_before_the_manifest_is_known_by_its_report(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    report = {"files": [{"name": "01 - Old.mp3"}, {"name": "../escape.mp3"}]}
    (out / "report.json").write_text(json.dumps(report))
    (out / "01 - Old.mp3").write_text("old")
    assert written_files(out) == {"01 - Old.mp3", "report.json", "report.txt"}
    publish(_stage(tmp_path / "s", ["03 - New.mp3", "report.json"]), out)
    assert sorted(p.name for p in out.iterdir()) == sorted(["03 - New.mp3", MANIFEST_NAME, "report.json"])


def test_read_along_of_an_epub2_is_refused_before_any_work(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from jobs.cli import cli
    from tests.books.epubkit import Doc, EpubSpec, build_epub
    from tests.export.outputs_kit import services

    book = build_epub(tmp_path / "old.epub", EpubSpec([Doc("c1.xhtml", "<p>Hello there.</p>")],
                                                      toc=[(0, "One", "text/c1.xhtml")], ncx=True))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, [str(book), "--voice", "narrator", "--out", str(out), "--read-along"],
                                obj=services())
    assert result.exit_code != 0
    assert "old.epub is an EPUB 2.0 book; media overlays need EPUB 3" in result.output
    assert not out.exists()  # refused before planning or rendering
