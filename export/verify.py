"""Decode a written file again and measure it; check the figures against a delivery preset's rules.

One streaming decode collects compact per-frame statistics (20 ms energy and true peak, 100 ms K-weighted
energy), from which any time range (a whole file, or one chapter of a single-file book) is measured.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from export.encode import decode_blocks, probe_audio
from export.loudness import SILENCE_DB, LoudnessMeter, TruePeakMeter, db, gated_loudness, power_db
from export.mp3frames import mp3_profile

FRAME_S = 0.02
SPEECH_THRESHOLD_DBFS = -50.0  # a 20 ms frame above this is programme, below it room tone / pause
_MIN_PAUSE_S = 0.2  # gaps shorter than this are within-word dips, not pauses
_PAUSE_GUARD_FRAMES = 3  # ignore 60 ms at each pause edge (fade-outs and breaths)
DIGITAL_SILENCE_DBFS = -100.0


@dataclass
class DecodedStats:
    sample_rate: int
    channels: int
    n_samples: int
    frame_samples: int
    frame_energy: np.ndarray  # [n_frames] mean square per 20 ms frame
    frame_peak: np.ndarray  # [n_frames] 4x-oversampled peak per frame
    frame_sample_peak: np.ndarray  # [n_frames] largest |sample| per frame
    sample_peak: float
    subblock_energy: np.ndarray  # [n_subblocks] K-weighted mean square per 100 ms
    subblock_samples: int


def _frame_stats(x: np.ndarray, frame: int, peak_meter: TruePeakMeter, energies: list[np.ndarray],
                 peaks: list[np.ndarray], sample_peaks: list[np.ndarray]) -> None:
    """Append energy, true peak and sample peak of each frame of x (the last frame may be partial)."""
    n_frames = -(-len(x) // frame)
    padded = np.zeros(n_frames * frame)
    padded[: len(x)] = x
    frames = padded.reshape(n_frames, frame)
    energy = (frames * frames).sum(axis=1) / np.minimum(frame, len(x) - frame * np.arange(n_frames))
    energies.append(energy)
    sample_peaks.append(np.abs(frames).max(axis=1))
    peaks.append(peak_meter.add_frames(x, frame))


def decode_stats(path: Path, fmt: str) -> DecodedStats:
    rate, channels, blocks = decode_blocks(path, fmt)
    frame = max(1, int(round(FRAME_S * rate)))
    meter, peak_meter = LoudnessMeter(rate), TruePeakMeter()
    energies: list[np.ndarray] = []
    peaks: list[np.ndarray] = []
    sample_peaks: list[np.ndarray] = []
    carry = np.zeros(0, dtype=np.float64)
    n = 0
    sample_peak = 0.0
    for block in blocks:
        n += len(block)
        meter.add(block)
        x = np.concatenate([carry, block.astype(np.float64)])
        whole = len(x) // frame * frame
        if whole:
            _frame_stats(x[:whole], frame, peak_meter, energies, peaks, sample_peaks)
        carry = x[whole:]
    if len(carry):
        _frame_stats(carry, frame, peak_meter, energies, peaks, sample_peaks)
    sample_peak = max((float(p.max()) for p in sample_peaks if len(p)), default=0.0)

    def cat(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float64)

    return DecodedStats(rate, channels, n, frame, cat(energies), cat(peaks), cat(sample_peaks), sample_peak,
                        meter.subblock_energies, meter.subblock_samples)


@dataclass
class Measurement:
    """Figures of a decoded file or a time range of it (levels in dBFS / LUFS / dBTP)."""

    duration_s: float
    sample_rate: int
    channels: int
    loudness_lufs: float
    rms_db: float
    sample_peak_db: float
    true_peak_dbtp: float
    noise_floor_db: float
    head_room_tone_s: float
    tail_room_tone_s: float
    room_tone_db: float
    format: str = ""
    bitrate_mode: str = ""
    bitrate_kbps: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _pause_frames(speech: np.ndarray) -> np.ndarray:
    """Boolean mask of frames inside pauses (runs of non-speech >= 200 ms, minus a guard at each edge)."""
    mask = np.zeros(len(speech), dtype=bool)
    min_run = int(round(_MIN_PAUSE_S / FRAME_S))
    quiet = np.concatenate([[False], ~speech, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(quiet))
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        lo = start + (_PAUSE_GUARD_FRAMES if start > 0 else 0)
        hi = end - (_PAUSE_GUARD_FRAMES if end < len(speech) else 0)
        if end - start >= min_run and hi > lo:
            mask[lo:hi] = True
    return mask


def _mean_db(energy: np.ndarray) -> float:
    return power_db(float(energy.mean())) if len(energy) else SILENCE_DB


def measure(stats: DecodedStats, start_s: float = 0.0, end_s: float | None = None) -> Measurement:
    """Measure [start_s, end_s) of a decoded file (whole file by default)."""
    f0 = int(round(start_s / FRAME_S))
    f1 = len(stats.frame_energy) if end_s is None else min(len(stats.frame_energy), int(round(end_s / FRAME_S)))
    energy, peak, speak = stats.frame_energy[f0:f1], stats.frame_peak[f0:f1], stats.frame_sample_peak[f0:f1]
    sub_per_s = stats.sample_rate / stats.subblock_samples
    b0 = int(round(start_s * sub_per_s))
    b1 = len(stats.subblock_energy) if end_s is None else int(round(end_s * sub_per_s))
    frame_dur = stats.frame_samples / stats.sample_rate
    with np.errstate(divide="ignore"):
        speech = 10.0 * np.log10(np.maximum(energy, 1e-30)) > SPEECH_THRESHOLD_DBFS
    loud = np.flatnonzero(speech)
    head = (loud[0] if len(loud) else len(energy)) * frame_dur
    tail = (len(energy) - 1 - loud[-1] if len(loud) else 0) * frame_dur
    guard = _PAUSE_GUARD_FRAMES
    room = np.concatenate([energy[: max(0, (loud[0] if len(loud) else 0) - guard)],
                           energy[(loud[-1] + 1 + guard) if len(loud) else len(energy):]])
    duration = (stats.n_samples / stats.sample_rate) if end_s is None else (end_s - start_s)
    return Measurement(
        duration_s=duration, sample_rate=stats.sample_rate, channels=stats.channels,
        loudness_lufs=gated_loudness(stats.subblock_energy[b0:b1]), rms_db=_mean_db(energy),
        sample_peak_db=db(float(speak.max())) if len(speak) else SILENCE_DB,
        true_peak_dbtp=db(float(peak.max())) if len(peak) else SILENCE_DB,
        noise_floor_db=_mean_db(energy[_pause_frames(speech)]), head_room_tone_s=float(head),
        tail_room_tone_s=float(tail), room_tone_db=_mean_db(room))


def measure_file(path: Path, fmt: str) -> tuple[DecodedStats, Measurement]:
    stats = decode_stats(path, fmt)
    m = measure(stats)
    m.format = fmt
    if fmt == "mp3":
        profile = mp3_profile(path)
        m.bitrate_mode, m.bitrate_kbps = profile.mode, profile.bitrate_kbps
    elif fmt == "m4b":
        m.bitrate_mode, m.bitrate_kbps = "AAC", probe_audio(path)[2]
    else:
        m.bitrate_mode = "lossless"
    return stats, m


@dataclass
class Check:
    rule: str
    passed: bool
    value: Any
    limit: str

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "passed": self.passed, "value": self.value, "limit": self.limit}


@dataclass
class Compliance:
    preset: str
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed_rules(self) -> list[str]:
        return [c.rule for c in self.checks if not c.passed]


def _range_check(rule: str, value: float, bounds: tuple[float, float], unit: str) -> Check:
    lo, hi = bounds
    return Check(rule, lo <= value <= hi, round(value, 2), f"{lo}..{hi} {unit}")


def check_compliance(m: Measurement, preset: str, rules: dict[str, Any]) -> Compliance:
    """Every rule of the preset, one :class:`Check` each (so a report can say exactly what failed)."""
    out = Compliance(preset)
    if "rms_db" in rules:
        out.checks.append(_range_check("rms", m.rms_db, rules["rms_db"], "dB RMS"))
    if "loudness_lufs" in rules:
        out.checks.append(_range_check("loudness", m.loudness_lufs, rules["loudness_lufs"], "LUFS"))
    if "peak_db" in rules:
        # True peak is never below sample peak, so this is at least as strict as ACX's peak rule.
        out.checks.append(Check("peak", m.true_peak_dbtp <= rules["peak_db"], round(m.true_peak_dbtp, 2),
                                f"<= {rules['peak_db']} dBTP"))
    if "noise_floor_db" in rules:
        out.checks.append(Check("noise_floor", m.noise_floor_db <= rules["noise_floor_db"],
                                round(m.noise_floor_db, 2), f"<= {rules['noise_floor_db']} dB RMS"))
    if "sample_rate" in rules:
        out.checks.append(Check("sample_rate", m.sample_rate == rules["sample_rate"], m.sample_rate,
                                f"== {rules['sample_rate']} Hz"))
    if rules.get("mono"):
        out.checks.append(Check("channels", m.channels == 1, m.channels, "mono"))
    if "mp3_cbr_min_kbps" in rules:
        ok = m.format == "mp3" and m.bitrate_mode == "CBR" and m.bitrate_kbps >= rules["mp3_cbr_min_kbps"]
        out.checks.append(Check("bitrate", ok, f"{m.format} {m.bitrate_mode} {m.bitrate_kbps} kb/s",
                                f"MP3 CBR >= {rules['mp3_cbr_min_kbps']} kb/s"))
    if "max_minutes" in rules:
        out.checks.append(Check("duration", m.duration_s <= 60.0 * rules["max_minutes"],
                                round(m.duration_s / 60.0, 2), f"<= {rules['max_minutes']} min"))
    if "head_room_tone_s" in rules:
        out.checks.append(_room_tone_check(m, rules["head_room_tone_s"], rules["tail_room_tone_s"],
                                           rules.get("noise_floor_db", -60.0)))
    return out


def _room_tone_check(m: Measurement, head: tuple[float, float], tail: tuple[float, float], floor: float) -> Check:
    slack = FRAME_S  # frame resolution of the measurement
    ok = (head[0] - slack <= m.head_room_tone_s <= head[1] + slack
          and tail[0] - slack <= m.tail_room_tone_s <= tail[1] + slack
          and DIGITAL_SILENCE_DBFS < m.room_tone_db <= floor)
    value = f"head {m.head_room_tone_s:.2f} s, tail {m.tail_room_tone_s:.2f} s, {m.room_tone_db:.1f} dB"
    return Check("room_tone", ok, value,
                 f"head {head[0]}..{head[1]} s, tail {tail[0]}..{tail[1]} s, {DIGITAL_SILENCE_DBFS}..{floor} dB")
