"""Automatic batch size from the KV-cache memory budget."""

from __future__ import annotations

import torch

from renderer.engine.batching import CPU_KV_BUDGET, auto_batch_size, kv_bytes_per_row

FULL = (24, 512)  # full-size v2 GPT: layers, width


def test_full_size_rows_follow_the_cache_dtype() -> None:
    assert kv_bytes_per_row(*FULL, torch.float32) == 2 * 24 * 512 * 500 * 4
    assert kv_bytes_per_row(*FULL, torch.bfloat16) * 2 == kv_bytes_per_row(*FULL, torch.float32)
    fp32 = auto_batch_size(*FULL, torch.float32, "cpu")
    bf16 = auto_batch_size(*FULL, torch.bfloat16, "cpu")
    assert (fp32, bf16) == (32, 64)
    assert fp32 * kv_bytes_per_row(*FULL, torch.float32) <= CPU_KV_BUDGET


def test_budget_override_and_limits() -> None:
    assert auto_batch_size(*FULL, torch.float32, "cpu", budget_mb=100) == 2  # 100 MB / 49 MB per row
    assert auto_batch_size(*FULL, torch.float32, "cpu", budget_mb=1) == 1  # never below one row
    assert auto_batch_size(2, 32, torch.float32, "cpu", budget_mb=100000) == 64  # tiny model: capped for CPU
