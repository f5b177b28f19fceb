"""The book stage's floors: the work each stage must do (counted, not timed) and the least time it takes.

For every chunk of the book the work is known from its phones and its tokens (:func:`book_work`):

* prefill: one GPT pass over P = reference phones + target phones + prompt tokens positions,
  ``gpt_prefill_flops`` (24 L d^2 per position, full attention, the output layer once);
* decode steps, linears: 24 L d^2 + 2 d V FLOPs per generated token (:func:`gpt_flops_per_token` without
  the attention term), bounded by the GEMM peak;
* decode steps, attention: every generated token reads its row's cached keys and values once,
  2 x n x d x L x element size bytes at n cached positions (P, P+1, ...), bounded by the memory bandwidth;
* vocoder: the FLOPs of one chunk of the book's mean shape counted with hooks on the SoVITS modules
  (:class:`jobs.bench.measure.ConvFlopCounter`), scaled by the book's tokens.

A stage's floor is its work at the machine's peak measured in the same ``render bench`` run
(``gemm_fp32``/``gemm_bf16`` for the precision in use, ``memory_read``); its fraction of peak is floor /
measured wall seconds of that activity (:func:`stage_floors`). The book's floor RTF is the sum of the
floors over the audio seconds: what a machine that ran every stage at its peak, one after the other, would
reach.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from jobs.bench.measure import gpt_prefill_flops

#: Output vocabulary of the semantic GPT (1024 codes + EOS).
VOCAB = 1025


@dataclass(frozen=True)
class BookWork:
    """FLOPs and bytes the book's chunks need, per stage."""

    prefill_flops: float
    linear_flops: float
    attention_bytes: float
    vocoder_flops: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def book_work(chunks: Sequence[tuple[int, int]], prompt_positions: int, d: int, n_layer: int, kv_bytes: int,
              vocoder_flops_per_token: float) -> BookWork:
    """Work of ``chunks`` ((target phones, generated tokens) each) with a voice whose prompt adds
    ``prompt_positions`` (reference phones + prompt tokens) to every row; ``kv_bytes``: bytes per cached
    element."""
    prefill = linears = attention = 0.0
    tokens = 0
    for phones, generated in chunks:
        positions = prompt_positions + phones
        prefill += gpt_prefill_flops(d, n_layer, positions, 1)
        linears += generated * (24 * n_layer * d * d + 2 * d * VOCAB)
        # token i (0-based) reads positions + i cached positions of keys and of values, in every layer
        read_positions = generated * positions + generated * (generated - 1) / 2
        attention += read_positions * 2 * d * n_layer * kv_bytes
        tokens += generated
    return BookWork(prefill, linears, attention, vocoder_flops_per_token * tokens)


def vocoder_flops_per_token(engine: Any, chunks: Sequence[tuple[int, int]]) -> float:
    """FLOPs per semantic token of the engine's vocoder on one chunk of the book's mean shape (0 without a
    torch vocoder)."""
    from jobs.bench.stages import _reference_flops
    from renderer.engine.backend import VocodeItem

    model = getattr(getattr(engine.backend, "vocoder", None), "model", None)
    if model is None or not chunks:
        return 0.0
    phones = max(1, round(float(np.mean([c[0] for c in chunks]))))
    tokens = max(1, round(float(np.mean([c[1] for c in chunks]))))
    rng = np.random.default_rng(0)
    item = VocodeItem("floor", rng.integers(0, 1024, tokens), rng.integers(1, 732, phones))
    flops = _reference_flops(model, lambda: engine.backend.vocode([item], speed=1.0, noise_scale=0.5, seeds=[0]))
    return float(flops) / tokens


def stage_floors(work: dict[str, float], activities: dict[str, dict[str, float]], audio_s: float,
                 gemm_gflops: float, memory_gbps: float) -> dict[str, Any]:
    """Per stage: measured wall seconds, floor seconds at the peaks, fraction of peak reached (floor / wall),
    and the rate reached (GFLOP/s or GB/s); with the book's floor RTF."""
    gemm, memory = gemm_gflops * 1e9, memory_gbps * 1e9
    parts = {
        "prefill": ("prefill", work["prefill_flops"] / gemm, work["prefill_flops"] / 1e9, "GFLOP/s"),
        "decode linears": ("decode steps", work["linear_flops"] / gemm, work["linear_flops"] / 1e9, "GFLOP/s"),
        "decode attention": ("decode steps", work["attention_bytes"] / memory, work["attention_bytes"] / 1e9, "GB/s"),
        "vocoder": ("vocoder", work["vocoder_flops"] / gemm, work["vocoder_flops"] / 1e9, "GFLOP/s"),
    }
    stages: dict[str, Any] = {}
    for name, (activity, floor_s, amount, unit) in parts.items():
        wall = activities.get(activity, {}).get("wall_s", 0.0)
        stages[name] = {"activity": activity, "wall_s": wall, "floor_s": floor_s, "unit": unit,
                        "fraction_of_peak": floor_s / wall if wall else None,
                        # the decode step's two parts share one measured wall time: the rate is an upper bound
                        "rate": amount / wall if wall else None}
    step_floor = stages["decode linears"]["floor_s"] + stages["decode attention"]["floor_s"]
    step_wall = stages["decode linears"]["wall_s"]
    stages["decode steps"] = {"activity": "decode steps", "wall_s": step_wall, "floor_s": step_floor,
                              "fraction_of_peak": step_floor / step_wall if step_wall else None}
    total_floor = sum(stages[n]["floor_s"] for n in ("prefill", "decode steps", "vocoder"))
    return {"stages": stages, "floor_s": total_floor, "floor_rtf": total_floor / audio_s if audio_s else None,
            "gemm_gflops": gemm_gflops, "memory_gbps": memory_gbps}


def format_floors(floors: dict[str, Any]) -> list[str]:
    """Table lines: stage, wall seconds, floor seconds, fraction of peak, rate reached."""
    lines = [f"  floors at {floors['gemm_gflops']:.0f} GFLOP/s and {floors['memory_gbps']:.1f} GB/s "
             f"(this run's peaks): book floor RTF {floors['floor_rtf'] or 0:.3f}",
             f"  {'stage':<20}{'wall s':>9}{'floor s':>9}{'of peak':>9}{'rate':>14}"]
    for name, s in floors["stages"].items():
        frac = f"{100 * s['fraction_of_peak']:.0f}%" if s["fraction_of_peak"] is not None else ""
        rate = f"{s['rate']:.1f} {s['unit']}" if s.get("rate") is not None else ""
        lines.append(f"  {name:<20}{s['wall_s']:>9.1f}{s['floor_s']:>9.1f}{frac:>9}{rate:>14}")
    return lines
