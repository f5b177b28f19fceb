"""Audio input and the two spectral front ends GPT-SoVITS uses on a reference clip.

* :func:`load_audio` / :func:`resample` / :func:`duration_seconds`: decode a file (WAV, FLAC, OGG, MP3
  through libsndfile), downmix to mono float32 and resample. The default (soxr ``"HQ"``, output length
  fixed to ceil(n * ratio)) is the arithmetic of ``librosa.load(path, sr=...)``, how upstream reads the
  reference for HuBERT; ``method="sinc"`` (:func:`sinc_resample`) is ``torchaudio``'s windowed-sinc
  ``Resample``, how upstream reads it for the spectrogram and speaker verification.
  :func:`reference_waveforms` bundles the three.
* :func:`linear_spectrogram`: upstream ``spectrogram_torch(wav, 2048, 32000, 640, 2048, center=False)``,
  the SoVITS reference-encoder input.
* :func:`kaldi_fbank`: Kaldi ``compute-fbank-feats`` with the defaults of
  ``torchaudio.compliance.kaldi.fbank`` as upstream's speaker-verification code calls it
  (``num_mel_bins=80, sample_frequency=16000, dither=0``). torchaudio is not a dependency, so the
  recipe is re-implemented here from the Kaldi definitions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch

from renderer.errors import VoiceError
from renderer.models.spectrogram import linear_spectrogram  # re-exported: one implementation

__all__ = [
    "load_audio",
    "reference_waveforms",
    "ReferenceWaveforms",
    "resample",
    "sinc_resample",
    "duration_seconds",
    "upstream_peak_normalize",
    "linear_spectrogram",
    "kaldi_fbank",
    "kaldi_mel_banks",
    "fbank_frame_count",
    "check_reference_clip",
    "MIN_REF_SECONDS",
    "MAX_REF_SECONDS",
    "FBANK_WINDOW_SAMPLES",
    "FBANK_SHIFT_SAMPLES",
]

# Kaldi frame geometry at 16 kHz: 25 ms windows every 10 ms, FFT rounded up to a power of two.
FBANK_SAMPLE_RATE = 16000
FBANK_WINDOW_SAMPLES = 400
FBANK_SHIFT_SAMPLES = 160
FBANK_FFT_SIZE = 512
FBANK_PREEMPHASIS = 0.97
FBANK_LOW_HZ = 20.0
# Kaldi floors log arguments at numeric_limits<float>::epsilon().
FLOAT_EPSILON = float(np.finfo(np.float32).eps)


# --------------------------------------------------------------------------------------------- files


def _audio_error(path: Path, problem: str) -> VoiceError:
    return VoiceError(f"{path}: {problem}")


def load_audio(path: str | Path, sample_rate: int, *, quality: str = "HQ", method: str = "soxr") -> np.ndarray:
    """Decode ``path`` to mono float32 at ``sample_rate`` Hz.

    Channels are averaged (as librosa's ``to_mono``); resampling per :func:`resample` (``method``,
    ``quality``): soxr "HQ" = ``librosa.load``, ``"sinc"`` = ``torchaudio.load`` + ``Resample``.
    Raises :class:`VoiceError` naming the file when it is missing, undecodable or holds no samples.
    Returns float32 ``[n_samples]``.
    """
    path = Path(path)
    if sample_rate <= 0:
        raise _audio_error(path, f"invalid target sample rate {sample_rate}")
    if not path.is_file():
        raise _audio_error(path, "audio file not found")
    try:
        data, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise _audio_error(path, f"cannot decode audio ({exc})") from exc
    if data.size == 0 or data.shape[0] == 0:
        raise _audio_error(path, "audio file holds no samples")
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if not np.all(np.isfinite(mono)):
        raise _audio_error(path, "audio holds NaN or infinite samples")
    return resample(np.ascontiguousarray(mono), int(file_rate), int(sample_rate), quality=quality, method=method)


@dataclass(frozen=True)
class ReferenceWaveforms:
    """The three views of a reference clip that upstream GPT-SoVITS computes (v2 / v2Pro inference).

    ``wav32k``: [1, N32] float32 at 32 kHz (torchaudio-style resampling, then divided by
    min(2, peak) when the peak exceeds 1) → :func:`linear_spectrogram` for the reference encoder.
    ``sv16k``: [N16] float32, ``wav32k`` resampled to 16 kHz the same way → speaker verification.
    ``hubert16k``: [M] float32, the file read as ``librosa.load(sr=16000)`` does (soxr HQ, no peak
    scaling), *without* the 9600 trailing zeros upstream appends before HuBERT.
    """

    wav32k: torch.Tensor
    sv16k: torch.Tensor
    hubert16k: np.ndarray

    @property
    def duration_seconds(self) -> float:
        return self.wav32k.shape[-1] / 32000.0


def reference_waveforms(path: str | Path, sovits_rate: int = 32000) -> ReferenceWaveforms:
    """Load a reference clip exactly as upstream's ``get_spepc`` and ``get_tts_wav`` read it."""
    wav32k = torch.from_numpy(load_audio(path, sovits_rate, method="sinc"))[None]
    wav32k = upstream_peak_normalize(wav32k)
    sv16k = sinc_resample(wav32k[0], sovits_rate, 16000)
    return ReferenceWaveforms(wav32k=wav32k, sv16k=sv16k, hubert16k=load_audio(path, 16000))


def resample(x: np.ndarray, from_rate: int, to_rate: int, *, quality: str = "HQ",
             method: str = "soxr") -> np.ndarray:
    """Resample mono ``x`` [n] (float) from ``from_rate`` to ``to_rate`` Hz; float32 out.

    ``method="soxr"`` (default): soxr at ``quality`` (``"HQ"`` = librosa's default, used upstream for
    HuBERT input). ``method="sinc"``: :func:`sinc_resample`, the ``torchaudio.transforms.Resample``
    arithmetic upstream uses for the SoVITS spectrogram and the speaker-verification input.
    """
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {from_rate} -> {to_rate}")
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"resample expects mono [n] audio, got shape {x.shape}")
    if from_rate == to_rate or x.size == 0:
        return x.copy()
    if method == "sinc":
        return sinc_resample(torch.from_numpy(x.copy()), from_rate, to_rate).numpy()
    if method != "soxr":
        raise ValueError(f"unknown resampling method {method!r} (expected 'soxr' or 'sinc')")
    out = np.asarray(soxr.resample(x, from_rate, to_rate, quality=quality), dtype=np.float32)
    # librosa.resample(fix=True) trims or zero-pads soxr's output to ceil(n * ratio); do the same.
    target = math.ceil(x.size * to_rate / from_rate)
    if out.size > target:
        return out[:target].copy()
    if out.size < target:
        return np.concatenate([out, np.zeros(target - out.size, dtype=np.float32)])
    return out


@lru_cache(maxsize=16)
def _sinc_kernel(orig: int, new: int, lowpass_width: int, rolloff: float) -> tuple[torch.Tensor, int]:
    """Polyphase windowed-sinc filters [new, 1, 2*width + orig] (float32) for reduced rates orig → new."""
    base = min(orig, new) * rolloff  # cut-off below the lower Nyquist: anti-aliasing margin
    width = math.ceil(lowpass_width * orig / base)
    taps = torch.arange(-width, width + orig, dtype=torch.float64)[None, None, :] / orig
    # Offset of every tap from each of the ``new`` output phases, in units of 1/base.
    t = (torch.arange(0, -new, -1, dtype=torch.float64)[:, None, None] / new + taps) * base
    t = t.clamp(-lowpass_width, lowpass_width)
    window = torch.cos(t * math.pi / lowpass_width / 2) ** 2  # Hann window over +-lowpass_width zero crossings
    t = t * math.pi
    sinc = torch.where(t == 0, torch.ones_like(t), torch.sin(t) / torch.where(t == 0, torch.ones_like(t), t))
    return (sinc * window * (base / orig)).to(torch.float32), width


def sinc_resample(wav: torch.Tensor, from_rate: int, to_rate: int, lowpass_width: int = 6,
                  rolloff: float = 0.99) -> torch.Tensor:
    """Band-limited windowed-sinc resampling with ``torchaudio.functional.resample``'s defaults.

    ``wav`` [..., n] float → [..., ceil(n * to_rate / from_rate)], same dtype/device. Rates are reduced by
    their gcd; each output phase is a 2*width+orig tap FIR over the zero-padded input (stride orig).
    """
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {from_rate} -> {to_rate}")
    if from_rate == to_rate:
        return wav
    gcd = math.gcd(int(from_rate), int(to_rate))
    orig, new = int(from_rate) // gcd, int(to_rate) // gcd
    kernel, width = _sinc_kernel(orig, new, lowpass_width, float(rolloff))
    shape = wav.shape
    flat = wav.reshape(-1, shape[-1])
    length = flat.shape[-1]
    padded = torch.nn.functional.pad(flat, (width, width + orig))
    out = torch.nn.functional.conv1d(padded[:, None], kernel.to(flat), stride=orig)  # [B, new, blocks]
    out = out.transpose(1, 2).reshape(flat.shape[0], -1)
    target = math.ceil(new * length / orig)
    return out[..., :target].reshape(*shape[:-1], -1)


def duration_seconds(path: str | Path) -> float:
    """Length of an audio file in seconds, read from its header (no decoding)."""
    path = Path(path)
    if not path.is_file():
        raise _audio_error(path, "audio file not found")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise _audio_error(path, f"cannot read audio header ({exc})") from exc
    if info.samplerate <= 0:
        raise _audio_error(path, "audio header has no sample rate")
    return float(info.frames) / float(info.samplerate)


# ----------------------------------------------------------------------------------- reference clip

#: Reference clip limits, as upstream (3-10 s, checked on the 16 kHz samples).
MIN_REF_SECONDS = 3.0
MAX_REF_SECONDS = 10.0
#: A clip whose loudest sample is below this holds nothing to clone (digital or near-digital silence).
SILENT_PEAK_DBFS = -60.0
#: Frames within this many dB of the clip's loudest frame count as sound (speech), the rest as pauses.
ACTIVE_RANGE_DB = 35.0
#: Less sound than this in a clip is worth a warning: the voice's timbre comes from it.
MIN_ACTIVE_SECONDS = 1.0
#: Loudest 20 ms frame below this: the clip is very quiet (worth a warning, it still works).
QUIET_FRAME_DBFS = -40.0
_FRAME_SAMPLES_16K = 320  # 20 ms


def _dbfs(value: float) -> float:
    return 20.0 * math.log10(value) if value > 0 else -math.inf


def check_reference_clip(path: str | Path, wav16k: np.ndarray, *, main: bool = True) -> list[str]:
    """Refuse a reference clip rendering cannot use; return warnings about one it can but should not.

    ``wav16k`` [N] float at 16 kHz. Raises :class:`VoiceError` naming the file when the clip is silent
    (peak below :data:`SILENT_PEAK_DBFS`) or, for the ``main`` reference, outside upstream's 3-10 s.
    Warnings: less than :data:`MIN_ACTIVE_SECONDS` of sound, or a very quiet recording.
    """
    path = Path(path)
    wav = np.asarray(wav16k, dtype=np.float32).reshape(-1)
    seconds = wav.size / 16000.0
    what = "reference clip" if main else "auxiliary reference clip"
    if main and not MIN_REF_SECONDS <= seconds <= MAX_REF_SECONDS:
        raise VoiceError(
            f"{path}: {what} is {seconds:.2f} s long; it must be between {MIN_REF_SECONDS:g} and "
            f"{MAX_REF_SECONDS:g} s (cut one clean sentence of the speaker, e.g. with Audacity or "
            "ffmpeg -ss START -t SECONDS)")
    peak = float(np.abs(wav).max()) if wav.size else 0.0
    if _dbfs(peak) < SILENT_PEAK_DBFS:
        level = "digital silence" if peak == 0 else f"silent (peak {_dbfs(peak):.0f} dBFS)"
        raise VoiceError(
            f"{path}: {what} is {level}; the voice's timbre and prompt come from this clip, so it must hold "
            "the speaker talking (check the file, the input level, or the channel that was exported)")
    frames = wav[: wav.size // _FRAME_SAMPLES_16K * _FRAME_SAMPLES_16K].reshape(-1, _FRAME_SAMPLES_16K)
    rms_db = 10.0 * np.log10(np.maximum(np.mean(frames.astype(np.float64) ** 2, axis=1), 1e-20))
    loudest = float(rms_db.max()) if rms_db.size else -math.inf
    active_seconds = float(np.sum(rms_db > loudest - ACTIVE_RANGE_DB)) * _FRAME_SAMPLES_16K / 16000.0
    warnings = []
    if active_seconds < MIN_ACTIVE_SECONDS:
        warnings.append(
            f"{path}: {what} holds only {active_seconds:.1f} s of sound in {seconds:.1f} s; the voice copies "
            "what it hears, so use a clip where the speaker talks most of the time")
    if loudest < QUIET_FRAME_DBFS:
        warnings.append(
            f"{path}: {what} is very quiet (loudest passage {loudest:.0f} dBFS); normalise it to about "
            "-3 dBFS peak for a cleaner voice")
    return warnings


# --------------------------------------------------------------------------------- SoVITS spectrogram


def upstream_peak_normalize(wav: torch.Tensor) -> torch.Tensor:
    """Upstream ``get_spepc`` scaling: divide by ``min(2, max|x|)`` only when ``max|x| > 1``."""
    peak = float(wav.abs().max()) if wav.numel() else 0.0
    if peak > 1.0:
        return wav / min(2.0, peak)
    return wav


# ------------------------------------------------------------------------------------- Kaldi fbank


def _mel(freq_hz: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log(1.0 + np.asarray(freq_hz, dtype=np.float64) / 700.0)


@lru_cache(maxsize=8)
def kaldi_mel_banks(num_mel_bins: int = 80, fft_size: int = FBANK_FFT_SIZE,
                    sample_rate: int = FBANK_SAMPLE_RATE, low_hz: float = FBANK_LOW_HZ) -> torch.Tensor:
    """Kaldi triangular mel filters, [num_mel_bins, fft_size//2 + 1] float64.

    Triangles are evenly spaced on the mel scale 1127*ln(1 + f/700) between ``low_hz`` and Nyquist,
    evaluated at FFT bin k (k * rate / fft_size) in mel; the Nyquist column is zero, as in Kaldi.
    """
    if num_mel_bins <= 3:
        raise ValueError("Kaldi fbank needs at least 4 mel bins")
    nyquist = 0.5 * sample_rate
    mel_low, mel_high = float(_mel(low_hz)), float(_mel(nyquist))
    delta = (mel_high - mel_low) / (num_mel_bins + 1)
    index = np.arange(num_mel_bins, dtype=np.float64)[:, None]
    left, center, right = (mel_low + (index + k) * delta for k in (0.0, 1.0, 2.0))
    bin_mel = _mel(np.arange(fft_size // 2, dtype=np.float64) * (sample_rate / fft_size))[None, :]
    up = (bin_mel - left) / (center - left)
    down = (right - bin_mel) / (right - center)
    banks = np.maximum(0.0, np.minimum(up, down))
    banks = np.concatenate([banks, np.zeros((num_mel_bins, 1))], axis=1)
    return torch.from_numpy(banks)


@lru_cache(maxsize=2)
def _povey_window(n: int) -> torch.Tensor:
    # Kaldi's "povey" window: a symmetric Hann window raised to 0.85 (zero at both ends).
    return torch.hann_window(n, periodic=False, dtype=torch.float64).pow(0.85)


def kaldi_fbank(wav16k: torch.Tensor, num_mel_bins: int = 80) -> torch.Tensor:
    """Log mel filterbank energies, Kaldi-style, of a 16 kHz waveform.

    ``wav16k`` [N] (or [1, N]) float, same scale as upstream (floats in [-1, 1], no int16 rescaling)
    → [1 + (N - 400)//160, num_mel_bins] float32. Steps per 400-sample frame (snip_edges): subtract
    the frame mean, pre-emphasis x[j] - 0.97*x[j-1] (x[-1] := x[0]), povey window, zero-pad to 512,
    power spectrum |rfft|^2, mel filters, log with a float-epsilon floor. No dither.
    """
    # Computed in float64 and rounded once at the end: in float32 the weakest mel bins of a frame
    # (tiny next to its strongest) carry ~3e-4 of FFT rounding noise in the log domain.
    wav = wav16k.to(torch.float64)
    if wav.dim() == 2 and wav.shape[0] == 1:
        wav = wav[0]
    if wav.dim() != 1:
        raise ValueError(f"kaldi_fbank expects mono [N] audio, got shape {tuple(wav16k.shape)}")
    if wav.shape[0] < FBANK_WINDOW_SAMPLES:
        raise VoiceError(
            f"audio too short for speaker features: {wav.shape[0]} samples at 16 kHz, "
            f"need at least {FBANK_WINDOW_SAMPLES}"
        )
    frames = wav.unfold(0, FBANK_WINDOW_SAMPLES, FBANK_SHIFT_SAMPLES)  # [m, 400]
    frames = frames - frames.mean(dim=1, keepdim=True)
    previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
    frames = frames - FBANK_PREEMPHASIS * previous
    frames = frames * _povey_window(FBANK_WINDOW_SAMPLES).to(frames)
    frames = torch.nn.functional.pad(frames, (0, FBANK_FFT_SIZE - FBANK_WINDOW_SAMPLES))
    power = torch.fft.rfft(frames).abs().pow(2.0)  # [m, 257]
    banks = kaldi_mel_banks(num_mel_bins).to(power)
    energies = power @ banks.T  # [m, num_mel_bins]
    return torch.clamp_min(energies, FLOAT_EPSILON).log().to(torch.float32)


def fbank_frame_count(n_samples: int) -> int:
    """Frames :func:`kaldi_fbank` yields for ``n_samples`` (0 when shorter than one window)."""
    if n_samples < FBANK_WINDOW_SAMPLES:
        return 0
    return 1 + (n_samples - FBANK_WINDOW_SAMPLES) // FBANK_SHIFT_SAMPLES

