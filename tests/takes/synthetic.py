"""Synthetic takes with known faults, for take-scoring tests and the fake engine's scripted takes.

Audio is speech-like (harmonic tone with a syllable-rate envelope, never silent inside a burst) at
32 kHz; tokens are distinct random codes unless a fault asks otherwise; one token is 1280 samples,
as in GPT-SoVITS. A clean take speaks ``tokens_per_phone`` tokens per phone, like the norm.
"""

from __future__ import annotations

import numpy as np

from renderer.takes import Take, VoiceNorm

RATE = 32000
SAMPLES_PER_TOKEN = 1280
#: Tokens per phone of the synthetic voice (a narrator at ~10 phones/s).
TOKENS_PER_PHONE = 2.5


def norm() -> VoiceNorm:
    """The synthetic voice's norm, as if learned from many clean chunks."""
    clean = clean_take(40)
    speech_per_phone = (len(clean.audio) / RATE - 0.3) / 40
    return VoiceNorm(tokens_per_phone=TOKENS_PER_PHONE, speech_s_per_phone=speech_per_phone, weight=100.0,
                     observations=100)


def speech(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * RATE))) / RATE
    pitch = 120.0 + 60.0 * rng.random()
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, np.pi))
    return (0.3 * envelope * (np.sin(2 * np.pi * pitch * t) + 0.3 * np.sin(4 * np.pi * pitch * t))).astype(np.float32)


def quiet(seconds: float, seed: int = 0, dbfs: float = -70.0) -> np.ndarray:
    rng = np.random.default_rng(seed + 1000)
    return (10 ** (dbfs / 20) * rng.standard_normal(int(round(seconds * RATE)))).astype(np.float32)


def distinct_tokens(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.permutation(1024)[:n].astype(np.int64) if n <= 1024 else rng.integers(0, 1024, size=n)


def _audio_for(n_tokens: int, seed: int, lead_s: float = 0.15, trail_s: float = 0.15) -> np.ndarray:
    total = n_tokens * SAMPLES_PER_TOKEN / RATE
    body = max(0.0, total - lead_s - trail_s)
    return np.concatenate([quiet(lead_s, seed), speech(body, seed), quiet(trail_s, seed)])


def clean_take(n_phones: int = 40, seed: int = 0, text: str = "") -> Take:
    n = int(round(TOKENS_PER_PHONE * n_phones))
    return Take(tokens=distinct_tokens(n, seed), audio=_audio_for(n, seed), sample_rate=RATE, stopped_by="eos",
                n_phones=n_phones, text=text)


def looping_take(n_phones: int = 40, seed: int = 0, period: int = 12, repeats: int = 8) -> Take:
    """A clean start, then one phrase of ``period`` tokens said ``repeats`` times (and so too slow)."""
    head = distinct_tokens(int(TOKENS_PER_PHONE * n_phones * 0.6), seed)
    loop = np.tile(distinct_tokens(period, seed + 1), repeats)
    tokens = np.concatenate([head, loop])
    return Take(tokens=tokens, audio=_audio_for(tokens.size, seed), sample_rate=RATE, stopped_by="eos",
                n_phones=n_phones)


def capped_take(n_phones: int = 40, seed: int = 0, cap: int = 300) -> Take:
    """Never ended: ran to the token cap."""
    return Take(tokens=distinct_tokens(cap, seed), audio=_audio_for(cap, seed), sample_rate=RATE,
                stopped_by="max_tokens", n_phones=n_phones)


def short_take(n_phones: int = 40, seed: int = 0, share: float = 0.3) -> Take:
    """Ended far too early: ``share`` of the tokens a clean take would have (skipped words)."""
    n = max(4, int(TOKENS_PER_PHONE * n_phones * share))
    return Take(tokens=distinct_tokens(n, seed), audio=_audio_for(n, seed), sample_rate=RATE, stopped_by="eos",
                n_phones=n_phones)


def gap_take(n_phones: int = 40, seed: int = 0, gap_s: float = 2.5) -> Take:
    """Clean, but with a hole of ``gap_s`` seconds of silence in the middle."""
    clean = clean_take(n_phones, seed)
    half = clean.audio.size // 2
    audio = np.concatenate([clean.audio[:half], quiet(gap_s, seed), clean.audio[half:]])
    extra = int(round(gap_s * RATE / SAMPLES_PER_TOKEN))
    tokens = np.concatenate([clean.tokens, distinct_tokens(extra, seed + 7)])
    return Take(tokens=tokens, audio=audio, sample_rate=RATE, stopped_by="eos", n_phones=n_phones)
