"""Containers: MP3 CBR + ID3 read-back, single-file chapters, FLAC tags, M4B chapter marks via ffprobe."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from mutagen.flac import FLAC
from mutagen.id3 import ID3
from mutagen.mp4 import MP4

import export.encode
from export import BookInfo, EncoderUnavailableError, ExportOptions, export_book
from export.encode import ffprobe_chapters, mp3_compression_level
from export.mp3frames import mp3_profile
from tests.export.conftest import COVER
from tests.export.synth import chapter, pad, speech_like

HAS_FFMPEG = shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def test_mp3_tags_and_cover_read_back(mp3_book: dict[str, Any]) -> None:
    names = sorted(p.name for p in mp3_book["out"].glob("0*.mp3"))
    assert names == ["01 - Opening.mp3", "02 - Глава 2 «Конец».mp3"]
    tags = ID3(str(mp3_book["out"] / names[1]))
    assert str(tags["TIT2"]) == "Глава 2: «Конец»"
    assert str(tags["TALB"]) == "Test Book" and str(tags["TPE1"]) == "Ann Author"
    assert str(tags["TRCK"]) == "2/2"
    cover = tags.getall("APIC")[0]
    assert cover.data == COVER and cover.mime == "image/png" and cover.type == 3


def test_mp3_is_44k1_mono_cbr_192_by_its_frame_headers(mp3_book: dict[str, Any]) -> None:
    for f in mp3_book["report"].files:
        profile = mp3_profile(mp3_book["out"] / f.name)
        assert profile.frames > 100
        assert profile.bitrates_kbps == {192: profile.frames} and profile.mode == "CBR"
        assert profile.sample_rate == 44100 and profile.channels == 1
        assert f.measurement.bitrate_mode == "CBR" and f.measurement.bitrate_kbps == 192


def test_frame_walker_detects_vbr(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([np.zeros(44100), 0.3 * rng.standard_normal(44100)]).astype(np.float32)
    sf.write(str(tmp_path / "v.mp3"), x, 44100, format="MP3", bitrate_mode="VARIABLE", compression_level=0.5)
    assert mp3_profile(tmp_path / "v.mp3").mode == "VBR"
    assert mp3_compression_level(192, 44100) == pytest.approx(128 / 288)


def test_single_file_mp3_has_id3_chapters_and_every_chapter(mp3_book: dict[str, Any]) -> None:
    book_file = mp3_book["out"] / "Test Book.mp3"
    tags = ID3(str(book_file))
    chaps = tags.getall("CHAP")
    assert [str(c.sub_frames["TIT2"]) for c in chaps] == ["Opening", "Глава 2: «Конец»"]
    per_chapter = sum(f.measurement.duration_s for f in mp3_book["report"].files if f.kind == "chapter")
    whole = next(f for f in mp3_book["report"].files if f.kind == "book").measurement.duration_s
    assert whole == pytest.approx(per_chapter, abs=0.1)
    assert chaps[1].start_time == pytest.approx(mp3_book["report"].chapters[1].book_offset_s * 1000, abs=2)


def test_flac_tags(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    ch = chapter(tmp_path / "c", 1, "Only", [pad(0.1 * speech_like(1.0, rng), 0.1, 0.1)], ["chapter_end"])
    book = BookInfo("Flac Book", "Writer", "de", cover=b"\xff\xd8\xff\xe0jpeg")
    report = export_book(book, [ch], tmp_path / "out", ExportOptions(format="flac", preset="podcast"))
    audio = FLAC(str(tmp_path / "out" / report.files[0].name))
    assert audio["album"] == ["Flac Book"] and audio["artist"] == ["Writer"] and audio["tracknumber"] == ["1"]
    assert audio.pictures[0].data == book.cover and audio.pictures[0].mime == "image/jpeg"


@pytest.mark.skipif(not HAS_FFMPEG, reason="ffmpeg/ffprobe not installed: M4B export is unavailable")
def test_m4b_chapter_marks_and_cover_read_back(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    chapters = [chapter(tmp_path / "c", i, f"Part {i}", [pad(0.1 * speech_like(1.0, rng), 0.1, 0.1)] * 2,
                        ["sentence", "chapter_end"]) for i in (1, 2, 3)]
    book = BookInfo("M4B Book", "Author", "en", cover=COVER)
    report = export_book(book, chapters, tmp_path / "out", ExportOptions(format="m4b", preset="acx"))
    path = tmp_path / "out" / "M4B Book.m4b"
    marks = ffprobe_chapters(path)
    assert [m["title"] for m in marks] == ["Part 1", "Part 2", "Part 3"]
    for mark, ch in zip(marks, report.chapters, strict=True):
        assert mark["start_s"] == pytest.approx(ch.book_offset_s, abs=0.05)
    assert marks[-1]["end_s"] == pytest.approx(report.files[0].measurement.duration_s, abs=0.1)
    tags = MP4(str(path)).tags
    assert tags is not None and bytes(tags["covr"][0]) == COVER and tags["\xa9alb"] == ["M4B Book"]
    assert report.files[0].measurement.true_peak_dbtp <= -3.0
    assert all(abs(ch.measurement.loudness_lufs + 19.0) <= 0.5 for ch in report.chapters)


def test_m4b_without_ffmpeg_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export.encode.shutil, "which", lambda name: None)
    rng = np.random.default_rng(3)
    ch = chapter(tmp_path / "c", 1, "X", [pad(0.1 * speech_like(1.0, rng), 0.1, 0.1)], ["chapter_end"])
    with pytest.raises(EncoderUnavailableError, match="ffmpeg"):
        export_book(BookInfo("B", "A", "en"), [ch], tmp_path / "out", ExportOptions(format="m4b"))
