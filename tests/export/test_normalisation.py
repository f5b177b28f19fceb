"""Chapter loudness and true peak after MP3 encode + decode, for quiet, loud and clipped input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from export import BookInfo, ExportOptions, export_book
from export.loudness import integrated_loudness, true_peak_db
from tests.export.synth import RATE, chapter, pad, speech_like


def _chapter_at(folder: Path, input_lufs: float, clipped: bool) -> list[np.ndarray]:
    rng = np.random.default_rng(int(-input_lufs))
    signals = []
    for _ in range(3):
        x = speech_like(1.5, rng)
        x *= 10 ** ((input_lufs - integrated_loudness(x, RATE)) / 20)
        if clipped:
            x = np.clip(x * 4.0, -1.0, 1.0)  # driven 12 dB into hard clipping, flat tops at full scale
        signals.append(pad(x, 0.1, 0.1))
    return signals


@pytest.mark.parametrize(("input_lufs", "clipped", "preset"), [
    (-40.0, False, "acx"), (-23.0, False, "acx"), (-6.0, False, "acx"), (-12.0, True, "acx"),
    (-40.0, False, "podcast"),
])
def test_loudness_on_target_and_true_peak_under_ceiling_after_mp3(tmp_path: Path, input_lufs: float,
                                                                  clipped: bool, preset: str) -> None:
    signals = _chapter_at(tmp_path, input_lufs, clipped)
    if clipped:
        assert max(float(np.abs(s).max()) for s in signals) == 1.0
    ch = chapter(tmp_path / "chunks", 1, "Level", signals, ["sentence", "paragraph", "chapter_end"])
    options = ExportOptions(format="mp3", preset=preset)
    report = export_book(BookInfo("B", "A", "en"), [ch], tmp_path / "out", options)
    # Measured independently of the report: decode the MP3 again here.
    y, rate = sf.read(str(tmp_path / "out" / report.files[0].name), dtype="float64")
    assert rate == 44100
    assert integrated_loudness(y, rate) == pytest.approx(options.target_lufs, abs=0.5)
    assert options.true_peak_dbtp is not None and true_peak_db(y) <= options.true_peak_dbtp
    assert float(np.abs(y).max()) < 1.0  # never clips
    figures = report.files[0].measurement
    assert figures.loudness_lufs == pytest.approx(integrated_loudness(y, rate), abs=0.05)


def test_pyloudnorm_agrees_on_the_exported_file(tmp_path: Path) -> None:
    pyln = pytest.importorskip("pyloudnorm")
    ch = chapter(tmp_path / "chunks", 1, "X", _chapter_at(tmp_path, -30.0, False), ["sentence"] * 2 + ["chapter_end"])
    report = export_book(BookInfo("B", "A", "en"), [ch], tmp_path / "out", ExportOptions(format="flac"))
    y, rate = sf.read(str(tmp_path / "out" / report.files[0].name), dtype="float64")
    assert pyln.Meter(rate).integrated_loudness(y) == pytest.approx(-19.0, abs=0.5)
