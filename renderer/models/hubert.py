"""HuBERT content features of a reference clip, as GPT-SoVITS computes them for the prompt tokens.

Upstream (``get_tts_wav`` in ``inference_webui.py`` / ``TTS.py``) loads the reference with
``librosa.load(path, sr=16000)``, appends ``int(0.3 * 32000) = 9600`` zero samples (0.3 s at the
SoVITS rate, i.e. 0.6 s at 16 kHz), and calls ``ssl_model.model(wav16k[None])["last_hidden_state"]
.transpose(1, 2)``: the raw waveform goes straight into ``transformers.HubertModel``; the
``Wav2Vec2FeatureExtractor`` held next to it is not used on this path, so no normalisation happens.
The features ([1, 768, T], 50 Hz) then go to SoVITS ``extract_latent``.

:class:`HubertEncoder` computes exactly the model call; the caller adds the zeros
(:data:`UPSTREAM_PAD_SAMPLES`, or :func:`prompt_waveform`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from renderer.errors import VoiceError

__all__ = [
    "HubertEncoder",
    "UPSTREAM_PAD_SAMPLES",
    "SSL_DIM",
    "hubert_frame_count",
    "prompt_waveform",
    "quiet_transformers",
]

#: Zeros upstream appends to the 16 kHz reference before HuBERT (0.3 s at 32 kHz, counted at 16 kHz).
UPSTREAM_PAD_SAMPLES = 9600
#: Feature width SoVITS' ``ssl_proj`` expects.
SSL_DIM = 768
# HuBERT-base convolutional front end: (kernel, stride) per layer; 320x downsampling to 50 Hz.
_CONV_GEOMETRY = ((10, 5), (3, 2), (3, 2), (3, 2), (3, 2), (2, 2), (2, 2))


def hubert_frame_count(n_samples: int, geometry: tuple[tuple[int, int], ...] = _CONV_GEOMETRY) -> int:
    """Frames the HuBERT-base conv front end yields for ``n_samples`` (no padding, floor division)."""
    length = n_samples
    for kernel, stride in geometry:
        length = (length - kernel) // stride + 1
        if length <= 0:
            return 0
    return length


def prompt_waveform(wav16k: np.ndarray) -> np.ndarray:
    """The 16 kHz reference with upstream's trailing zeros, float32 [N + 9600]."""
    wav = np.asarray(wav16k, dtype=np.float32).reshape(-1)
    return np.concatenate([wav, np.zeros(UPSTREAM_PAD_SAMPLES, dtype=np.float32)])


def _check_folder(folder: Path) -> dict:
    if not folder.is_dir():
        raise VoiceError(f"{folder}: HuBERT folder not found (expected GPT-SoVITS' "
                         f"pretrained_models/chinese-hubert-base)")
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise VoiceError(f"{folder}: not a HuBERT model folder (no config.json)")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VoiceError(f"{config_path}: unreadable config.json ({exc})") from exc
    architectures = config.get("architectures") or [] if isinstance(config, dict) else []
    is_hubert = isinstance(config, dict) and (
        config.get("model_type") == "hubert"
        or ("model_type" not in config and any("Hubert" in str(a) for a in architectures))
    )
    if not is_hubert:
        found = config.get("model_type") if isinstance(config, dict) else type(config).__name__
        raise VoiceError(f"{folder}: config.json describes model_type {found!r}, expected 'hubert'")
    if int(config.get("hidden_size", -1)) != SSL_DIM:
        raise VoiceError(f"{folder}: HuBERT hidden_size is {config.get('hidden_size')}, SoVITS needs {SSL_DIM}")
    weights = ("model.safetensors", "pytorch_model.bin")
    if not any((folder / name).is_file() for name in weights):
        raise VoiceError(f"{folder}: no HuBERT weights (expected one of {', '.join(weights)})")
    return config


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """No progress bars or load chatter on the console; problems surface as VoiceError instead."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


class HubertEncoder:
    """A local ``chinese-hubert-base``-style folder (config.json + weights), loaded offline."""

    def __init__(self, folder: str | Path, device: str | torch.device = "cpu") -> None:
        from transformers import HubertModel  # heavy import, only when a voice is being added

        self.folder = Path(folder)
        self.device = torch.device(device)
        self.config = _check_folder(self.folder)
        try:
            with quiet_transformers():
                loaded: Any = HubertModel.from_pretrained(
                    str(self.folder), local_files_only=True, dtype=torch.float32, output_loading_info=True
                )
            model, info = loaded
        except Exception as exc:  # transformers/safetensors raise many unrelated types for a bad folder
            raise VoiceError(f"{self.folder}: cannot load HuBERT weights ({type(exc).__name__}: {exc})") from exc
        # transformers fills absent tensors with random values and only warns: refuse that instead.
        missing = sorted(info.get("missing_keys") or [])
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise VoiceError(f"{self.folder}: HuBERT weights lack {len(missing)} tensors ({shown})")
        model.to(self.device)
        self.model = model.eval()

    @torch.no_grad()  # not inference_mode: callers may reuse the result in ordinary tensor code
    def features(self, wav16k: np.ndarray) -> torch.Tensor:
        """Raw 16 kHz waveform [N] (float, no normalisation) → last_hidden_state^T [1, 768, T] float32 (CPU).

        T = :func:`hubert_frame_count` (N) for the base geometry (50 frames per second).
        """
        wav = np.asarray(wav16k, dtype=np.float32).reshape(-1)
        if wav.size < 400:
            raise VoiceError(f"reference audio too short for HuBERT: {wav.size} samples at 16 kHz")
        inputs = torch.from_numpy(wav).unsqueeze(0).to(self.device)
        hidden = self.model(inputs).last_hidden_state  # [1, T, 768]
        return hidden.transpose(1, 2).float().cpu().contiguous()
