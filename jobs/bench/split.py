"""The GPT decode step taken apart: its linears (GFLOP/s) and its cache attention (GB/s), each alone.

These are the two parts of a decode step that have a machine limit: the linears are matrix products of
the batch's rows with the weights (bounded by the GEMM peak), the attention streams every row's cached
keys and values once (bounded by the memory bandwidth). ``render bench`` reports each as a fraction of the
peak it measures (``gemm_fp32``/``gemm_bf16`` for the precision in use, ``memory_read``).

* linears: the 24 layers' four products (QKV in, attention out, FFN in with ReLU, FFN out) on a batch of
  one-token rows, through the same :func:`renderer.engine.batched_gpt.lin` the step calls (packed oneDNN
  weights where the backend packed them); FLOPs 2 x B x (3d^2 + d^2 + 4d^2 + 4d^2) per layer = 24 B d^2.
* attention: :func:`renderer.engine.step_attention.step_attention` of every layer over a cache filled to
  ``positions`` positions per row, as the step runs it (fused kernel where available, new K/V stored);
  bytes = rows x positions x 2 x d x element size per layer, the valid keys and values read once.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from jobs.bench.measure import Figure, figure
from renderer.engine.batched_gpt import lin
from renderer.engine.step_attention import step_attention


def _linears(gpt: Any, x: torch.Tensor) -> None:
    for layer in gpt.layers():
        attn = layer.self_attn
        lin(x, attn.in_proj_weight, attn.in_proj_bias)
        lin(x, attn.out_proj.weight, attn.out_proj.bias)
        hidden = lin(x, layer.linear1.weight, layer.linear1.bias, relu=True, keep_weight_dtype=True)
        lin(hidden, layer.linear2.weight, layer.linear2.bias)


def step_split_figures(engine: Any, batch: int, positions: int = 320, runs: int = 3) -> list[Figure]:
    """``gpt_linears_bN`` (GFLOP/s) and ``decode_attention_bN`` (GB/s of cache read) at ``batch`` rows."""
    gpt = engine.backend.gpt
    cfg = gpt.config
    d, n_layer, heads, hd = cfg.d_model, cfg.n_layer, cfg.n_head, cfg.head_dim
    dtype = engine.backend.cache.dtype
    cap = math.ceil((positions + 1) / 64) * 64
    x = torch.randn(batch, 1, d)
    keys = [torch.full((batch, heads, hd, cap), 0.01, dtype=dtype) for _ in range(n_layer)]
    values = [torch.full((batch, heads, cap, hd), 0.01, dtype=dtype) for _ in range(n_layer)]
    q = torch.randn(batch, heads, 1, hd)
    lens = torch.full((batch,), positions, dtype=torch.long)
    mask = torch.zeros(batch, 1, 1, cap)
    mask[..., positions:] = float("-inf")
    scale = 1.0 / math.sqrt(hd)

    def linears() -> float:
        start = time.perf_counter()
        _linears(gpt, x)
        return 24 * batch * d * d * n_layer / (time.perf_counter() - start) / 1e9

    def attention() -> float:
        start = time.perf_counter()
        for i in range(n_layer):
            step_attention(q, q, q, keys[i], values[i], lens, mask, scale, store=True, kernel=gpt.attention)
        seconds = time.perf_counter() - start
        return batch * positions * 2 * d * keys[0].element_size() * n_layer / seconds / 1e9

    with torch.inference_mode():
        lin_fig = figure(f"gpt_linears_b{batch}", "GFLOP/s", linears, runs=max(runs, 5), batch=batch)
        att_fig = figure(f"decode_attention_b{batch}", "GB/s", attention, runs=max(runs, 5), batch=batch,
                         positions=positions, cache_dtype=str(dtype).replace("torch.", ""))
    lin_fig.extra["gflops"] = lin_fig.median
    att_fig.extra["gbps"] = att_fig.median
    return [lin_fig, att_fig]
