"""A complete random voice (tests, demos, benchmarks): random weights + helpers + a synthetic clip.

Everything is written in the exact upstream formats, then imported through the normal
:func:`renderer.voice.import_voice` path, so the voice exercises the real loaders end to end.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from renderer.voice import ImportResult, VoiceStore, import_voice

__all__ = ["RANDOM_REF_TEXT", "default_cache_dir", "make_random_voice", "synthetic_reference", "write_random_assets"]

RANDOM_REF_TEXT = "This is a synthetic reference clip for a random test voice."


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/audiobook-renderer/random (default ~/.cache/...)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "audiobook-renderer" / "random"


def synthetic_reference(path: str | Path, seconds: float = 5.0, seed: int = 0, sample_rate: int = 32000) -> Path:
    """Write a speech-like test clip: a gliding harmonic tone with syllable-rate envelope and a little noise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = 140.0 + 30.0 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, np.pi))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 4.0 * t)) ** 2
    wav = 0.3 * voiced * envelope + 0.01 * rng.standard_normal(t.size)
    wav = (0.8 * wav / np.abs(wav).max()).astype(np.float32)
    sf.write(str(path), wav, sample_rate, subtype="PCM_16")
    return path


def write_random_assets(folder: Path, size: str, version: str, seed: int) -> dict[str, Path]:
    """Random GPT, SoVITS, BERT, HuBERT (and SV for Pro) plus a reference clip, written once per folder."""
    from renderer.models.random_helpers import (
        write_random_bert_folder,
        write_random_hubert_folder,
        write_random_sv_checkpoint,
    )
    from renderer.models.random_weights import write_random_gpt, write_random_sovits

    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "gpt": folder / "gpt.ckpt", "sovits": folder / "sovits.pth", "bert": folder / "bert",
        "hubert": folder / "hubert", "ref": folder / "reference.wav",
    }
    if not paths["gpt"].is_file():
        write_random_gpt(paths["gpt"], size, seed)
    if not paths["sovits"].is_file():
        write_random_sovits(paths["sovits"], version, size, seed)
    if not (paths["bert"] / "config.json").is_file():
        write_random_bert_folder(paths["bert"], seed)
    if not (paths["hubert"] / "config.json").is_file():
        write_random_hubert_folder(paths["hubert"], seed)
    if not paths["ref"].is_file():
        synthetic_reference(paths["ref"], seed=seed)
    if version != "v2":
        paths["sv"] = folder / "sv.ckpt"
        if not paths["sv"].is_file():
            write_random_sv_checkpoint(paths["sv"], seed)
    return paths


def make_random_voice(name: str, size: str = "tiny", version: str = "v2", seed: int = 0,
                      store: VoiceStore | None = None, cache_dir: str | Path | None = None) -> ImportResult:
    """Write (or reuse) random assets under ``cache_dir`` and import them as voice ``name``."""
    folder = Path(cache_dir or default_cache_dir()) / f"{size}-{version}-seed{seed}"
    paths = write_random_assets(folder, size, version, seed)
    return import_voice(
        name, paths["gpt"], paths["sovits"], paths["ref"], RANDOM_REF_TEXT, "en",
        bert_dir=paths["bert"], hubert_dir=paths["hubert"], sv_path=paths.get("sv"), store=store,
    )
