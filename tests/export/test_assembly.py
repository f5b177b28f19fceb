"""Seams, pauses, trimming, gain matching and coverage on synthetic chunks (WAV output, no loudness change)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.ndimage
import soundfile as sf

from export import BookInfo, ChapterManifest, ChunkAudio, ExportError, ExportOptions, PauseOptions, export_book
from tests.export.conftest import PAUSE_BOUNDARIES, burst_signals, seam_signals
from tests.export.synth import chapter

EDGE_S = 0.03  # seam zone each side of a chunk's speech interval (covers the 20 ms fades)


def _seam_and_inside_steps(x: np.ndarray, rate: int, chunks: list[dict[str, Any]]) -> tuple[float, float]:
    step = np.abs(np.diff(x.astype(np.float64)))
    inside = np.zeros(len(step), dtype=bool)
    for c in chunks:
        lo, hi = int((c["start_s"] + EDGE_S) * rate), int((c["end_s"] - EDGE_S) * rate)
        inside[lo:hi] = True
    return float(step[~inside].max()), float(step[inside].max())


def _output(book: dict[str, Any], index: int) -> tuple[np.ndarray, int, dict[str, Any]]:
    info = book["json"]["chapters"][index]
    x, rate = sf.read(str(book["out"] / info["file"]), dtype="float64")
    return x, rate, info


def test_no_step_at_any_seam_is_larger_than_inside_the_chunks(wav_book: dict[str, Any]) -> None:
    x, rate, info = _output(wav_book, 0)
    assert rate == 32000 and len(info["chunks"]) == len(seam_signals())
    seam, inside = _seam_and_inside_steps(x, rate, info["chunks"])
    assert seam <= inside
    # And the chunk edges really were discontinuities to hide: raw chunks start/end far from zero.
    assert all(abs(s[0]) + abs(s[-1]) > 0.05 for s in seam_signals())


def test_seams_without_pauses_are_continuous_too(tmp_path: Path) -> None:
    ch = chapter(tmp_path / "chunks", 1, "Tight", seam_signals(), ["sentence"] * 3 + ["chapter_end"])
    zero = PauseOptions(sentence=0.0, paragraph=0.0, heading=0.0, scene_break=0.0)
    report = export_book(BookInfo("B", "A", "en"), [ch], tmp_path / "out",
                         ExportOptions(format="wav", preset="none", pauses=zero))
    x, rate = sf.read(str(tmp_path / "out" / report.files[0].name), dtype="float64")
    chunks = report.to_dict()["chapters"][0]["chunks"]
    assert chunks[1]["start_s"] == pytest.approx(chunks[0]["end_s"], abs=1e-3)  # back to back
    seam, inside = _seam_and_inside_steps(x, rate, chunks)
    assert seam <= inside


def _bursts(x: np.ndarray, rate: int) -> list[tuple[float, float]]:
    envelope = np.sqrt(scipy.ndimage.uniform_filter1d(x**2, size=int(0.002 * rate)))
    loud = np.concatenate([[0], (envelope > 10 ** (-40 / 20)).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(loud))
    return [(a / rate, b / rate) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def test_pauses_match_the_boundary_type_within_10_ms(wav_book: dict[str, Any]) -> None:
    x, rate, _ = _output(wav_book, 1)
    bursts = _bursts(x, rate)
    assert len(bursts) == len(burst_signals())
    pauses: PauseOptions = wav_book["options"].pauses
    gaps = [b[0] - a[1] for a, b in zip(bursts, bursts[1:], strict=False)]
    expected = [pauses.after(b) for b in PAUSE_BOUNDARIES[:-1]]
    assert gaps == pytest.approx(expected, abs=0.010)
    options = wav_book["options"]
    assert bursts[0][0] == pytest.approx(options.head_room_tone_s, abs=0.010)
    assert len(x) / rate - bursts[-1][1] == pytest.approx(options.tail_room_tone_s, abs=0.010)
    # Trimming removed the padding and kept the 0.5 s bursts whole.
    assert [b - a for a, b in bursts] == pytest.approx([0.5] * 5, abs=0.005)


def test_room_tone_fills_pauses_below_the_noise_floor(wav_book: dict[str, Any]) -> None:
    x, rate, _ = _output(wav_book, 1)
    bursts = _bursts(x, rate)
    gap = x[int((bursts[0][1] + 0.1) * rate) : int((bursts[1][0] - 0.1) * rate)]
    head = x[: int((bursts[0][0] - 0.1) * rate)]
    for part in (gap, head):
        level = 10 * np.log10(np.mean(part**2))
        assert -75.0 < level < -65.0  # -70 dBFS room tone: not digital silence, well under -60


def test_gain_matching_is_bounded_and_reduces_level_jumps(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    from tests.export.synth import pad, speech_like

    base = [speech_like(1.0, rng) for _ in range(6)]
    levels_db = [-20, -27, -20, -27, -20, -27]
    signals = [pad(b * 10 ** (level / 20), 0.05, 0.05) for b, level in zip(base, levels_db, strict=True)]
    ch = chapter(tmp_path / "chunks", 1, "Levels", signals, ["sentence"] * 5 + ["chapter_end"])
    options = ExportOptions(format="wav", preset="none")
    report = export_book(BookInfo("B", "A", "en"), [ch], tmp_path / "out", options)
    x, rate = sf.read(str(tmp_path / "out" / report.files[0].name), dtype="float64")
    chunks = report.chapters[0].chunks
    out_db = [10 * np.log10(np.mean(x[int(c.start_s * rate) : int(c.end_s * rate)] ** 2)) for c in chunks]
    assert all(abs(c.gain_db) <= options.gain_match_max_db + 1e-9 for c in chunks)
    assert any(abs(c.gain_db) > 1.0 for c in chunks)
    spread_in, spread_out = max(levels_db) - min(levels_db), max(out_db) - min(out_db)
    assert spread_out < 0.75 * spread_in


def test_every_chunk_has_exactly_one_interval_in_order(wav_book: dict[str, Any]) -> None:
    coverage = wav_book["json"]["coverage"]
    keys = [c["key"] for ch in wav_book["json"]["chapters"] for c in ch["chunks"]]
    expected = [c.key for ch in wav_book["chapters"] for c in ch.chunks]
    assert keys == expected and len(set(keys)) == len(keys)
    assert coverage["complete"] and coverage["n_chunks"] == coverage["n_placed"] == len(expected)
    for ch in wav_book["json"]["chapters"]:
        ends = [(c["start_s"], c["end_s"]) for c in ch["chunks"]]
        assert all(s <= e for s, e in ends)
        assert all(e1 <= s2 for (_, e1), (s2, _) in zip(ends, ends[1:], strict=False))


def test_silent_and_out_of_norm_chunks_are_listed_as_suspicious(wav_book: dict[str, Any]) -> None:
    suspicious = {s["key"]: s["reason"] for s in wav_book["json"]["coverage"]["suspicious"]}
    assert "no speech" in suspicious["ch3_2"]
    assert "s/phone" in suspicious["ch3_4"]
    assert not any(k.startswith(("ch1_", "ch2_")) or k in ("ch3_0", "ch3_1", "ch3_3") for k in suspicious)
    silent = wav_book["json"]["chapters"][2]["chunks"][2]
    assert silent["silent"] and silent["start_s"] == silent["end_s"]
    text = (wav_book["out"] / "report.txt").read_text(encoding="utf-8")
    assert "ch3_2" in text and "Suspicious" in text


def test_missing_chunk_file_and_bad_boundary_raise_export_errors(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="boundary"):
        ChunkAudio(tmp_path / "x.wav", "comma", "t", "k")
    missing = ChapterManifest(1, "Missing", [ChunkAudio(tmp_path / "nope.wav", "chapter_end", "t", "k")])
    with pytest.raises(ExportError, match="missing"):
        export_book(BookInfo("B", "A", "en"), [missing], tmp_path / "out", ExportOptions(format="wav"))
    with pytest.raises(ExportError):
        ExportOptions(format="ogg")
    with pytest.raises(ExportError):
        ExportOptions(crossfade_ms=0.0)
    assert not list((tmp_path / "out").glob(".export-*"))  # temp folder cleaned up after a failure


def test_voice_norm_flags_chunks_even_in_a_short_chapter(tmp_path: Path) -> None:
    from export.assemble import ChunkPlacement
    from export.report import find_suspicious

    def placed(key: str, seconds: float, phones: int) -> ChunkPlacement:
        return ChunkPlacement(key, "t", 0.0, seconds, 0.0, -20.0, 0.0, 0.0, phones, 0)

    chunks = [placed("ok", 1.0, 12), placed("looped", 4.0, 12)]
    assert find_suspicious(1, chunks, 2.0) == []  # two chunks: no chapter norm to speak of
    flagged = find_suspicious(1, chunks, 2.0, norm_seconds_per_phone=1 / 12)
    assert [s.key for s in flagged] == ["looped"]


def test_intervals_in_the_report_match_the_audio_in_an_mp3(tmp_path: Path) -> None:
    ch = chapter(tmp_path / "chunks", 1, "P", burst_signals(), PAUSE_BOUNDARIES)
    report = export_book(BookInfo("B", "A", "en"), [ch], tmp_path / "out", ExportOptions(format="mp3"))
    x, rate = sf.read(str(tmp_path / "out" / report.files[0].name), dtype="float64")
    bursts = _bursts(x, rate)
    reported = [(c.start_s, c.end_s) for c in report.chapters[0].chunks]
    assert np.allclose(np.array(bursts), np.array(reported), atol=0.005)


def test_a_chapter_without_any_speech_still_exports_room_tone(tmp_path: Path) -> None:
    ch = chapter(tmp_path / "chunks", 1, "Empty", [np.zeros(3200, dtype=np.float32)], ["chapter_end"])
    options = ExportOptions(format="mp3")
    report = export_book(BookInfo("B", "A", "en"), [ch], tmp_path / "out", options)
    m = report.files[0].measurement
    assert m.duration_s == pytest.approx(options.head_room_tone_s + options.tail_room_tone_s, abs=0.05)
    assert -75 < m.rms_db < -65 and report.files[0].encode_attempts == 1
    assert [s.key for s in report.coverage.suspicious] == ["ch1_0"] and report.coverage.complete
