"""Pass 2: chapter signal → delivery signal (gain to the loudness target, resample, true-peak limit, room tone).

Streams the pass-1 temp file block by block into a second raw float32 temp at the output rate. The limiter
takes a little loudness off peaky material, so the pass is repeated with a corrected gain until the
*limited* output is within the tolerance of the target (usually one or two runs).

RMS guard: a preset with an RMS window (ACX) judges the file by its whole-file RMS, not by its loudness.
-19 LUFS lands speech inside ACX's window, but material with another spectrum (noise-like audio from an
untrained voice, bright or bass-heavy voices, chapters with long pauses) can read outside it at the same
loudness. After the first render, the RMS the file will have at the loudness target is known (both scale
with the gain); if it falls outside the window less a safety margin, the target is moved by the smallest
amount that brings it inside, and ``Mastered.rms_shift_db`` says by how much (the report explains it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.signal
import soxr

from export.assemble import Assembly
from export.limiter import TruePeakLimiter
from export.loudness import SILENCE_DB, LoudnessMeter, TruePeakMeter, power_db
from export.options import ExportOptions
from export.rawfile import RawWriter, read_blocks

_MAX_PASSES = 4
_MAX_GAIN_DB = 40.0  # a near-silent chapter is not blown up into pure noise
RMS_GUARD_MARGIN_DB = 0.5  # aim this far inside the preset's RMS window (codec and limiter drift)
_ROOM_TONE_POLE = 0.9  # one-pole low-pass: a soft, dark hiss like a quiet booth rather than white noise


class RoomTone:
    """Deterministic low-passed Gaussian noise at a fixed RMS, generated block by block."""

    def __init__(self, level_dbfs: float, seed: int) -> None:
        self._rng = np.random.default_rng(seed)
        a = _ROOM_TONE_POLE
        # Variance of a one-pole low-pass driven by unit white noise is (1-a)/(1+a); undo it.
        self._sigma = 10.0 ** (level_dbfs / 20.0) * np.sqrt((1 + a) / (1 - a))
        self._zi = np.zeros(1)

    def next(self, n: int) -> np.ndarray:
        white = self._rng.standard_normal(n) * self._sigma
        a = _ROOM_TONE_POLE
        out, self._zi = scipy.signal.lfilter([1 - a], [1, -a], white, zi=self._zi)
        return out


@dataclass
class Mastered:
    path: Path
    sample_rate: int
    n_samples: int
    gain_db: float
    loudness_lufs: float
    true_peak_dbtp: float
    limiter_reduction_db: float
    passes: int
    post_gain_db: float = 0.0  # exact correction the encoder applies (see master_chapter)
    rms_db: float = SILENCE_DB  # whole-file RMS of the rendered signal (before post_gain_db)
    rms_shift_db: float = 0.0  # how far the loudness target was moved to satisfy the preset's RMS window
    rms_at_target_db: float = SILENCE_DB  # predicted RMS had the target not been moved (for the report)

    @property
    def loudness_after_post_gain(self) -> float:
        return self.loudness_lufs + self.post_gain_db

    @property
    def rms_after_post_gain(self) -> float:
        return self.rms_db + self.post_gain_db


def rms_shift_db(predicted_rms_db: float, window_db: tuple[float, float] | None,
                 margin_db: float = RMS_GUARD_MARGIN_DB) -> float:
    """Smallest gain change (dB) that brings ``predicted_rms_db`` inside ``window_db`` shrunk by the margin.

    0 when there is no window, the signal is silent, or the prediction is already inside.
    """
    if window_db is None or predicted_rms_db <= SILENCE_DB:
        return 0.0
    lo, hi = window_db[0] + margin_db, window_db[1] - margin_db
    if lo > hi:  # a window narrower than twice the margin: aim at its middle
        lo = hi = 0.5 * (window_db[0] + window_db[1])
    if predicted_rms_db > hi:
        return hi - predicted_rms_db
    if predicted_rms_db < lo:
        return lo - predicted_rms_db
    return 0.0


def _render(assembly: Assembly, out_path: Path, out_rate: int, gain_db: float, ceiling_dbtp: float,
            options: ExportOptions, chapter_seed: int) -> Mastered:
    gain = 10.0 ** (gain_db / 20.0)
    resampler = None
    if out_rate != assembly.sample_rate:
        resampler = soxr.ResampleStream(assembly.sample_rate, out_rate, 1, dtype="float32", quality="HQ")
    limiter = TruePeakLimiter(out_rate, ceiling_dbtp)
    tone = RoomTone(options.room_tone_dbfs, seed=options.seed * 100003 + chapter_seed)
    meter, peak = LoudnessMeter(out_rate), TruePeakMeter()
    energy = [0.0]  # sum of squares of everything written: the whole-file RMS ACX measures

    with RawWriter(out_path) as writer:
        def emit(y: np.ndarray) -> None:
            if len(y):
                y = (y + tone.next(len(y))).astype(np.float32)
                writer.write(y)
                meter.add(y)
                peak.add(y)
                energy[0] += float(np.dot(y.astype(np.float64), y.astype(np.float64)))

        for block in read_blocks(assembly.path):
            x = block * np.float32(gain)
            if resampler is not None:
                x = resampler.resample_chunk(x)
            emit(limiter.process(x))
        if resampler is not None:
            emit(limiter.process(resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)))
        emit(limiter.flush())
        n = writer.n_samples
    peak.flush()
    rms = power_db(energy[0] / n) if n else SILENCE_DB
    return Mastered(out_path, out_rate, n, gain_db, meter.integrated(), peak.peak_db, limiter.gain_reduction_db, 1,
                    rms_db=rms)


def _rms_guard(result: Mastered, target: float | None, rms_offset_db: float,
               window: tuple[float, float] | None) -> tuple[float, float]:
    """(shift of the loudness target for the RMS window, predicted RMS at the unshifted target)."""
    if target is None or window is None or result.loudness_lufs <= SILENCE_DB:
        return 0.0, SILENCE_DB
    # Loudness and RMS both move dB for dB with the gain: predict the RMS at the loudness target.
    rms_at_target = result.rms_db + rms_offset_db + (target - result.loudness_lufs)
    return rms_shift_db(rms_at_target, window), rms_at_target


def master_chapter(assembly: Assembly, out_path: Path, options: ExportOptions, ceiling_dbtp: float,
                   chapter_seed: int, target_offset_db: float = 0.0, rms_offset_db: float = 0.0) -> Mastered:
    """Normalise ``assembly`` to the target loudness (+ ``target_offset_db``) under ``ceiling_dbtp``.

    When the preset has an RMS window, the target is moved if the RMS at the target (+ ``rms_offset_db``,
    what the codec is known to do to RMS) would leave it (see the module docstring).
    When the limiter did not act, loudness is linear in gain: a small correction is then returned as
    ``post_gain_db`` (applied by the encoder) instead of rendering again, if the peak has room for it.
    """
    out_rate = options.sample_rate or assembly.sample_rate
    target = None if options.target_lufs is None else options.target_lufs + target_offset_db
    if target is None or assembly.loudness_lufs <= SILENCE_DB:
        gain_db = 0.0
    else:
        gain_db = float(np.clip(target - assembly.loudness_lufs, -_MAX_GAIN_DB, _MAX_GAIN_DB))
    result = _render(assembly, out_path, out_rate, gain_db, ceiling_dbtp, options, chapter_seed)
    passes = 1
    if assembly.loudness_lufs <= SILENCE_DB:
        target = None  # nothing but room tone: never amplify it to programme level
    base, window = target, options.rules.get("rms_db")
    shift_db, rms_at_target = _rms_guard(result, base, rms_offset_db, window)
    target = None if base is None else base + shift_db
    while (target is not None and result.loudness_lufs > SILENCE_DB and passes < _MAX_PASSES
           and abs(result.loudness_lufs - target) > options.loudness_tolerance_lu
           and abs(gain_db) < _MAX_GAIN_DB):
        correction = target - result.loudness_lufs
        if result.limiter_reduction_db == 0.0 and result.true_peak_dbtp + correction <= ceiling_dbtp:
            result.post_gain_db = correction
            break
        gain_db = float(np.clip(gain_db + correction, -_MAX_GAIN_DB, _MAX_GAIN_DB))
        result = _render(assembly, out_path, out_rate, gain_db, ceiling_dbtp, options, chapter_seed)
        passes += 1
        if shift_db != 0.0:  # limiting changes how RMS relates to loudness: predict again from this render
            shift_db, rms_at_target = _rms_guard(result, base, rms_offset_db, window)
            target = None if base is None else base + shift_db
    result.passes, result.rms_shift_db, result.rms_at_target_db = passes, shift_db, rms_at_target
    return result
