"""Shared, session-cached synthetic exports (each export runs once per test session)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from export import BookInfo, ExportOptions, export_book
from tests.export.synth import RATE, chapter, pad, speech_like, tone

PAUSE_BOUNDARIES = ["sentence", "paragraph", "heading", "scene_break", "chapter_end"]
COVER = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64  # only the bytes matter for read-back


def seam_signals() -> list[np.ndarray]:
    """Chunks that start and end at non-zero values (no silence to trim, phases mid-cycle)."""
    rng = np.random.default_rng(11)
    return [tone(0.6, 220, 0.5, phase=1.0), tone(0.5, 330, 0.3, phase=2.0),
            (0.1 * speech_like(0.7, rng)).astype(np.float32), tone(0.4, 150, 0.6, phase=0.5)]


def burst_signals() -> list[np.ndarray]:
    """Tone bursts with leading zeros and trailing low noise (-70 dBFS) to be trimmed."""
    return [pad(tone(0.5, 440 + 40 * i, 0.3), 0.2 + 0.05 * i, 0.35, noise_db=-70.0, seed=i) for i in range(5)]


def coverage_signals() -> tuple[list[np.ndarray], list[int]]:
    rng = np.random.default_rng(5)
    signals = [pad(0.1 * speech_like(1.0, rng), 0.1, 0.1) for _ in range(5)]
    signals[2] = np.zeros(RATE // 2, dtype=np.float32)  # a chunk where the model produced nothing
    phones = [12, 12, 12, 12, 60]  # the last one "lost" four fifths of its speech
    return signals, phones


@pytest.fixture(scope="session")
def wav_book(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("wav_book")
    cov_signals, cov_phones = coverage_signals()
    chapters = [
        chapter(root / "chunks", 1, "Seams", seam_signals(), ["sentence", "paragraph", "sentence", "chapter_end"]),
        chapter(root / "chunks", 2, "Pauses", burst_signals(), PAUSE_BOUNDARIES),
        chapter(root / "chunks", 3, "Coverage", cov_signals, ["sentence"] * 4 + ["chapter_end"], n_phones=cov_phones),
    ]
    options = ExportOptions(format="wav", preset="none")
    report = export_book(BookInfo("Wav Book", "Tester", "en"), chapters, root / "out", options)
    return {"root": root, "out": root / "out", "report": report, "options": options, "chapters": chapters,
            "json": json.loads((root / "out" / "report.json").read_text(encoding="utf-8"))}


@pytest.fixture(scope="session")
def mp3_book(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("mp3_book")
    rng = np.random.default_rng(8)
    chapters = [chapter(root / "chunks", i, title,
                        [pad(0.05 * speech_like(1.2, rng), 0.1, 0.1) for _ in range(3)],
                        ["sentence", "paragraph", "chapter_end"])
                for i, title in [(1, "Opening"), (2, "Глава 2: «Конец»")]]
    book = BookInfo("Test Book", "Ann Author", "en", cover=COVER)
    report = export_book(book, chapters, root / "out", ExportOptions(format="mp3", preset="acx", single_file=True))
    return {"out": root / "out", "report": report, "book": book, "chapters": chapters}
