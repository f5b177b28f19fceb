"""Streaming look-ahead true-peak limiter (no recursion, so it is fully vectorised).

Gain law, per sample n:  g_req[n] = min(1, ceiling / tp[n]) where tp is the 4x-oversampled envelope;
g_hold = moving minimum of g_req over ±hold; g = moving mean of g_hold over ±attack (attack <= hold).
Every window of the mean around a peak only contains values <= g_req at that peak, so the smoothed gain
never exceeds the required one there (the ceiling holds) while changing over 2·attack samples at most —
smooth enough not to click, short enough to stay transparent on speech.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage

from export.loudness import interpolation_gain_bound, sparse_true_peak_envelope


class TruePeakLimiter:
    """Feed blocks with :meth:`process`; output lags input by ``latency`` samples; :meth:`flush` at the end."""

    def __init__(self, sample_rate: int, ceiling_dbtp: float, attack_ms: float = 3.0, hold_ms: float = 12.0) -> None:
        self.ceiling = 10.0 ** (ceiling_dbtp / 20.0)
        self.attack = max(1, int(round(attack_ms * 1e-3 * sample_rate)))
        self.hold = max(self.attack, int(round(hold_ms * 1e-3 * sample_rate)))
        # Context each side: gain at n depends on g_req within ±(hold+attack); the envelope on ±16 samples.
        self.latency = self.hold + self.attack + 32
        self._buf = np.zeros(self.latency, dtype=np.float64)  # history (zeros before the start)
        self.gain_reduction_db = 0.0  # deepest reduction seen, for the report
        self._safe_peak = self.ceiling / interpolation_gain_bound()

    def process(self, block: np.ndarray) -> np.ndarray:
        self._buf = np.concatenate([self._buf, block.astype(np.float64)])
        c = self.latency
        if len(self._buf) < 3 * c:
            return np.zeros(0, dtype=np.float32)
        out = self._limit(self._buf)[c : len(self._buf) - c]
        self._buf = self._buf[len(self._buf) - 2 * c :]
        return out.astype(np.float32)

    def flush(self) -> np.ndarray:
        pending = len(self._buf) - self.latency
        out = self.process(np.zeros(2 * self.latency, dtype=np.float64))
        self._buf = np.zeros(self.latency, dtype=np.float64)
        return out[:pending]

    def _limit(self, x: np.ndarray) -> np.ndarray:
        if float(np.max(np.abs(x))) <= self._safe_peak:
            return x  # provably no interpolated sample can reach the ceiling: skip the oversampling
        envelope = sparse_true_peak_envelope(x, self.ceiling)
        required = np.minimum(1.0, self.ceiling / np.maximum(envelope, 1e-12))
        if required.min() >= 1.0:
            return x
        held = scipy.ndimage.minimum_filter1d(required, size=2 * self.hold + 1, mode="nearest")
        smooth = scipy.ndimage.uniform_filter1d(held, size=2 * self.attack + 1, mode="nearest")
        gain = np.minimum(smooth, held)  # guards float rounding in the mean
        self.gain_reduction_db = min(self.gain_reduction_db, 20.0 * float(np.log10(gain.min())))
        return x * gain
