"""renderer.audio: file loading, resampling, durations, SoVITS spectrogram and Kaldi fbank."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from renderer.audio import (
    duration_seconds,
    fbank_frame_count,
    kaldi_fbank,
    kaldi_mel_banks,
    linear_spectrogram,
    load_audio,
    reference_waveforms,
    resample,
    sinc_resample,
    upstream_peak_normalize,
)
from renderer.errors import VoiceError


def _tone(freq_hz: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def _peak_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


# ------------------------------------------------------------------------------------------ loading


def test_load_wav_same_rate_is_exact_float32(tmp_path: Path) -> None:
    x = _tone(440, 0.5, 16000)
    path = tmp_path / "a.wav"
    sf.write(path, x, 16000, subtype="FLOAT")
    y = load_audio(path, 16000)
    assert y.dtype == np.float32 and y.ndim == 1
    np.testing.assert_array_equal(y, x)


def test_load_downmixes_stereo_by_mean(tmp_path: Path) -> None:
    left, right = _tone(300, 0.25, 22050), _tone(700, 0.25, 22050, amplitude=0.2)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 22050, subtype="FLOAT")
    y = load_audio(path, 22050)
    np.testing.assert_allclose(y, (left + right) / 2, atol=1e-7)


@pytest.mark.parametrize(("src", "dst"), [(44100, 16000), (48000, 32000), (16000, 32000)])
def test_resampling_keeps_length_and_pitch(tmp_path: Path, src: int, dst: int) -> None:
    x = _tone(440, 1.0, src)
    path = tmp_path / "tone.wav"
    sf.write(path, x, src, subtype="PCM_16")
    y = load_audio(path, dst)
    assert abs(len(y) - round(len(x) * dst / src)) <= 1
    assert abs(_peak_hz(y, dst) - 440) < 2.0
    # High-quality resampling: the tone's level survives (no audible loss), away from the edges.
    core = y[len(y) // 4 : 3 * len(y) // 4]
    assert np.sqrt(np.mean(core**2)) == pytest.approx(0.5 / np.sqrt(2), rel=2e-3)


@pytest.mark.parametrize("n_samples", [1001, 44099, 12345])
def test_soxr_length_is_librosa_fixed_length(n_samples: int) -> None:
    x = np.random.default_rng(n_samples).standard_normal(n_samples).astype(np.float32) * 0.1
    for src, dst in ((44100, 16000), (22050, 32000), (48000, 16000)):
        assert len(resample(x, src, dst)) == int(np.ceil(n_samples * dst / src))


def test_resample_identity_and_validation() -> None:
    x = _tone(100, 0.1, 8000)
    same = resample(x, 8000, 8000)
    np.testing.assert_array_equal(same, x)
    assert same is not x
    with pytest.raises(ValueError):
        resample(np.zeros((2, 10), np.float32), 8000, 16000)
    with pytest.raises(ValueError):
        resample(x, 0, 16000)


@pytest.mark.parametrize(("ext", "fmt", "subtype"), [("flac", "FLAC", "PCM_16"), ("ogg", "OGG", "VORBIS"),
                                                     ("mp3", "MP3", "MPEG_LAYER_III")])
def test_compressed_formats_load(tmp_path: Path, ext: str, fmt: str, subtype: str) -> None:
    x = _tone(440, 1.0, 32000, amplitude=0.3)
    path = tmp_path / f"tone.{ext}"
    sf.write(path, x, 32000, format=fmt, subtype=subtype)
    y = load_audio(path, 16000)
    # Lossy codecs add or drop a few ms of padding; the content must still be the same tone.
    assert abs(len(y) - 16000) < 0.1 * 16000
    assert abs(_peak_hz(y, 16000) - 440) < 3.0
    assert duration_seconds(path) == pytest.approx(1.0, abs=0.1)


def test_duration_from_header(tmp_path: Path) -> None:
    path = tmp_path / "d.wav"
    sf.write(path, np.zeros(12345, np.float32), 24000)
    assert duration_seconds(path) == pytest.approx(12345 / 24000)


def test_missing_garbage_and_empty_files_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.wav"
    with pytest.raises(VoiceError, match="nope.wav"):
        load_audio(missing, 16000)
    with pytest.raises(VoiceError, match="nope.wav"):
        duration_seconds(missing)
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"this is not audio at all" * 10)
    with pytest.raises(VoiceError, match="garbage.wav"):
        load_audio(garbage, 16000)
    with pytest.raises(VoiceError, match="garbage.wav"):
        duration_seconds(garbage)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    with pytest.raises(VoiceError, match="empty.wav.*no samples"):
        load_audio(empty, 16000)


def test_upstream_peak_normalize() -> None:
    quiet = torch.tensor([0.5, -0.9])
    assert torch.equal(upstream_peak_normalize(quiet), quiet)
    loud = torch.tensor([1.5, -0.3])
    torch.testing.assert_close(upstream_peak_normalize(loud), loud / 1.5)
    very_loud = torch.tensor([4.0, -1.0])
    torch.testing.assert_close(upstream_peak_normalize(very_loud), very_loud / 2.0)


# ------------------------------------------------------------------------------ SoVITS spectrogram


def _numpy_spectrogram(wav: np.ndarray) -> np.ndarray:
    """spectrogram_torch(2048, hop 640, win 2048, center=False) from its definition, float64."""
    pad = (2048 - 640) // 2
    x = np.pad(wav.astype(np.float64), (pad, pad), mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(2048) / 2048)  # periodic Hann
    frames = [x[i : i + 2048] * window for i in range(0, len(x) - 2048 + 1, 640)]
    spectrum = np.fft.rfft(np.stack(frames), axis=1)
    return np.sqrt(spectrum.real**2 + spectrum.imag**2 + 1e-8).T  # [1025, T]


def test_linear_spectrogram_shape_and_values() -> None:
    rng = np.random.default_rng(0)
    wav = (0.3 * rng.standard_normal(32000 + 777)).astype(np.float32)
    spec = linear_spectrogram(torch.from_numpy(wav)[None], normalize=False)  # the bare STFT formula
    n_frames = (len(wav) + 1408 - 2048) // 640 + 1
    assert spec.shape == (1, 1025, n_frames)
    reference = _numpy_spectrogram(wav)
    np.testing.assert_allclose(spec[0].numpy(), reference, atol=2e-4, rtol=1e-4)


def test_linear_spectrogram_matches_upstream_vectors(conformance) -> None:
    vectors = conformance.arrays
    for wav_key, spec_key in (("sovits_ref_wav", "sovits_ref_spec"), ("sovits_ref2_wav", "sovits_ref2_spec")):
        spec = linear_spectrogram(torch.from_numpy(vectors[wav_key]))
        expected = torch.from_numpy(vectors[spec_key])
        assert spec.shape == expected.shape
        assert float((spec - expected).abs().max()) <= 1e-3


# ------------------------------------------------------------------------------------- Kaldi fbank


def _numpy_kaldi_fbank(wav: np.ndarray, num_mel_bins: int = 80) -> np.ndarray:
    """Kaldi compute-fbank-feats (16 kHz, 25/10 ms, povey, preemph 0.97, dc removal, snip edges, power,
    low 20 Hz, high = Nyquist, log with float-epsilon floor), written out from the Kaldi formulas."""
    mel = lambda f: 1127.0 * np.log(1.0 + f / 700.0)  # noqa: E731
    n = 400
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / (n - 1))
    window = hann**0.85
    m_low, m_high = mel(20.0), mel(8000.0)
    delta = (m_high - m_low) / (num_mel_bins + 1)
    banks = np.zeros((num_mel_bins, 257))
    for b in range(num_mel_bins):
        left, center, right = m_low + b * delta, m_low + (b + 1) * delta, m_low + (b + 2) * delta
        for k in range(256):
            m = mel(k * 16000 / 512)
            if left < m <= center:
                banks[b, k] = (m - left) / (center - left)
            elif center < m < right:
                banks[b, k] = (right - m) / (right - center)
    rows = []
    for start in range(0, len(wav) - n + 1, 160):
        x = wav[start : start + n].astype(np.float64)
        x = x - x.mean()
        shifted = np.concatenate([[x[0]], x[:-1]])
        x = (x - 0.97 * shifted) * window
        power = np.abs(np.fft.rfft(np.concatenate([x, np.zeros(512 - n)]))) ** 2
        rows.append(np.log(np.maximum(banks @ power, np.finfo(np.float32).eps)))
    return np.stack(rows)


@pytest.mark.parametrize("n_samples", [400, 401, 559, 560, 16000, 16000 * 2 + 123])
def test_fbank_frame_count(n_samples: int) -> None:
    wav = torch.randn(n_samples) * 0.1
    feats = kaldi_fbank(wav, num_mel_bins=80)
    assert feats.shape == (1 + (n_samples - 400) // 160, 80)
    assert fbank_frame_count(n_samples) == feats.shape[0]
    assert feats.dtype == torch.float32


def test_fbank_matches_numpy_derivation() -> None:
    rng = np.random.default_rng(3)
    t = np.arange(16000 * 1 + 321) / 16000
    wav = (0.2 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
    ours = kaldi_fbank(torch.from_numpy(wav)).numpy()
    reference = _numpy_kaldi_fbank(wav)
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() < 1e-4


@pytest.mark.parametrize("freq_hz", [300.0, 1000.0, 3500.0])
def test_fbank_pure_tone_lands_in_its_mel_bin(freq_hz: float) -> None:
    wav = torch.from_numpy(_tone(freq_hz, 0.5, 16000))
    feats = kaldi_fbank(wav)
    loudest = int(feats.mean(dim=0).argmax())
    # The filter whose triangle peaks closest to the tone (in mel) must carry the most energy.
    banks = kaldi_mel_banks(80).numpy()
    k = int(round(freq_hz * 512 / 16000))
    expected = int(np.argmax(banks[:, k]))
    assert abs(loudest - expected) <= 1
    assert float(feats.mean(dim=0)[loudest]) > float(feats.mean()) + 5.0


def test_fbank_mel_banks_layout() -> None:
    banks = kaldi_mel_banks(80)
    assert banks.shape == (80, 257)
    assert float(banks[:, 256].abs().sum()) == 0.0  # Nyquist column is zero in Kaldi
    assert float(banks[:, 0].abs().sum()) == 0.0  # DC sits below the 20 Hz low cut-off
    assert float(banks.max()) <= 1.0 and float(banks.min()) >= 0.0


def test_fbank_accepts_batched_mono_and_rejects_short() -> None:
    wav = torch.randn(4000) * 0.1
    torch.testing.assert_close(kaldi_fbank(wav[None]), kaldi_fbank(wav))
    with pytest.raises(VoiceError, match="too short"):
        kaldi_fbank(torch.zeros(399))
    silent = kaldi_fbank(torch.zeros(800))
    # Silence hits the epsilon floor, never -inf.
    assert torch.isfinite(silent).all()
    assert float(silent.max()) == pytest.approx(float(np.log(np.finfo(np.float32).eps)))


# ------------------------------------------------------------------------- torchaudio-style sinc


def _direct_sinc(x: np.ndarray, from_rate: int, to_rate: int, width: int = 6, rolloff: float = 0.99) -> np.ndarray:
    """y[n] = sum_i x[i] h(i/from - n/to), h = windowed sinc cut at rolloff*min(rate)/2, written out directly."""
    g = np.gcd(from_rate, to_rate)
    orig, new = from_rate // g, to_rate // g
    base = min(orig, new) * rolloff
    n_out = int(np.ceil(new * len(x) / orig))
    y = np.zeros(n_out)
    i = np.arange(len(x))
    for n in range(n_out):
        t = (i / orig - n / new) * base
        inside = np.abs(t) <= width
        sinc = np.sinc(t[inside])  # sin(pi t)/(pi t)
        window = np.cos(np.pi * t[inside] / (2 * width)) ** 2
        y[n] = np.sum(x[inside] * sinc * window) * base / orig
    return y


@pytest.mark.parametrize(("src", "dst"), [(32000, 16000), (44100, 32000), (16000, 24000)])
def test_sinc_resample_matches_direct_formula(src: int, dst: int) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal(401).astype(np.float32) * 0.3
    ours = resample(x, src, dst, method="sinc")
    assert len(ours) == int(np.ceil(len(x) * dst / src))
    np.testing.assert_allclose(ours, _direct_sinc(x.astype(np.float64), src, dst), atol=2e-5)


def test_sinc_resample_tensor_batch_and_pitch() -> None:
    x = torch.from_numpy(np.stack([_tone(440, 0.5, 32000), _tone(1000, 0.5, 32000)]))
    y = sinc_resample(x, 32000, 16000)
    assert y.shape == (2, 8000) and y.dtype == torch.float32
    assert abs(_peak_hz(y[0].numpy(), 16000) - 440) < 3 and abs(_peak_hz(y[1].numpy(), 16000) - 1000) < 3
    torch.testing.assert_close(sinc_resample(x[0], 32000, 16000), y[0])
    with pytest.raises(ValueError):
        resample(x[0].numpy(), 32000, 16000, method="linear")


def test_reference_waveforms_follow_upstream_recipe(tmp_path: Path) -> None:
    rate = 44100
    left = _tone(220, 1.0, rate, amplitude=1.5)  # over full scale: upstream divides by min(2, peak)
    path = tmp_path / "ref.wav"
    sf.write(path, np.stack([left, left], axis=1), rate, subtype="FLOAT")
    ref = reference_waveforms(path)
    expected32 = sinc_resample(torch.from_numpy(left), rate, 32000)
    assert ref.wav32k.shape == (1, 32000)
    torch.testing.assert_close(ref.wav32k[0], expected32 / expected32.abs().max())
    torch.testing.assert_close(ref.sv16k, sinc_resample(ref.wav32k[0], 32000, 16000))
    assert ref.sv16k.shape == (16000,)
    np.testing.assert_array_equal(ref.hubert16k, load_audio(path, 16000))
    assert np.abs(ref.hubert16k).max() > 1.4  # HuBERT input is not peak-normalised upstream
    assert ref.duration_seconds == pytest.approx(1.0)
