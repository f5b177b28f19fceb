"""Eager PyTorch backend (CPU or CUDA): the batched GPT with an in-place KV cache, SoVITS vocoder.

The cache is one pair of tensors per layer (keys [B,H,hd,cap], values [B,H,cap,hd]); prefill writes
rows with ``index_copy_`` and a step writes one position per row with an indexed assignment, so nothing
is concatenated or copied per step. Capacity tracks the longest live row in 64-position steps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from renderer.engine.backend import Candidates, PrefillBatch, StepInputs, VocodeItem
from renderer.engine.batched_gpt import BatchedGPT
from renderer.engine.step_attention import store_position
from renderer.errors import BackendUnavailableError
from renderer.memory import advise_huge_pages, mapped_zeros
from renderer.rounding import round_up
from renderer.tuning import EngineTuning


def resolve_device(device: str) -> torch.device:
    """``cpu`` or ``cuda[:n]``; raises BackendUnavailableError when CUDA is asked for but missing."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BackendUnavailableError(
            "device 'cuda' requested but torch reports no CUDA GPU (torch.cuda.is_available() is False)")
    if not (device == "cpu" or device.startswith("cuda")):
        raise BackendUnavailableError(f"unknown device {device!r}; use 'cpu' or 'cuda'")
    return torch.device(device)


#: Cache capacity grows (and shrinks) in steps of this many positions.
CAPACITY_STEP = 64
#: Shrink when the capacity exceeds the need by this many positions.
SHRINK_SLACK = 256


class TorchKVCache:
    """Per-layer K/V buffers on one device; see module docstring for layouts."""

    def __init__(self, n_layer: int, n_head: int, head_dim: int, device: torch.device,
                 dtype: torch.dtype = torch.float32, huge_pages: bool = False) -> None:
        self.n_layer, self.n_head, self.head_dim = n_layer, n_head, head_dim
        self.device, self.dtype = device, dtype
        #: ask for transparent huge pages behind the CPU buffers (EngineTuning.huge_pages)
        self.huge_pages = huge_pages
        self.keys: list[Tensor] = []
        self.values: list[Tensor] = []
        self.slots = 0
        self.capacity = 0

    def _zeros(self, *shape: int) -> Tensor:
        """A zeroed buffer. On CPU each is its own memory mapping (renderer.memory.mapped_zeros: the
        cache's ever-new sizes fragmented the heap by ~1.7 GB per fp32 chapter), advised to use huge
        pages with :attr:`huge_pages` (opt-in: the step's attention reads faster, but faulting them in at
        every re-allocation costs more; see renderer.memory.advise_huge_pages)."""
        if self.device.type != "cpu":
            return torch.zeros(shape, device=self.device, dtype=self.dtype)
        buffer = mapped_zeros(shape, self.dtype)
        if self.huge_pages:
            advise_huge_pages(buffer)  # before the first touch, so the pages are faulted in as huge pages
        return buffer

    def allocate(self, slots: int, capacity: int) -> None:
        shape_k = (slots, self.n_head, self.head_dim, capacity)
        shape_v = (slots, self.n_head, capacity, self.head_dim)
        self.keys = [self._zeros(*shape_k) for _ in range(self.n_layer)]
        self.values = [self._zeros(*shape_v) for _ in range(self.n_layer)]
        self.slots, self.capacity = slots, capacity

    def grow(self, needed: int, allow_shrink: bool = False) -> bool:
        """Fit ``needed`` positions, keeping contents; True if it reallocated.

        The capacity tracks the longest live row in steps of :data:`CAPACITY_STEP` positions (and
        shrinks again once it is :data:`SHRINK_SLACK` larger than needed), because a step's attention
        reads every cache position: a tight cache is cheaper than the occasional copy (one copy per
        ``CAPACITY_STEP`` decode steps). Only the caller that knows every live row's length may shrink.
        """
        target = round_up(max(needed, 1), CAPACITY_STEP)
        if needed <= self.capacity and (not allow_shrink or self.capacity - target < SHRINK_SLACK):
            return False
        keep = min(self.capacity, target)
        # layer by layer, so only one layer exists twice at a time (a whole second cache would double the
        # peak: 1.6 GB more for 32 fp32 rows)
        for i in range(self.n_layer):
            key = self._zeros(self.slots, self.n_head, self.head_dim, target)
            key[..., :keep].copy_(self.keys[i][..., :keep])
            self.keys[i] = key
            value = self._zeros(self.slots, self.n_head, target, self.head_dim)
            value[:, :, :keep].copy_(self.values[i][:, :, :keep])
            self.values[i] = value
        self.capacity = target
        return True

    def compact(self, keep: Tensor) -> None:
        """Keep only rows ``keep`` [k] int64 (in that order) as the new rows 0..k-1.

        Used when the batch drains: a step costs in proportion to the rows it holds, dead or alive.
        """
        rows = int(keep.shape[0])
        for i in range(self.n_layer):  # layer by layer: one layer twice at a time, not the whole cache
            key = self._zeros(rows, *self.keys[i].shape[1:])
            self.keys[i] = torch.index_select(self.keys[i], 0, keep, out=key)
            value = self._zeros(rows, *self.values[i].shape[1:])
            self.values[i] = torch.index_select(self.values[i], 0, keep, out=value)
        self.slots = rows

    def free(self) -> None:
        """Drop the buffers (the next ``allocate`` makes new ones)."""
        self.keys, self.values = [], []
        self.slots = self.capacity = 0

    def write_rows(self, slots: Tensor, keys: list[Tensor], values: list[Tensor]) -> None:
        """keys[l] [b,H,hd,T], values[l] [b,H,T,hd] into rows ``slots`` at positions 0..T-1."""
        for i in range(self.n_layer):
            self.write_layer_rows(i, slots, keys[i], values[i])

    def write_layer_rows(self, layer: int, slots: Tensor, keys: Tensor, values: Tensor) -> None:
        """One layer's keys [b,H,hd,T] and values [b,H,T,hd] (any strides) into rows ``slots``, positions 0..T-1."""
        t = keys.shape[3]
        self.keys[layer][..., :t].index_copy_(0, slots, keys.to(self.dtype))
        self.values[layer][:, :, :t].index_copy_(0, slots, values.to(self.dtype))

    def write_position(self, positions: Tensor, keys: list[Tensor], values: list[Tensor]) -> None:
        """keys[l]/values[l] [B,H,hd] written at each row's own position ``positions`` [B] (backends whose
        step graphs return the new K/V; the torch backend's step stores them itself)."""
        for i in range(self.n_layer):
            store_position(self.keys[i], self.values[i], positions, keys[i], values[i])


class TorchBackend:
    """Backend protocol on eager PyTorch."""

    name = "torch"

    def __init__(self, gpt: BatchedGPT, vocoder: Any = None, device: str = "cpu",
                 tuning: EngineTuning | None = None) -> None:
        tuning = tuning if tuning is not None else EngineTuning()
        self.torch_device = resolve_device(device)
        self.device = str(self.torch_device)
        self.gpt = gpt.to(self.torch_device).eval()
        gpt.attention = tuning.attention
        if self.torch_device.type == "cpu" and tuning.packed_linear:
            # oneDNN's blocked weights: 1.3-1.7x faster decode steps than MKL on plain ones (packed_linear)
            gpt.pack_linears()
        self.vocoder = vocoder
        self.top_k_out = gpt.top_k_out
        self.vocab_size = gpt.config.vocab_size
        self.eos = gpt.config.eos
        d = gpt.config
        self.cache = TorchKVCache(d.n_layer, d.n_head, d.head_dim, self.torch_device, dtype=gpt.weight_dtype,
                                  huge_pages=tuning.huge_pages)
        self.precision = "fp32" if gpt.weight_dtype == torch.float32 else str(gpt.weight_dtype).split(".")[-1]
        self.precision_report: dict[str, Any] = {}

    # ------------------------------------------------------------------ cache
    def start(self, slots: int, capacity: int) -> None:
        self.cache.allocate(slots, capacity)

    def ensure_capacity(self, needed: int, allow_shrink: bool = False) -> None:
        self.cache.grow(needed, allow_shrink)

    def compact(self, keep: np.ndarray) -> None:
        self.cache.compact(self._t(keep.astype(np.int64)))

    def release(self) -> None:
        self.cache.free()

    def _t(self, array: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.torch_device)

    @staticmethod
    def _out(values: Tensor, indices: Tensor, lse: Tensor, logits: Tensor | None) -> Candidates:
        return Candidates(values=values.float().cpu().numpy(), indices=indices.cpu().numpy(),
                          lse=lse.float().cpu().numpy(),
                          logits=None if logits is None else logits.float().cpu().numpy())

    # ------------------------------------------------------------------ GPT
    @torch.inference_mode()
    def prefill(self, slots: np.ndarray, batch: PrefillBatch, return_logits: bool = False) -> Candidates:
        self.ensure_capacity(batch.total_len)
        rows = self._t(slots.astype(np.int64))
        vals, idx, lse, _keys, _values, logits = self.gpt.prefill(
            self._t(batch.phone_ids), self._t(batch.bert), self._t(batch.text_lens), self._t(batch.prompt),
            self._t(batch.presence), self._t(batch.penalty), self._t(batch.eos_block), return_logits,
            store=lambda layer, keys, values: self.cache.write_layer_rows(layer, rows, keys, values))
        return self._out(vals, idx, lse, logits)

    @torch.inference_mode()
    def step(self, inputs: StepInputs, return_logits: bool = False) -> Candidates:
        self.ensure_capacity(int(inputs.cache_lens.max()) + 1)
        lens = self._t(inputs.cache_lens)
        vals, idx, lse, _new_k, _new_v, logits = self.gpt.step(
            self._t(inputs.tokens), self._t(inputs.positions), lens, self._t(inputs.presence),
            self._t(inputs.penalty), self._t(inputs.eos_block), self.cache.keys, self.cache.values,
            return_logits, store_new=True)  # the step writes its new K/V into the cache itself
        return self._out(vals, idx, lse, logits)

    # ------------------------------------------------------------------ SoVITS
    def vocode(self, items: list[VocodeItem], speed: float, noise_scale: float,
               seeds: list[int]) -> list[np.ndarray]:
        if self.vocoder is None:
            raise BackendUnavailableError("this backend was built without a SoVITS model")
        return self.vocoder.render(items, speed=speed, noise_scale=noise_scale, seeds=seeds)
