"""SoVITS rendering of finished chunks, batched by similar token length.

Each chunk's prior noise is drawn from its own generator (seeded from the chunk), shaped for that chunk
alone and zero-padded, so its audio does not depend on the chunks it was batched with. Lengths are
padded up to a multiple of ``bucket_tokens`` (masked, so the audio does not change) so that chunks of
similar length reuse the CPU's convolution primitives and memory (see :class:`TorchVocoder`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from renderer.engine.backend import VocodeItem
from renderer.memory import release_if_grown
from renderer.rounding import round_up


def frames_for(n_tokens: int, speed: float) -> int:
    """50 Hz content frames SoVITS produces for ``n_tokens`` semantic tokens (upstream rule)."""
    return 2 * n_tokens if speed == 1.0 else int(2 * n_tokens / speed) + 1


def length_groups(lengths: list[int], max_batch: int, max_pad_ratio: float = 1.3) -> list[list[int]]:
    """Indices grouped by similar length: sorted, at most ``max_batch`` per group, and the longest at
    most ``max_pad_ratio`` times the shortest (so padding wastes little work)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    groups: list[list[int]] = []
    for i in order:
        if groups and len(groups[-1]) < max_batch and lengths[i] <= max(1, lengths[groups[-1][0]]) * max_pad_ratio:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


class TorchVocoder:
    """Wraps the models helper's ``SoVITSModel.decode`` (batched, masked) with a fixed voice ``ge``."""

    def __init__(self, model: torch.nn.Module, ge: Tensor | np.ndarray, device: str = "cpu",
                 max_batch: int | None = None, autocast_dtype: torch.dtype | None = None,
                 bucket_tokens: int = 16, window_s: float = 0.0) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.ge = torch.as_tensor(np.asarray(ge, dtype=np.float32)).reshape(1, -1, 1).to(self.device)
        # On CPU a batch of one is fastest per audio second (padding and larger working sets make
        # batches slower: BENCHMARKS.md, "Why the defaults"); the GPU gains from batching.
        self.max_batch = max_batch if max_batch is not None else (1 if self.device.type == "cpu" else 8)
        # Every new input length costs the CPU vocoder new oneDNN primitives and fresh pages (a large
        # share of a short chunk: BENCHMARKS.md); token and phone counts padded to a multiple of this
        # (16 tokens = 0.64 s of audio) let chunks of similar length share one shape. The padded tail is
        # masked at every layer, so the audio is the same as unpadded within float rounding (tested).
        # 0 = exact lengths.
        self.bucket_tokens = bucket_tokens
        # The generator's working memory grows with the chunk's length (oneDNN's convolutions: 2-4 MB per
        # frame, full-size v2 fp32, BENCHMARKS.md): on CPU a long chunk is generated window_s seconds at a
        # time, which bounds that memory.
        self.window_s = window_s
        #: reduced-precision autocast (fp16 on CUDA) for the convolutions; None = float32
        self.autocast_dtype: torch.dtype | None = None
        #: the precision asked for with :meth:`set_precision` (None = float32)
        self.precision_dtype: torch.dtype | None = None
        self.inter_channels = int(getattr(model, "cfg").inter_channels)  # noqa: B009 (untyped nn.Module attr)
        self.set_precision(autocast_dtype)

    def set_precision(self, dtype: torch.dtype | None) -> None:
        """float32 (None), bfloat16 or float16 for the generator.

        On CPU the fast channels-last generator (``renderer.models.sovits_fast``) is installed and runs
        bf16 natively; autocast would leave it in fp32. Elsewhere autocast covers the convolutions.
        """
        self.precision_dtype = dtype
        if self.device.type == "cpu":
            from renderer.models.sovits_fast import prepare_for_inference

            prepare_for_inference(self.model, "bf16" if dtype == torch.bfloat16 else "fp32",  # type: ignore[arg-type]
                                  window_s=self.window_s)
            self.autocast_dtype = None
        else:
            self.autocast_dtype = dtype

    @torch.inference_mode()
    def render(self, items: list[VocodeItem], speed: float = 1.0, noise_scale: float = 0.5,
               seeds: list[int] | None = None) -> list[np.ndarray]:
        """Audio (float32 mono 32 kHz) per item, in input order."""
        seeds = seeds if seeds is not None else [0] * len(items)
        out: list[np.ndarray] = [np.zeros(0, np.float32)] * len(items)
        for group in length_groups([len(it.tokens) for it in items], self.max_batch):
            audios = self._render_group([items[i] for i in group], speed, noise_scale, [seeds[i] for i in group])
            for i, audio in zip(group, audios, strict=True):
                out[i] = audio
            if self.device.type == "cpu":
                release_if_grown()  # each chunk length leaves differently sized free blocks behind
        return out

    def _render_group(self, items: list[VocodeItem], speed: float, noise_scale: float,
                      seeds: list[int]) -> list[np.ndarray]:
        b = len(items)
        step = self.bucket_tokens
        t_max = round_up(max(len(it.tokens) for it in items), step)
        n_max = round_up(max(len(it.phone_ids) for it in items), step)
        codes = torch.zeros(b, t_max, dtype=torch.long)
        phones = torch.zeros(b, n_max, dtype=torch.long)
        f_max = frames_for(t_max, speed)
        noise = torch.zeros(b, self.inter_channels, f_max)
        for i, (it, seed) in enumerate(zip(items, seeds, strict=True)):
            codes[i, : len(it.tokens)] = torch.from_numpy(np.asarray(it.tokens, dtype=np.int64))
            phones[i, : len(it.phone_ids)] = torch.from_numpy(np.asarray(it.phone_ids, dtype=np.int64))
            f_i = frames_for(len(it.tokens), speed)
            gen = torch.Generator().manual_seed(int(seed))
            noise[i, :, :f_i] = torch.randn(self.inter_channels, f_i, generator=gen)
        code_lens = torch.tensor([len(it.tokens) for it in items], dtype=torch.long)
        phone_lens = torch.tensor([len(it.phone_ids) for it in items], dtype=torch.long)
        with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                            enabled=self.autocast_dtype is not None):
            audio, lengths = self.model.decode(  # type: ignore[operator]
                codes.to(self.device), code_lens.to(self.device), phones.to(self.device),
                phone_lens.to(self.device), self.ge.expand(b, -1, -1), noise_scale=noise_scale, speed=speed,
                noise=noise.to(self.device))
        audio = audio.float().cpu().numpy()
        return [audio[i, : int(lengths[i])].copy() for i in range(b)]
