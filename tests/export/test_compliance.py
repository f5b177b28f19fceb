"""The ACX check flags each rule on its own: a compliant file, then one violation at a time."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from export.encode import mp3_compression_level
from export.options import PRESETS
from export.verify import check_compliance, measure_file
from tests.export.synth import speech_like

ACX = PRESETS["acx"].rules
RATE = 44100


def _noise(n: int, level_db: float, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(n) * 10 ** (level_db / 20)


def program(rate: int = RATE, rms_db: float = -20.5, head_s: float = 0.75, tail_s: float = 2.0,
            room_db: float | None = -70.0, pause_db: float = -70.0, click_db: float | None = None) -> np.ndarray:
    """Head room tone, three speech-like phrases with pauses, tail room tone; whole-file RMS = ``rms_db``."""
    rng = np.random.default_rng(7)
    phrases = [speech_like(2.0, rng, rate) for _ in range(3)]
    pause = int(0.6 * rate)
    speech_n = sum(len(p) for p in phrases)
    total = int(head_s * rate) + speech_n + 2 * pause + int(tail_s * rate)
    gain = 10 ** (rms_db / 20) * np.sqrt(total / speech_n)  # pauses add (almost) nothing to the energy
    peak = 10 ** (-4.5 / 20)
    phrases = [peak * np.tanh(p * gain / peak) for p in phrases]  # soft-limit so peaks stay under -3 dB

    def room(seconds: float, level: float | None) -> np.ndarray:
        n = int(seconds * rate)
        return np.zeros(n) if level is None else _noise(n, level, rng)

    parts = [room(head_s, room_db), phrases[0], room(0.6, pause_db), phrases[1], room(0.6, pause_db), phrases[2],
             room(tail_s, room_db)]
    x = np.concatenate(parts)
    if click_db is not None:
        x[int((head_s + 1.0) * rate)] = 10 ** (click_db / 20)
    return x.astype(np.float32)


def _measure(tmp_path: Path, x: np.ndarray, rate: int = RATE, kbps: int = 192, mode: str = "CONSTANT",
             channels: int = 1) -> Any:
    path = tmp_path / "f.mp3"
    data = np.stack([x, x], axis=1) if channels == 2 else x
    level = mp3_compression_level(kbps, rate)
    sf.write(str(path), data, rate, format="MP3", bitrate_mode=mode, compression_level=level)
    return measure_file(path, "mp3")[1]


def _failed(m: Any) -> list[str]:
    return check_compliance(m, "acx", ACX).failed_rules


def test_a_compliant_file_passes_every_rule(tmp_path: Path) -> None:
    m = _measure(tmp_path, program())
    compliance = check_compliance(m, "acx", ACX)
    assert compliance.passed, [c for c in compliance.checks if not c.passed]
    assert {c.rule for c in compliance.checks} == {"rms", "peak", "noise_floor", "sample_rate", "channels",
                                                   "bitrate", "duration", "room_tone"}


@pytest.mark.parametrize(("rule", "build"), [
    ("rms", lambda: (program(rms_db=-16.0), {})),
    ("rms", lambda: (program(rms_db=-25.5), {})),
    ("peak", lambda: (program(click_db=-1.0), {})),
    ("noise_floor", lambda: (program(pause_db=-50.0), {})),
    ("sample_rate", lambda: (program(rate=48000), {"rate": 48000})),
    ("channels", lambda: (program(), {"channels": 2})),
    ("bitrate", lambda: (program(), {"kbps": 128})),
    ("bitrate", lambda: (program(), {"mode": "VARIABLE", "kbps": 256})),
    ("room_tone", lambda: (program(head_s=0.2), {})),
    ("room_tone", lambda: (program(tail_s=6.0), {})),
    ("room_tone", lambda: (program(room_db=None), {})),  # digital silence is not room tone
])
def test_each_violation_is_flagged_alone(tmp_path: Path, rule: str, build: Any) -> None:
    x, kwargs = build()
    assert _failed(_measure(tmp_path, x, **kwargs)) == [rule]


def test_overlong_file_is_flagged_alone(tmp_path: Path) -> None:
    m = _measure(tmp_path, program())
    assert _failed(replace(m, duration_s=121 * 60.0)) == ["duration"]


def test_export_report_lists_failed_rules(wav_book: dict[str, Any]) -> None:
    # The WAV/none export has no rules; re-check its files against ACX: WAV is not MP3 CBR, 32 kHz.
    for f in wav_book["report"].files:
        failed = check_compliance(f.measurement, "acx", ACX).failed_rules
        assert "bitrate" in failed and "sample_rate" in failed
    assert wav_book["json"]["passed"] is True  # preset none has nothing to fail
