"""A complete random voice (tests, demos, benchmarks): random weights + helpers + a synthetic clip.

Everything is written in the exact upstream formats, then imported through the normal
:func:`renderer.voice.import_voice` path, so the voice exercises the real loaders end to end.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

from renderer.voice import ImportResult, VoiceStore, import_voice

if TYPE_CHECKING:
    from renderer.models.sovits import SoVITSModel

__all__ = ["RANDOM_REF_TEXT", "default_cache_dir", "make_random_voice", "random_reference_ge", "synthetic_reference",
           "write_random_assets"]

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
    if not _sovits_is_current(paths["sovits"], version):
        write_random_sovits(paths["sovits"], version, size, seed)
    if not (paths["bert"] / "config.json").is_file():
        write_random_bert_folder(paths["bert"], seed)
    if not (paths["hubert"] / "config.json").is_file():
        write_random_hubert_folder(paths["hubert"], seed)
    if not paths["ref"].is_file():
        synthetic_reference(paths["ref"], seed=seed)
    if version != "v2":
        paths["sv"] = folder / "sv.ckpt"
        if not _sv_is_current(paths["sv"], size):
            write_random_sv_checkpoint(paths["sv"], seed, size=size)
    return paths


def _sovits_is_current(path: Path, version: str) -> bool:
    """An existing file carries the version tag the writer puts on it now (older caches held plain ``PK``)."""
    from renderer.models.random_weights import SOVITS_VERSION_TAGS

    if not path.is_file():
        return False
    with path.open("rb") as handle:
        return handle.read(2) == SOVITS_VERSION_TAGS[version]


def _sv_is_current(path: Path, size: str) -> bool:
    """An existing speaker-verification file has the layout of ``size`` (older caches held a tiny one
    beside full-size GPT/SoVITS files, which the original GPT-SoVITS refuses)."""
    import torch

    from renderer.models.eres2net import ERes2NetV2Config, config_from_state_dict
    from renderer.models.random_helpers import TINY_SV_CONFIG

    if not path.is_file():
        return False
    expected = ERes2NetV2Config() if size == "full" else TINY_SV_CONFIG
    try:  # mmap: reads the tensor table, not the 215 MB of weights
        state = torch.load(str(path), map_location="cpu", mmap=True, weights_only=True)
        return config_from_state_dict(state) == expected
    except Exception:  # noqa: BLE001 - anything unreadable is rewritten
        return False


def random_reference_ge(model: SoVITSModel, sv_path: str | Path | None = None, seed: int = 0,
                        seconds: float = 5.0) -> np.ndarray:
    """``ge`` float32 [1, gin, 1] of :func:`synthetic_reference` (``seed``, ``seconds``), as `voice add` gets it.

    For a v2Pro/v2ProPlus ``model`` the speaker-verification embedding of the same clip joins the
    reference encoder's output, so ``sv_path`` (an ERes2NetV2 checkpoint: the real one, or
    ``write_random_sv_checkpoint(path, seed, size="full")`` for benchmarks) is required; v2 ignores it.
    A benchmark of a Pro voice needs exactly this: ``model.reference_ge`` alone raises without it.
    """
    from renderer.audio import reference_waveforms
    from renderer.voice_import import compute_ge

    with tempfile.TemporaryDirectory(prefix="random-reference-") as tmp:
        waves = [reference_waveforms(synthetic_reference(Path(tmp) / "reference.wav", seconds, seed))]
    return compute_ge(model, waves, Path(sv_path) if sv_path is not None else None)


def make_random_voice(name: str, size: str = "tiny", version: str = "v2", seed: int = 0,
                      store: VoiceStore | None = None, cache_dir: str | Path | None = None) -> ImportResult:
    """Write (or reuse) random assets under ``cache_dir`` and import them as voice ``name``."""
    folder = Path(cache_dir or default_cache_dir()) / f"{size}-{version}-seed{seed}"
    paths = write_random_assets(folder, size, version, seed)
    return import_voice(
        name, paths["gpt"], paths["sovits"], paths["ref"], RANDOM_REF_TEXT, "en",
        bert_dir=paths["bert"], hubert_dir=paths["hubert"], sv_path=paths.get("sv"), store=store,
    )
