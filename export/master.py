"""Pass 2: chapter signal → delivery signal (gain to the loudness target, resample, true-peak limit, room tone).

Streams the pass-1 temp file block by block into a second raw float32 temp at the output rate. The limiter
takes a little loudness off peaky material, so the pass is repeated with a corrected gain until the
*limited* output is within the tolerance of the target (usually one or two runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.signal
import soxr

from export.assemble import Assembly
from export.limiter import TruePeakLimiter
from export.loudness import SILENCE_DB, LoudnessMeter, TruePeakMeter
from export.options import ExportOptions
from export.rawfile import RawWriter, read_blocks

_MAX_PASSES = 4
_MAX_GAIN_DB = 40.0  # a near-silent chapter is not blown up into pure noise
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

    @property
    def loudness_after_post_gain(self) -> float:
        return self.loudness_lufs + self.post_gain_db


def _render(assembly: Assembly, out_path: Path, out_rate: int, gain_db: float, ceiling_dbtp: float,
            options: ExportOptions, chapter_seed: int) -> Mastered:
    gain = 10.0 ** (gain_db / 20.0)
    resampler = None
    if out_rate != assembly.sample_rate:
        resampler = soxr.ResampleStream(assembly.sample_rate, out_rate, 1, dtype="float32", quality="HQ")
    limiter = TruePeakLimiter(out_rate, ceiling_dbtp)
    tone = RoomTone(options.room_tone_dbfs, seed=options.seed * 100003 + chapter_seed)
    meter, peak = LoudnessMeter(out_rate), TruePeakMeter()

    with RawWriter(out_path) as writer:
        def emit(y: np.ndarray) -> None:
            if len(y):
                y = (y + tone.next(len(y))).astype(np.float32)
                writer.write(y)
                meter.add(y)
                peak.add(y)

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
    return Mastered(out_path, out_rate, n, gain_db, meter.integrated(), peak.peak_db, limiter.gain_reduction_db, 1)


def master_chapter(assembly: Assembly, out_path: Path, options: ExportOptions, ceiling_dbtp: float,
                   chapter_seed: int, target_offset_db: float = 0.0) -> Mastered:
    """Normalise ``assembly`` to the target loudness (+ ``target_offset_db``) under ``ceiling_dbtp``.

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
    result.passes = passes
    return result
