"""What the engine needs from a backend: prefill, step, vocode. The decode loop is written once on top.

This protocol belongs to the engine; the implementations (``renderer.backends``: torch, ONNX Runtime,
TensorRT) depend on it, never the other way round.

A backend owns the KV cache of ``slots`` rows. ``prefill`` runs the first pass for some rows and writes
their K/V into the given slots; ``step`` advances every slot by one token and writes the new K/V at each
row's ``cache_len``. Both return only top-K candidates (see :mod:`renderer.engine.batched_gpt`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass
class Candidates:
    """Top-K of the penalised logits per row.

    values [b, K] float32 (descending), indices [b, K] int64, lse [b] float32 (log-sum-exp of the whole
    penalised row), logits [b, V] float32 raw logits only when a backend was asked for them (tests).
    """

    values: np.ndarray
    indices: np.ndarray
    lse: np.ndarray
    logits: np.ndarray | None = None


@dataclass
class PrefillBatch:
    """Inputs of one prefill call (b rows, padded to the longest text).

    phone_ids [b, X] int64, bert [b, 1024, X] float32, text_lens [b] int64, prompt [b, Y] int64,
    presence [b, V] float32, penalty [b] float32, eos_block [b] float32.
    """

    phone_ids: np.ndarray
    bert: np.ndarray
    text_lens: np.ndarray
    prompt: np.ndarray
    presence: np.ndarray
    penalty: np.ndarray
    eos_block: np.ndarray

    @property
    def total_len(self) -> int:
        return int(self.phone_ids.shape[1] + self.prompt.shape[1])


@dataclass
class StepInputs:
    """Inputs of one decode step over all B slots (dead slots: token 0, position 0, cache_len 0).

    tokens [B] int64, positions [B] int64 (semantic sine position), cache_lens [B] int64,
    presence [B, V] float32, penalty [B] float32, eos_block [B] float32.
    """

    tokens: np.ndarray
    positions: np.ndarray
    cache_lens: np.ndarray
    presence: np.ndarray
    penalty: np.ndarray
    eos_block: np.ndarray


@dataclass
class VocodeItem:
    """One chunk to render: semantic tokens [T] int64 and target phone ids [N] int64."""

    key: str
    tokens: np.ndarray
    phone_ids: np.ndarray


class Backend(Protocol):
    """What the decode loop needs from an execution engine."""

    name: str
    device: str
    top_k_out: int
    vocab_size: int
    eos: int

    def start(self, slots: int, capacity: int) -> None:
        """(Re)allocate a zeroed cache of ``slots`` rows x ``capacity`` positions."""

    def ensure_capacity(self, needed: int, allow_shrink: bool = False) -> None:
        """Resize the cache (contents kept) so ``needed`` positions fit; shrink only when allowed (the
        caller guarantees no live row is longer than ``needed``)."""

    def compact(self, keep: np.ndarray) -> None:
        """Keep only cache rows ``keep`` [k] int64 (in that order), which become rows 0..k-1."""

    def release(self) -> None:
        """Free the cache between runs (``start`` allocates a new one)."""

    def prefill(self, slots: np.ndarray, batch: PrefillBatch, return_logits: bool = False) -> Candidates:
        """First pass of ``batch`` written into cache rows ``slots``."""

    def step(self, inputs: StepInputs, return_logits: bool = False) -> Candidates:
        """One token for every slot; writes the new K/V at ``inputs.cache_lens``."""

    def vocode(self, items: list[VocodeItem], speed: float, noise_scale: float,
               seeds: list[int]) -> list[np.ndarray]:
        """SoVITS decode of several chunks (batched by the backend); float32 mono 32 kHz audio each."""
