"""SoVITS decode through an exported ONNX graph (speed 1); other speeds use the torch vocoder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from renderer.engine.backend import VocodeItem
from renderer.engine.vocoder import frames_for, length_groups


class OnnxVocoder:
    """Batched, masked SoVITS decode with per-chunk noise, on ONNX Runtime."""

    def __init__(self, path: Path, ge: np.ndarray, session_options: Any, providers: list[Any], fallback: Any,
                 max_batch: int = 8) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(path), session_options, providers=providers)
        self.ge = np.asarray(ge, dtype=np.float32).reshape(1, -1, 1)
        self.fallback = fallback
        self.max_batch = max_batch
        noise_input = next(i for i in self.session.get_inputs() if i.name == "noise")
        self.inter_channels = int(noise_input.shape[1])

    def render(self, items: list[VocodeItem], speed: float = 1.0, noise_scale: float = 0.5,
               seeds: list[int] | None = None) -> list[np.ndarray]:
        seeds = seeds if seeds is not None else [0] * len(items)
        if speed != 1.0 and self.fallback is not None:
            return self.fallback.render(items, speed=speed, noise_scale=noise_scale, seeds=seeds)
        out: list[np.ndarray] = [np.zeros(0, np.float32)] * len(items)
        for group in length_groups([len(it.tokens) for it in items], self.max_batch):
            audios = self._group([items[i] for i in group], noise_scale, [seeds[i] for i in group])
            for i, audio in zip(group, audios, strict=True):
                out[i] = audio
        return out

    def _group(self, items: list[VocodeItem], noise_scale: float, seeds: list[int]) -> list[np.ndarray]:
        b = len(items)
        t_max = max(len(it.tokens) for it in items)
        n_max = max(len(it.phone_ids) for it in items)
        codes = np.zeros((b, t_max), np.int64)
        phones = np.zeros((b, n_max), np.int64)
        noise = np.zeros((b, self.inter_channels, frames_for(t_max, 1.0)), np.float32)
        for i, (it, seed) in enumerate(zip(items, seeds, strict=True)):
            codes[i, : len(it.tokens)] = it.tokens
            phones[i, : len(it.phone_ids)] = it.phone_ids
            f_i = frames_for(len(it.tokens), 1.0)
            gen = torch.Generator().manual_seed(int(seed))
            noise[i, :, :f_i] = torch.randn(self.inter_channels, f_i, generator=gen).numpy()
        feeds = {"codes": codes, "code_lengths": np.array([len(it.tokens) for it in items], np.int64),
                 "phones": phones, "phone_lengths": np.array([len(it.phone_ids) for it in items], np.int64),
                 "ge": np.repeat(self.ge, b, axis=0), "noise": noise,
                 "noise_scale": np.asarray(noise_scale, dtype=np.float32)}
        audio, lengths = self.session.run(["audio", "audio_lengths"], feeds)
        return [audio[i, : int(lengths[i])].astype(np.float32) for i in range(b)]
