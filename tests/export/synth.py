"""Synthetic test audio (tones, noise bursts, speech-like envelopes) — never model output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from export import ChapterManifest, ChunkAudio

RATE = 32000


def tone(seconds: float, freq: float, amp: float, phase: float = 0.0, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def speech_like(seconds: float, rng: np.random.Generator, rate: int = RATE) -> np.ndarray:
    """Harmonics + breath noise under a syllable envelope; RMS normalised to 1."""
    t = np.arange(int(seconds * rate)) / rate
    env = np.abs(np.sin(2 * np.pi * rng.uniform(2.5, 4.0) * t)) ** 0.7 * (0.7 + 0.3 * np.sin(2 * np.pi * 0.4 * t))
    f0 = rng.uniform(100, 200)
    voiced = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in range(1, 8))
    x = (voiced + 0.3 * rng.standard_normal(len(t))) * env
    return x / np.sqrt(np.mean(x**2))


def pad(x: np.ndarray, head_s: float, tail_s: float, noise_db: float | None = None, rate: int = RATE,
        seed: int = 0) -> np.ndarray:
    """Surround with near-silence (zeros, or noise at ``noise_db`` dBFS RMS)."""
    rng = np.random.default_rng(seed)
    head, tail = np.zeros(int(head_s * rate)), np.zeros(int(tail_s * rate))
    if noise_db is not None:
        head = rng.standard_normal(len(head)) * 10 ** (noise_db / 20)
        tail = rng.standard_normal(len(tail)) * 10 ** (noise_db / 20)
    return np.concatenate([head, x, tail]).astype(np.float32)


def write_chunks(folder: Path, signals: list[np.ndarray], boundaries: list[str], prefix: str = "c",
                 rate: int = RATE, n_phones: list[int] | None = None) -> list[ChunkAudio]:
    folder.mkdir(parents=True, exist_ok=True)
    chunks = []
    for i, (x, boundary) in enumerate(zip(signals, boundaries, strict=True)):
        path = folder / f"{prefix}{i:03d}.wav"
        sf.write(str(path), x, rate, subtype="FLOAT")
        phones = n_phones[i] if n_phones else max(1, int(len(x) / rate * 12))
        chunks.append(ChunkAudio(path, boundary, f"text {i}", f"{prefix}{i}", n_phones=phones))
    return chunks


def chapter(folder: Path, index: int, title: str, signals: list[np.ndarray], boundaries: list[str],
            **kwargs: Any) -> ChapterManifest:
    return ChapterManifest(index, title, write_chunks(folder, signals, boundaries, prefix=f"ch{index}_", **kwargs))
