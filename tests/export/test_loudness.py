"""Our BS.1770-4 meter and true-peak meter against the standard's figures and pyloudnorm."""

from __future__ import annotations

import numpy as np
import pytest

from export.limiter import TruePeakLimiter
from export.loudness import (
    LoudnessMeter,
    integrated_loudness,
    k_weighting_sos,
    true_peak_db,
)
from tests.export.synth import speech_like


def test_k_weighting_matches_the_48k_coefficients_of_bs1770() -> None:
    sos = k_weighting_sos(48000)
    np.testing.assert_allclose(sos[0, :3], [1.53512485958697, -2.69169618940638, 1.19839281085285], atol=1e-9)
    np.testing.assert_allclose(sos[0, 4:], [-1.69065929318241, 0.73248077421585], atol=1e-9)
    np.testing.assert_allclose(sos[1, :3], [1.0, -2.0, 1.0])
    np.testing.assert_allclose(sos[1, 4:], [-1.99004745483398, 0.99007225036621], atol=1e-9)


@pytest.mark.parametrize("rate", [32000, 44100, 48000])
def test_full_scale_997_hz_sine_reads_minus_3_01_lufs(rate: int) -> None:
    t = np.arange(5 * rate) / rate
    assert integrated_loudness(np.sin(2 * np.pi * 997 * t), rate) == pytest.approx(-3.01, abs=0.05)


@pytest.mark.parametrize("rate", [32000, 44100])
def test_agrees_with_pyloudnorm(rate: int) -> None:
    pyln = pytest.importorskip("pyloudnorm")
    rng = np.random.default_rng(3)
    x = np.concatenate([speech_like(4.0, rng, rate) * 0.05, np.zeros(rate), speech_like(3.0, rng, rate) * 0.01])
    ours = integrated_loudness(x, rate)
    theirs = pyln.Meter(rate).integrated_loudness(x)
    # pyloudnorm approximates the shelf (1500 Hz / +4 dB) instead of the exact curve: ~0.05 LU apart.
    assert ours == pytest.approx(theirs, abs=0.15)


def test_gates_ignore_silence_and_much_quieter_passages() -> None:
    rate = 32000
    rng = np.random.default_rng(1)
    speech = speech_like(5.0, rng, rate) * 0.1
    base = integrated_loudness(speech, rate)
    with_silence = integrated_loudness(np.concatenate([speech, np.zeros(5 * rate)]), rate)
    with_whisper = integrated_loudness(np.concatenate([speech, speech * 10 ** (-30 / 20)]), rate)
    # Only the few 400 ms blocks straddling the edge count partly; an ungated mean would drop 3 LU.
    assert with_silence == pytest.approx(base, abs=0.3)  # absolute gate
    assert with_whisper == pytest.approx(base, abs=0.3)  # relative gate (-10 LU)
    ungated_energy_mean = 10 * np.log10((1 + 10 ** (-3)) / 2)
    assert with_whisper > base + ungated_energy_mean + 1  # an ungated mean would have dropped ~3 LU


def test_streaming_meter_equals_one_shot() -> None:
    rate = 44100
    x = speech_like(6.0, np.random.default_rng(2), rate) * 0.1
    meter = LoudnessMeter(rate)
    pos, rng = 0, np.random.default_rng(0)
    while pos < len(x):
        step = int(rng.integers(1, 20000))
        meter.add(x[pos : pos + step])
        pos += step
    assert meter.integrated() == pytest.approx(integrated_loudness(x, rate), abs=1e-9)


def test_true_peak_sees_intersample_peaks() -> None:
    rate = 48000
    t = np.arange(rate) / rate
    x = np.sin(2 * np.pi * rate / 4 * t + np.pi / 4)  # samples at ±0.707, true peak 1.0
    assert 20 * np.log10(np.abs(x).max()) == pytest.approx(-3.01, abs=0.01)
    assert true_peak_db(x) == pytest.approx(0.0, abs=0.3)


@pytest.mark.parametrize("block", [1000, 4096, 100000])
def test_limiter_holds_the_ceiling_and_keeps_length(block: int) -> None:
    rate = 44100
    rng = np.random.default_rng(5)
    x = np.clip(rng.standard_normal(3 * rate) * 0.5, -1, 1)  # hard-clipped, far over the ceiling
    x[: rate // 2] *= 0.01  # a quiet start that must pass unchanged
    limiter = TruePeakLimiter(rate, -3.0)
    y = np.concatenate([limiter.process(x[i : i + block]) for i in range(0, len(x), block)] + [limiter.flush()])
    assert len(y) == len(x)
    assert true_peak_db(y) <= -3.0 + 0.05
    np.testing.assert_allclose(y[: rate // 4], x[: rate // 4], atol=1e-6)


def test_sparse_true_peak_meter_equals_full_oversampling() -> None:
    import scipy.signal

    from export.loudness import TruePeakMeter, _interpolator

    rate = 44100
    rng = np.random.default_rng(9)
    x = speech_like(4.0, rng, rate) * 0.05
    x[70000:70040] += 0.6 * np.sin(np.arange(40) * 2.9)  # an isolated near-Nyquist burst
    full = np.abs(scipy.signal.upfirdn(_interpolator(), x, up=4)).max()
    meter, frames, pos = TruePeakMeter(), [], 0
    while pos < len(x):
        step = int(rng.integers(500, 30000)) // 882 * 882 + 882
        frames.append(meter.add_frames(x[pos : pos + step], 882))
        pos += step
    meter.flush()
    assert meter.peak == pytest.approx(max(full, np.abs(x).max()), rel=1e-9)
    per_frame = np.concatenate(frames)
    assert per_frame.argmax() == 70000 // 882 or per_frame.argmax() == 70040 // 882
    streamed = TruePeakMeter()
    for i in range(0, len(x), 3000):
        streamed.add(x[i : i + 3000])
    streamed.flush()
    assert streamed.peak == pytest.approx(meter.peak, rel=1e-9)
