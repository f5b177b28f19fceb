"""What this machine's processors can do: CPU model and instruction-set flags, CUDA devices.

``/proc/cpuinfo`` is read once per process (:func:`cpu_info`); every other module asks here instead of
parsing it again. On systems without it (not Linux) the CPU has no known flags, so every CPU-specific
fast path reports "not supported" and the float32 paths run.
"""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CpuInfo", "cpu_info", "cpu_flags", "cpu_has_bf16", "cpu_isa", "cuda_devices"]

#: Flags that mean native bf16 dot products (what the bf16 GPT and vocoder paths need).
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@dataclass(frozen=True)
class CpuInfo:
    """model: the CPU's marketing name ('' when unknown); flags: instruction-set flags of the first CPU;
    logical_cpus: what the OS reports."""

    model: str
    flags: frozenset[str] = field(default_factory=frozenset)
    logical_cpus: int = 1

    @classmethod
    def parse(cls, text: str, logical_cpus: int = 1) -> CpuInfo:
        """From the text of ``/proc/cpuinfo`` (the first processor's ``model name`` and ``flags``)."""
        model, flags = "", frozenset[str]()
        for line in text.splitlines():
            key, sep, value = line.partition(":")
            if not sep:
                continue
            key = key.strip()
            if key == "model name" and not model:
                model = value.strip()
            elif key == "flags" and not flags:
                flags = frozenset(value.split())
        return cls(model=model, flags=flags, logical_cpus=logical_cpus)


@functools.cache
def cpu_info() -> CpuInfo:
    """This machine's CPU, read once."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    info = CpuInfo.parse(text, os.cpu_count() or 1)
    return info if info.model else CpuInfo(platform.processor(), info.flags, info.logical_cpus)


def cpu_flags() -> frozenset[str]:
    """Instruction-set flags of this CPU (empty where unknown)."""
    return cpu_info().flags


def cpu_has_bf16() -> bool:
    """True when the CPU has native bf16 dot products (AVX512-BF16 or AMX)."""
    return bool(cpu_flags() & BF16_FLAGS)


def cpu_isa() -> list[str]:
    """The vector-ISA flags that matter to the engine's kernels (AVX2/FMA, AVX-512 family, AMX), sorted."""
    return sorted(f for f in cpu_flags() if f.startswith(("avx512", "amx")) or f in ("avx2", "fma"))


def cuda_devices() -> list[str]:
    """Names of the CUDA devices torch sees (empty on CPU-only machines or builds)."""
    import torch

    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
