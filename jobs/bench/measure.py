"""Throughput benchmark of the engine on a full-size random v2 voice (library side of ``render bench``).

Figures (each the median of >= 3 timed runs after a warm-up, with min and max):
* machine peak: fp32 / bf16 / int8 GEMM GFLOP/s (2048^3, 1024^3 in quick mode) and memory read GB/s;
* GPT prefill positions/s and decode tokens/s per batch size: ``gpt_decode_bN`` counts the decode steps
  alone, ``gpt_decode_wall_bN`` the whole decode phase (steps plus the host's per-token sampling, cache
  growth and compaction, what a worker gets). Random weights rarely emit EOS, so every chunk decodes a
  FIXED number of tokens: rows are teacher-forced with random tokens (sampling still runs);
* SoVITS real-time factor (wall seconds / audio seconds) at batch 1 and batched;
* end-to-end chapter RTF: English text -> chunks -> phones -> GPT -> SoVITS -> joined audio;
* peak resident memory, and achieved FLOP/s as a fraction of the measured fp32 peak.

FLOP counts (multiply-add = 2 FLOPs), d = model width, L = layers, V = 1025:
* GPT per position, linear part: L * 2 * (3d^2 + d^2 + 8d^2) = 24 L d^2 (q/k/v, out, two FFN layers);
* attention per position over n keys: L * 4 * d * n (scores and weighted values);
* output layer: 2 d V per generated token (once per row for prefill);
* SoVITS: counted with forward hooks on every Conv1d / ConvTranspose1d / Linear during the run
  (2 * output elements * input channels per group * kernel size).
"""

from __future__ import annotations

import os
import resource
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from renderer.engine.options import SamplingOptions
from renderer.hardware import cpu_has_bf16, cpu_info, cpu_isa


@dataclass
class Figure:
    """One measured quantity: median/min/max over runs, unit, and context."""

    name: str
    unit: str
    median: float
    low: float
    high: float
    runs: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "unit": self.unit, "median": self.median, "min": self.low, "max": self.high,
                "runs": self.runs, **self.extra}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Figure:
        """The inverse of :meth:`to_dict` (every key beyond the six fixed ones goes back into ``extra``)."""
        fixed = {"name", "unit", "median", "min", "max", "runs"}
        return cls(data["name"], data["unit"], data["median"], data["min"], data["max"], data["runs"],
                   {k: v for k, v in data.items() if k not in fixed})

    @classmethod
    def from_values(cls, name: str, unit: str, values: list[float], extra: dict[str, Any]) -> Figure:
        """Median, min and max of values recorded elsewhere (e.g. beside another timed figure)."""
        return cls(name, unit, float(statistics.median(values)), min(values), max(values), len(values), extra)


def measure(fn: Callable[[], float], runs: int = 3, warmup: int = 1) -> tuple[float, float, float]:
    """``fn`` returns a rate (higher is better) or a time; median, min, max of ``runs`` after warm-up."""
    for _ in range(warmup):
        fn()
    values = [fn() for _ in range(max(3, runs))]
    return statistics.median(values), min(values), max(values)


def figure(name: str, unit: str, fn: Callable[[], float], runs: int = 3, warmup: int = 1, **extra: Any) -> Figure:
    med, low, high = measure(fn, runs, warmup)
    return Figure(name, unit, med, low, high, max(3, runs), extra)


def peak_rss_mb() -> float:
    """Peak resident set size of this process (MB)."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0


class RssPeak:
    """Peak resident memory (MB) of this process while the block runs, sampled every 10 ms
    (``ru_maxrss`` cannot be reset, so it cannot give one stage's peak)."""

    def __init__(self, interval_s: float = 0.01, on_sample: Callable[[float], None] | None = None) -> None:
        self.interval_s = interval_s
        self.on_sample = on_sample
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RssPeak:
        import psutil

        from renderer.memory import release_free_memory

        release_free_memory()  # free pages an earlier stage left in the heap are not this stage's
        process = psutil.Process()

        def sample() -> None:
            while not self._stop.is_set():
                rss_mb = process.memory_info().rss / 2**20
                self.peak_mb = max(self.peak_mb, rss_mb)
                if self.on_sample is not None:
                    self.on_sample(rss_mb)
                self._stop.wait(self.interval_s)

        self._thread = threading.Thread(target=sample, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


# ------------------------------------------------------------------------------------------ machine
def gemm_rate(dtype: torch.dtype, n: int) -> Callable[[], float]:
    """GFLOP/s of an n^3 matrix product in ``dtype`` (int8 via torch._int_mm, int32 accumulate; float:
    the faster of torch.mm and oneDNN's packed linear in each run)."""
    if dtype == torch.int8:
        a = torch.randint(-100, 100, (n, n), dtype=torch.int8)
        b = torch.randint(-100, 100, (n, n), dtype=torch.int8)

        def run() -> float:
            start = time.perf_counter()
            torch._int_mm(a, b)
            return 2 * n**3 / (time.perf_counter() - start) / 1e9
        return run
    x = torch.randn(n, n).to(dtype)
    y = torch.randn(n, n).to(dtype)
    # the engine's linears run on oneDNN's packed weights (packed_linear), which beat MKL's sgemm here
    # (≈ 210 vs ≈ 160 GFLOP/s fp32 on the 2-core development machine): the peak is the faster of the two
    from renderer.engine.packed_linear import packing_available

    packed = torch.ops.mkldnn._reorder_linear_weight(y.t().contiguous(), None) if packing_available() else None

    def run_float() -> float:
        best = 0.0
        for use_packed in (False, True) if packed is not None else (False,):
            start = time.perf_counter()
            if use_packed:
                torch.ops.mkldnn._linear_pointwise(x, packed, None, "none", [], "")
            else:
                torch.mm(x, y)
            best = max(best, 2 * n**3 / (time.perf_counter() - start) / 1e9)
        return best
    return run_float


def memory_read_rate(mb: int = 512) -> Callable[[], float]:
    """GB/s of summing a large float32 array (read-dominated)."""
    data = torch.ones(mb * 1024 * 1024 // 4)

    def run() -> float:
        start = time.perf_counter()
        data.sum()
        return data.numel() * 4 / (time.perf_counter() - start) / 1e9
    return run


def machine_peak(quick: bool) -> list[Figure]:
    n = 1024 if quick else 2048
    out = [figure("gemm_fp32", "GFLOP/s", gemm_rate(torch.float32, n), size=n)]
    if cpu_has_bf16():
        out.append(figure("gemm_bf16", "GFLOP/s", gemm_rate(torch.bfloat16, n), size=n))
    try:
        out.append(figure("gemm_int8", "GOP/s", gemm_rate(torch.int8, n), size=n))
    except RuntimeError:  # pragma: no cover - torch build without CPU _int_mm
        pass
    out.append(figure("memory_read", "GB/s", memory_read_rate(256)))
    return out


def machine_info(threads: int) -> dict[str, Any]:
    cpu = cpu_info()
    return {"cpu": cpu.model, "cores": cpu.logical_cpus, "threads": threads, "isa": cpu_isa(),
            "torch": torch.__version__, "load_average": os.getloadavg()}


# ------------------------------------------------------------------------------------------ FLOP counts
def gpt_flops_per_token(d: int, n_layer: int, keys: float, vocab: int = 1025) -> float:
    """FLOPs of one decoded token attending to ``keys`` cached positions (see module docstring)."""
    return n_layer * (24 * d * d + 4 * d * keys) + 2 * d * vocab


def gpt_prefill_flops(d: int, n_layer: int, positions: int, rows: int) -> float:
    """FLOPs of a prefill of ``rows`` rows of ``positions`` positions (full attention upper bound)."""
    return rows * (n_layer * (24 * d * d * positions + 4 * d * positions * positions) + 2 * d * 1025)


class ConvFlopCounter:
    """Counts FLOPs of Conv1d / ConvTranspose1d / Linear modules with forward hooks."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.flops = 0.0
        self.handles = [m.register_forward_hook(self._hook) for m in model.modules()
                        if isinstance(m, (torch.nn.Conv1d, torch.nn.ConvTranspose1d, torch.nn.Linear))]

    def _hook(self, module: torch.nn.Module, inputs: Any, output: torch.Tensor) -> None:
        if isinstance(module, torch.nn.Linear):
            self.flops += 2.0 * output.numel() * module.in_features
        elif isinstance(module, torch.nn.ConvTranspose1d):
            x = inputs[0]
            self.flops += 2.0 * x.numel() * module.out_channels // module.groups * module.kernel_size[0]
        else:
            conv = module
            assert isinstance(conv, torch.nn.Conv1d)
            self.flops += 2.0 * output.numel() * conv.in_channels // conv.groups * conv.kernel_size[0]

    def close(self) -> None:
        for h in self.handles:
            h.remove()


# ------------------------------------------------------------------------------------------ options
def fixed_length_options(n_tokens: int) -> SamplingOptions:
    """Sampling as in production (top_k 15), with a fixed token budget per chunk."""
    return SamplingOptions(top_k=15, max_tokens=n_tokens, seed=0)
