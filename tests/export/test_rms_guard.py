"""RMS guard: presets with an RMS window (ACX) move the loudness target when -19 LUFS would miss it.

Noise-like audio (an untrained voice) has another spectrum than speech: at -19 LUFS its whole-file RMS
can read above -18 dB (dark noise: K-weighting discounts low frequencies) or below -23 dB (bright noise
with pauses). The export must still pass ACX and say in the report why its loudness is not -19 LUFS.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.signal
import soundfile as sf

from export import BookInfo, ExportOptions, export_book
from export.loudness import integrated_loudness, rms_db, true_peak_db
from export.master import rms_shift_db
from tests.export.synth import RATE, chapter, pad, speech_like

ACX_RMS = (-23.0, -18.0)


def _dark_noise(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Low-passed (~100 Hz) noise: much RMS for little K-weighted loudness — the demo-run case."""
    y = scipy.signal.lfilter([0.02], [1.0, -0.98], rng.standard_normal(int(seconds * RATE)))
    return (0.1 * y / np.std(y)).astype(np.float32)


def _white_noise(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """White noise: loud to K-weighting, so at -19 LUFS (with pauses and room tone) the RMS reads low."""
    return (0.1 * rng.standard_normal(int(seconds * RATE))).astype(np.float32)


def _export(tmp_path: Path, signals: list[np.ndarray], preset: str = "acx") -> tuple[Any, np.ndarray, int]:
    ch = chapter(tmp_path / "chunks", 1, "Noise", signals, ["sentence", "paragraph", "chapter_end"][-len(signals):])
    report = export_book(BookInfo("B", "A", "en"), [ch], tmp_path / "out", ExportOptions(format="mp3", preset=preset))
    y, rate = sf.read(str(tmp_path / "out" / report.files[0].name), dtype="float64")
    return report, y, rate


@pytest.mark.parametrize(("predicted", "expected"), [
    (-20.0, 0.0), (-18.5, 0.0), (-22.5, 0.0),  # inside the window less the margin: untouched
    (-17.3, -1.2), (-15.0, -3.5),  # too loud: down to the upper edge less the margin
    (-23.4, 0.9), (-30.0, 7.5),  # too quiet: up to the lower edge plus the margin
])
def test_shift_is_the_smallest_that_brings_rms_inside(predicted: float, expected: float) -> None:
    assert rms_shift_db(predicted, ACX_RMS, 0.5) == pytest.approx(expected)


def test_no_window_or_silence_means_no_shift() -> None:
    assert rms_shift_db(-10.0, None) == 0.0
    assert rms_shift_db(-200.0, ACX_RMS) == 0.0
    assert rms_shift_db(-10.0, (-20.0, -19.5), 0.5) == pytest.approx(-9.75)  # narrow window: its middle


@pytest.mark.parametrize(("make", "direction"), [(_dark_noise, -1.0), (_white_noise, +1.0)])
def test_noise_chapter_passes_acx_rms_and_true_peak_after_mp3(tmp_path: Path, make: Any, direction: float) -> None:
    rng = np.random.default_rng(3)
    report, y, rate = _export(tmp_path, [make(3.0, rng) for _ in range(3)])
    # Independent figures from the decoded MP3: this signal really misses the window at -19 LUFS ...
    lufs, rms = integrated_loudness(y, rate), rms_db(y)
    rms_at_minus_19 = rms + (-19.0 - lufs)
    assert not ACX_RMS[0] <= rms_at_minus_19 <= ACX_RMS[1]
    # ... yet the delivered file is inside it, under the true-peak ceiling, and the report passes.
    assert ACX_RMS[0] <= rms <= ACX_RMS[1]
    assert true_peak_db(y) <= -3.0 and float(np.abs(y).max()) < 1.0
    f = report.files[0]
    assert f.passed, f.compliance.failed_rules
    assert f.measurement.rms_db == pytest.approx(rms, abs=0.1)
    # The report says the target moved, which way, by how much, and why.
    ch = report.chapters[0]
    shift = ch.mastering["rms_shift_db"]
    assert np.sign(shift) == direction and 0.1 < abs(shift) < 6.0
    assert lufs == pytest.approx(-19.0 + shift, abs=0.5)  # loudness differs from -19 by the shift
    assert len(ch.notes) == 1 and "RMS rule" in ch.notes[0] and f"{shift:+.2f} dB" in ch.notes[0]
    saved = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert saved["chapters"][0]["notes"] == ch.notes and saved["passed"] is True
    assert saved["chapters"][0]["mastering"]["rms_shift_db"] == pytest.approx(shift, abs=1e-3)
    assert ch.notes[0] in (tmp_path / "out" / "report.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize("input_lufs", [-40.0, -23.0, -6.0])
def test_speech_like_chapter_is_untouched_by_the_guard(tmp_path: Path, input_lufs: float) -> None:
    rng = np.random.default_rng(int(-input_lufs))
    signals = []
    for _ in range(3):
        x = speech_like(1.5, rng)
        signals.append(pad(x * 10 ** ((input_lufs - integrated_loudness(x, RATE)) / 20), 0.1, 0.1))
    report, y, rate = _export(tmp_path, signals)
    ch = report.chapters[0]
    assert ch.mastering["rms_shift_db"] == 0.0 and ch.notes == [] and "rms_at_target_db" not in ch.mastering
    assert integrated_loudness(y, rate) == pytest.approx(-19.0, abs=0.5)
    assert ACX_RMS[0] <= rms_db(y) <= ACX_RMS[1] and report.files[0].passed


def test_mp3_book_chapters_are_untouched_by_the_guard(mp3_book: dict[str, Any]) -> None:
    for ch in mp3_book["report"].chapters:
        assert ch.mastering["rms_shift_db"] == 0.0 and ch.notes == []


def test_preset_without_rms_window_keeps_its_loudness_target(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    report, y, rate = _export(tmp_path, [_dark_noise(3.0, rng) for _ in range(3)], preset="podcast")
    assert report.chapters[0].mastering["rms_shift_db"] == 0.0 and report.chapters[0].notes == []
    assert integrated_loudness(y, rate) == pytest.approx(-16.0, abs=0.5)
    assert true_peak_db(y) <= -1.0
