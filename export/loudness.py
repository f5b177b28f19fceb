"""ITU-R BS.1770-4 loudness, true peak and RMS — streaming meters, no third-party loudness library.

Loudness: K-weighting (high shelf + high pass), mean square over 400 ms blocks with 75 % overlap,
absolute gate at -70 LKFS and relative gate at -10 LU below the absolutely-gated mean. The meter keeps
only one float per 100 ms sub-block, so a 10-hour chapter costs ~3 MB.

True peak: 4x oversampling with a polyphase FIR interpolator (BS.1770-4 Annex 2 approach), streaming.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import scipy.signal

ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
_BLOCK_SUBBLOCKS = 4  # 400 ms block = 4 x 100 ms hop (75 % overlap)
OVERSAMPLING = 4
_TAPS_PER_PHASE = 12
SILENCE_DB = -200.0  # what a level of exactly zero reads as (finite, JSON-friendly)


def db(value: float) -> float:
    """20·log10 of an amplitude, floored at :data:`SILENCE_DB`."""
    return 20.0 * math.log10(value) if value > 10.0 ** (SILENCE_DB / 20.0) else SILENCE_DB


def power_db(mean_square: float) -> float:
    """10·log10 of a mean square, floored at :data:`SILENCE_DB`."""
    return 10.0 * math.log10(mean_square) if mean_square > 10.0 ** (SILENCE_DB / 10.0) else SILENCE_DB


def k_weighting_sos(sample_rate: int) -> np.ndarray:
    """K-weighting as two biquads [2, 6] for any rate.

    The analog prototype parameters (shelf f0/gain/Q, high-pass f0/Q) reproduce the 48 kHz coefficients
    tabulated in BS.1770-4 when bilinear-transformed at 48 kHz; at other rates they give the same curve.
    """
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / sample_rate)
    vh = 10.0 ** (gain_db / 20.0)
    vb = vh**0.4996667741545416
    a0 = 1.0 + k / q + k * k
    shelf_b = [(vh + vb * k / q + k * k) / a0, 2.0 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0]
    shelf_a = [1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0]
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / sample_rate)
    a0 = 1.0 + k / q + k * k
    hp_b = [1.0, -2.0, 1.0]
    hp_a = [1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0]
    return np.array([shelf_b + shelf_a, hp_b + hp_a], dtype=np.float64)


def gated_loudness(subblock_energy: np.ndarray) -> float:
    """Integrated loudness (LUFS) from 100 ms sub-block mean squares of the K-weighted signal.

    Returns SILENCE_DB when no block passes the gates (silence, or shorter than one 400 ms block).
    """
    e = np.asarray(subblock_energy, dtype=np.float64)
    if len(e) < _BLOCK_SUBBLOCKS:
        return SILENCE_DB
    # Block j covers sub-blocks j..j+3: a moving mean of width 4.
    c = np.concatenate([[0.0], np.cumsum(e)])
    blocks = (c[_BLOCK_SUBBLOCKS:] - c[:-_BLOCK_SUBBLOCKS]) / _BLOCK_SUBBLOCKS
    with np.errstate(divide="ignore"):
        block_lufs = -0.691 + 10.0 * np.log10(blocks)
    above_abs = blocks[block_lufs > ABSOLUTE_GATE_LUFS]
    if len(above_abs) == 0:
        return SILENCE_DB
    relative_gate = -0.691 + 10.0 * math.log10(float(above_abs.mean())) + RELATIVE_GATE_LU
    gated = blocks[(block_lufs > ABSOLUTE_GATE_LUFS) & (block_lufs > relative_gate)]
    return -0.691 + 10.0 * math.log10(float(gated.mean()))


class LoudnessMeter:
    """Streaming BS.1770-4 meter for one mono channel; feed blocks of any length with :meth:`add`."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.subblock_samples = max(1, int(round(0.1 * sample_rate)))
        self._sos = k_weighting_sos(sample_rate)
        self._zi = np.zeros((2, 2), dtype=np.float64)
        self._partial_sum = 0.0
        self._partial_count = 0
        self._energies: list[float] = []

    def add(self, samples: np.ndarray) -> None:
        if len(samples) == 0:
            return
        weighted, self._zi = scipy.signal.sosfilt(self._sos, samples.astype(np.float64), zi=self._zi)
        sq = weighted * weighted
        pos = 0
        need = self.subblock_samples - self._partial_count
        if self._partial_count and len(sq) >= need:
            self._energies.append((self._partial_sum + float(sq[:need].sum())) / self.subblock_samples)
            self._partial_sum, self._partial_count, pos = 0.0, 0, need
        elif self._partial_count:
            self._partial_sum += float(sq.sum())
            self._partial_count += len(sq)
            return
        n_full = (len(sq) - pos) // self.subblock_samples
        if n_full:
            full = sq[pos : pos + n_full * self.subblock_samples].reshape(n_full, self.subblock_samples)
            self._energies.extend(full.mean(axis=1).tolist())
            pos += n_full * self.subblock_samples
        self._partial_sum = float(sq[pos:].sum())
        self._partial_count = len(sq) - pos

    @property
    def subblock_energies(self) -> np.ndarray:
        return np.asarray(self._energies, dtype=np.float64)

    def integrated(self) -> float:
        return gated_loudness(self.subblock_energies)


def integrated_loudness(samples: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness (LUFS) of a whole mono signal."""
    meter = LoudnessMeter(sample_rate)
    meter.add(samples)
    return meter.integrated()


def k_weighted_mean_square_lufs(samples: np.ndarray, sample_rate: int) -> float:
    """Ungated K-weighted level in LUFS — for snippets shorter than one 400 ms gating block."""
    if len(samples) == 0:
        return SILENCE_DB
    weighted = scipy.signal.sosfilt(k_weighting_sos(sample_rate), samples.astype(np.float64))
    return -0.691 + power_db(float(np.mean(weighted * weighted)))


@functools.lru_cache(maxsize=1)
def _interpolator() -> np.ndarray:
    # Low-pass at the original Nyquist, gain OVERSAMPLING so interpolated samples keep their level.
    taps = OVERSAMPLING * _TAPS_PER_PHASE
    return scipy.signal.firwin(taps, 1.0 / OVERSAMPLING, window=("kaiser", 6.0)) * OVERSAMPLING


@functools.lru_cache(maxsize=1)
def interpolation_gain_bound() -> float:
    """Largest |interpolated sample| / max|x| any input can produce (the worst phase's L1 norm)."""
    h = _interpolator()
    return float(max(np.abs(h[phase::OVERSAMPLING]).sum() for phase in range(OVERSAMPLING)))


def _runs(indices: np.ndarray) -> list[tuple[int, int]]:
    """Sorted integer indices → [start, end) runs of consecutive values."""
    if len(indices) == 0:
        return []
    breaks = np.flatnonzero(np.diff(indices) > 1)
    starts = np.concatenate([[indices[0]], indices[breaks + 1]])
    ends = np.concatenate([indices[breaks], [indices[-1]]]) + 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def _segment_sample_peaks(x: np.ndarray, seg: int, before: float = 0.0) -> np.ndarray:
    """max|x| per segment of ``seg`` samples (last one shorter), dilated by the neighbouring segments.

    Interpolated values near a segment edge depend on up to _TAPS_PER_PHASE samples of the neighbour,
    so the dilated value times :func:`interpolation_gain_bound` bounds the segment's true peak.
    """
    n_seg = -(-len(x) // seg)
    padded = np.zeros(n_seg * seg)
    padded[: len(x)] = np.abs(x)
    peaks = padded.reshape(n_seg, seg).max(axis=1)
    dilated = peaks.copy()
    dilated[1:] = np.maximum(dilated[1:], peaks[:-1])
    dilated[:-1] = np.maximum(dilated[:-1], peaks[1:])
    dilated[0] = max(dilated[0], before)
    return dilated


class TruePeakMeter:
    """Streaming 4x-oversampled peak meter.

    Oversampling costs ~12 multiply-adds per output sample, so only segments whose sample peak could
    matter are interpolated; for the others the bound ``sample peak x interpolation_gain_bound()`` is
    used, which is never below the truth.
    """

    def __init__(self) -> None:
        self._h = _interpolator()
        self._bound = interpolation_gain_bound()
        self._history = np.zeros(_TAPS_PER_PHASE, dtype=np.float64)
        self.peak = 0.0

    def _segment_peaks(self, x: np.ndarray, seg: int, threshold: float) -> np.ndarray:
        """True peak per segment of ``seg`` samples: exact where it may exceed ``threshold``, else a bound."""
        h_len = _TAPS_PER_PHASE
        ext = np.concatenate([self._history, x])
        out = _segment_sample_peaks(x, seg, float(np.abs(self._history).max())) * self._bound
        for first, last in _runs(np.flatnonzero(out > threshold)):
            a, b = first * seg, min(len(x), last * seg)
            up = scipy.signal.upfirdn(self._h, ext[a : h_len + b], up=OVERSAMPLING)
            # Outputs from 4·H on depend only on samples inside the slice (steady state).
            steady = np.abs(up[OVERSAMPLING * h_len : OVERSAMPLING * (h_len + b - a)]).reshape(b - a, OVERSAMPLING)
            per_sample = np.maximum(steady.max(axis=1), np.abs(x[a:b]))
            padded = np.zeros((last - first) * seg)
            padded[: b - a] = per_sample
            out[first:last] = padded.reshape(last - first, seg).max(axis=1)
        self._history = ext[-h_len:]
        return out

    def add(self, samples: np.ndarray) -> None:
        """Feed samples [N] (any length)."""
        if len(samples) == 0:
            return
        peaks = self._segment_peaks(samples.astype(np.float64), 1024, self.peak)
        self.peak = max(self.peak, float(peaks.max()))

    def add_frames(self, samples: np.ndarray, frame: int, detail_db: float = 20.0) -> np.ndarray:
        """Feed samples [N]; returns the true peak of each ``frame``-sample frame [ceil(N / frame)].

        Exact for frames within ``detail_db`` of the loudest peak so far, an upper bound for quieter ones
        (they cannot decide the maximum of any range that also holds louder programme).
        """
        if len(samples) == 0:
            return np.zeros(0, dtype=np.float64)
        peaks = self._segment_peaks(samples.astype(np.float64), frame, self.peak * 10.0 ** (-detail_db / 20.0))
        self.peak = max(self.peak, float(peaks.max()))
        return peaks

    def flush(self) -> None:
        """Account for the interpolator's ring-out after the last sample."""
        self.add(np.zeros(_TAPS_PER_PHASE, dtype=np.float64))

    @property
    def peak_db(self) -> float:
        return db(self.peak)


def sparse_true_peak_envelope(x: np.ndarray, threshold: float, seg: int = 256) -> np.ndarray:
    """:func:`true_peak_envelope` where it can exceed ``threshold``; |x| (<= threshold there) elsewhere."""
    envelope = np.abs(x)
    bound = interpolation_gain_bound()
    context = 2 * _TAPS_PER_PHASE
    for first, last in _runs(np.flatnonzero(_segment_sample_peaks(x, seg) * bound > threshold)):
        a, b = first * seg, min(len(x), last * seg)
        lo, hi = max(0, a - context), min(len(x), b + context)
        envelope[a:b] = true_peak_envelope(x[lo:hi])[a - lo : b - lo]
    return envelope


def true_peak_envelope(samples: np.ndarray) -> np.ndarray:
    """|x| interpolated 4x, reduced to one value per input sample (max over the 4 phases and ±1 sample).

    Shape [N] for input [N]. The interpolator's group delay is compensated, and the ±1 sample dilation
    absorbs the fractional part, so the envelope upper-bounds the true peak around every sample.
    """
    h = _interpolator()
    up = scipy.signal.upfirdn(h, samples.astype(np.float64), up=OVERSAMPLING)
    delay = (len(h) - 1) // 2
    aligned = np.abs(up[delay : delay + OVERSAMPLING * len(samples)])
    per_sample = aligned.reshape(len(samples), OVERSAMPLING).max(axis=1)
    per_sample = np.maximum(per_sample, np.abs(samples))
    dilated = per_sample.copy()
    dilated[1:] = np.maximum(dilated[1:], per_sample[:-1])
    dilated[:-1] = np.maximum(dilated[:-1], per_sample[1:])
    return dilated


def true_peak_db(samples: np.ndarray) -> float:
    meter = TruePeakMeter()
    meter.add(samples)
    meter.flush()
    return meter.peak_db


def rms_db(samples: np.ndarray) -> float:
    if len(samples) == 0:
        return SILENCE_DB
    x = samples.astype(np.float64)
    return power_db(float(np.mean(x * x)))
