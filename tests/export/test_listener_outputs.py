"""Listener outputs end to end (fake engine): read-along EPUBs checked by EPUBCheck, subtitles against the
chunk intervals, tags read back with mutagen and ffprobe, plan chapter numbers in file names."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from mutagen.id3 import ID3
from mutagen.mp4 import MP4

from export.encode import ffprobe_chapters
from tests.export.outputs_kit import (
    RICH_META,
    SAMPLE,
    build_rich_book,
    epubcheck_jar,
    plan_json,
    png,
    render,
    start_epubcheck,
)

pytestmark = pytest.mark.slow
HAS_FFMPEG = shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None
SMIL = "{http://www.w3.org/ns/SMIL}"
OPF = "{http://www.idpf.org/2007/opf}"


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The demo book rendered whole, with its read-along EPUB and WebVTT subtitles."""
    out = tmp_path_factory.mktemp("demo") / "out"
    render(str(SAMPLE), "--voice", "narrator", "--out", str(out), "--format", "mp3", "--preset", "none",
           "--read-along", "--subtitles", "vtt")
    return {"out": out, "epub": out / "sample-book.readalong.epub", "report": _report(out)}


@pytest.fixture(scope="session")
def rich(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The richer book: front matter skipped, one body chapter not selected, notes read, SRT subtitles."""
    root = tmp_path_factory.mktemp("rich")
    book = build_rich_book(root)
    plan = plan_json(book)
    body = [c for c in plan["chapters"] if not c["skipped"]]
    left_out = next(c for c in body if c["title"] == "Morning")
    chosen = ",".join(str(c["number"]) for c in body if c is not left_out)
    out = root / "out"
    render(str(book), "--voice", "narrator", "--out", str(out), "--chapters", chosen, "--format", "mp3",
           "--preset", "none", "--read-notes", "--read-along", "--subtitles", "srt")
    return {"book": book, "out": out, "epub": out / "rich-book.readalong.epub", "plan": plan,
            "rendered": [c for c in body if c is not left_out], "left_out": left_out, "report": _report(out)}


def _report(out: Path) -> dict[str, Any]:
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def epubcheck(demo: dict[str, Any], rich: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
              ) -> dict[str, dict[str, Any]]:
    """EPUBCheck 5 on both read-along EPUBs, run side by side once per session (its JVM starts slowly)."""
    jar = epubcheck_jar()
    if jar is None or shutil.which("java") is None:
        pytest.skip("EPUBCheck needs the `epubcheck` Python package (dev dependency) and Java (default-jre-headless)")
    folder = tmp_path_factory.mktemp("epubcheck")
    runs = {name: (start_epubcheck(jar, book["epub"], folder / f"{name}.json"), folder / f"{name}.json")
            for name, book in (("demo", demo), ("rich", rich))}
    results = {}
    for name, (proc, report) in runs.items():
        proc.wait(timeout=600)
        results[name] = json.loads(report.read_text(encoding="utf-8"))
    return results


@pytest.mark.parametrize("name", ["demo", "rich"])
def test_read_along_epub_validates_with_epubcheck(epubcheck: dict[str, dict[str, Any]], name: str) -> None:
    result = epubcheck[name]
    problems = [f"{m['severity']} {m['ID']}: {m['message']} ({m.get('locations', [{}])[0].get('path')})"
                for m in result["messages"] if m["severity"] in ("FATAL", "ERROR", "WARNING")]
    assert result["checker"]["nFatal"] == 0 and result["checker"]["nError"] == 0, problems
    assert problems == []


def _entries(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _clock(value: str) -> float:
    h, m, s = value.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def test_read_along_keeps_the_book_and_syncs_every_rendered_sentence(rich: dict[str, Any]) -> None:
    original, made = _entries(rich["book"]), _entries(rich["epub"])
    assert list(made)[0] == "mimetype" and made["mimetype"] == b"application/epub+zip"
    for name, data in original.items():
        if name.endswith(".xhtml"):
            before, after = (etree.fromstring(x) for x in (data, made[name]))
            assert "".join(before.itertext()) == "".join(after.itertext()), name  # text unchanged
        elif name != "OEBPS/content.opf":
            assert made[name] == data, name  # images, nav, container: byte for byte
    opf = etree.fromstring(made["OEBPS/content.opf"])
    items = {i.get("href"): i for i in opf.iter(f"{OPF}item")}
    overlaid = {href for href, item in items.items() if item.get("media-overlay")}
    assert "text/titlepage.xhtml" not in overlaid  # skipped front matter: no overlay
    rendered_files = {"text/chapter-1.xhtml", "text/chapter-2.xhtml", "text/chapter-3.xhtml", "text/chapter-4.xhtml"}
    assert overlaid == rendered_files  # chapter-3.xhtml also holds the rendered "Afternoon"
    chunks = {ch["index"]: ch["chunks"] for ch in rich["report"]["chapters"]}
    synced_chunks: set[tuple[str, float]] = set()
    durations = 0.0
    for href in sorted(overlaid):
        smil_href = items[next(i.get("href") for i in items.values() if i.get("id") ==
                               items[href].get("media-overlay"))].get("href")
        smil = etree.fromstring(made[f"OEBPS/{smil_href}"])
        doc = etree.fromstring(made[f"OEBPS/{href}"])
        ids = {el.get("id") for el in doc.iter()}
        for par in smil.iter(f"{SMIL}par"):
            fragment = par.find(f"{SMIL}text").get("src").split("#")[1]
            audio = par.find(f"{SMIL}audio")
            begin, end = _clock(audio.get("clipBegin")), _clock(audio.get("clipEnd"))
            number = int(re.search(r"audio-(\d+)\.mp3", audio.get("src")).group(1))
            assert fragment in ids and 0 <= begin < end
            inside = [c for c in chunks[number] if c["start_s"] - 1e-3 <= begin and end <= c["end_s"] + 1e-3]
            spanning = [c for c in chunks[number] if begin - 1e-3 <= c["start_s"] and c["end_s"] <= end + 1e-3]
            assert inside or spanning, (href, fragment)  # a sentence of one chunk, or chunks sharing a span
            synced_chunks |= {(str(number), c["start_s"]) for c in inside + spanning}
            durations += end - begin
    rendered_chunks = {(str(n), c["start_s"]) for n, cs in chunks.items() for c in cs}
    assert synced_chunks == rendered_chunks  # every rendered chunk (notes read at chapter end included)
    total = next(m for m in opf.iter(f"{OPF}meta") if m.get("property") == "media:duration" and not m.get("refines"))
    assert _clock(total.text) == pytest.approx(durations, abs=0.05)
    extra = next(f for f in rich["report"]["listener_files"] if f["kind"] == "read-along")
    assert extra["unsynced_sentences"] == 0 and extra["synced_sentences"] > len(rendered_chunks) / 2


def _srt(path: Path) -> list[tuple[float, float, str]]:
    cues = []
    for block in path.read_text(encoding="utf-8").strip().split("\n\n"):
        lines = block.split("\n")
        start, end = (_clock(t.replace(",", ".")) for t in lines[1].split(" --> "))
        cues.append((start, end, " ".join(lines[2:])))
    return cues


def test_subtitle_cues_follow_the_chunk_intervals(rich: dict[str, Any], demo: dict[str, Any]) -> None:
    for chapter in rich["report"]["chapters"]:
        cues = _srt(rich["out"] / Path(chapter["file"]).with_suffix(".srt"))
        starts, ends = {round(c[0], 3) for c in cues}, {round(c[1], 3) for c in cues}
        for chunk in chapter["chunks"]:
            assert round(chunk["start_s"], 3) in starts and round(chunk["end_s"], 3) in ends, chunk["key"]
        for start, end, text in cues:
            assert text and any(c["start_s"] - 2e-3 <= start < end <= c["end_s"] + 2e-3 for c in chapter["chunks"])
        assert all(a[1] <= b[0] + 1e-3 for a, b in zip(cues, cues[1:], strict=False))
        assert len(cues) >= len(chapter["chunks"])
    vtt_files = sorted(demo["out"].glob("*.vtt"))
    assert len(vtt_files) == len(demo["report"]["chapters"])
    assert all(p.read_text(encoding="utf-8").startswith("WEBVTT\n\n") for p in vtt_files)


def test_files_are_numbered_by_plan_chapter_and_tagged(rich: dict[str, Any]) -> None:
    total = len(rich["plan"]["chapters"])
    width = max(2, len(str(total)))
    names = sorted(p.name for p in rich["out"].glob("*.mp3"))
    assert names == sorted(f"{c['number']:0{width}d} - {c['title']}.mp3" for c in rich["rendered"])
    assert not any(n.startswith(f"{rich['left_out']['number']:0{width}d}") for n in names)
    cover = png()
    for chapter in rich["rendered"]:
        tags = ID3(rich["out"] / f"{chapter['number']:0{width}d} - {chapter['title']}.mp3")
        assert tags["TRCK"].text == [f"{chapter['number']}/{total}"]
        assert tags["TIT2"].text == [chapter["title"]] and tags["TALB"].text == [rich["plan"]["book"]["title"]]
        assert tags["TPE1"].text == [rich["plan"]["book"]["author"]]
        assert tags["TCOM"].text == ["narrator"] and tags["TXXX:NARRATOR"].text == ["narrator"]
        assert str(tags["TDRC"].text[0]) == RICH_META["date"][:4]
        assert tags["COMM::eng"].text == [RICH_META["description"]] and tags["TPUB"].text == [RICH_META["publisher"]]
        assert tags["TLAN"].text == ["en"]
        assert tags["APIC:Cover"].data == cover and tags["APIC:Cover"].mime == "image/png"


def _expected_marks(plan: dict[str, Any], rendered: list[dict[str, Any]]) -> list[str]:
    """Mark titles as the plan's navigation defines them: per chapter, one per TOC entry at a distinct chunk,
    led by the chapter's title when no entry opens the chapter."""
    titles: list[str] = []
    for chapter in rendered:
        nav = [m for m in plan["navigation"] if m["chapter"] == chapter["number"] and m["chunk"] is not None]
        if not nav or nav[0]["chunk"] != 0:
            titles.append(chapter["title"])
        seen: set[int] = set()
        for mark in nav:
            if mark["chunk"] not in seen:
                titles.append(mark["title"])
                seen.add(mark["chunk"])
    return titles


@pytest.mark.skipif(not HAS_FFMPEG, reason="ffmpeg/ffprobe not installed: M4B export is unavailable")
def test_m4b_has_cover_metadata_and_chapter_marks(rich: dict[str, Any], tmp_path: Path) -> None:
    render("export", str(rich["book"]), "--out", str(rich["out"]), "--format", "m4b", "--preset", "none",
           "--to", str(tmp_path))
    (m4b,) = tmp_path.glob("*.m4b")
    tags = MP4(m4b).tags
    assert tags is not None
    assert bytes(tags["covr"][0]) == png() and tags["\xa9wrt"] == ["narrator"]
    assert tags["\xa9day"] == [RICH_META["date"][:4]] and tags["desc"] == [RICH_META["description"]]
    marks = ffprobe_chapters(m4b)
    assert [m["title"] for m in marks] == _expected_marks(rich["plan"], rich["rendered"])
    starts = [m["start_s"] for m in marks]
    assert starts == sorted(starts) and starts[0] == 0
    for offset in (c["book_offset_s"] for c in _report(tmp_path)["chapters"]):
        assert min(abs(offset - s) for s in starts) < 0.05  # every chapter starts a mark
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format_tags", "-of", "json", str(m4b)],
                           capture_output=True, text=True, check=True)
    format_tags = {k.lower(): v for k, v in json.loads(probe.stdout)["format"]["tags"].items()}
    assert format_tags["composer"] == "narrator" and format_tags["artist"] == rich["plan"]["book"]["author"]
