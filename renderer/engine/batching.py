"""The automatic batch size: as many GPT rows as the KV-cache memory budget allows.

Decode throughput grows with the batch (the weights are read once per step for every row), but every
row holds its own KV cache: ``2 x n_layer x d_model`` values per position, at up to
:data:`PLANNED_POSITIONS` positions (≈ 60 + 60 phones, 150 prompt tokens and a long chunk's tokens).
For the full-size v2 GPT that is 48 MB per row in float32 and 24 MB in bfloat16, so on a CPU with the
default budget fp32 runs 32 rows and bf16 64 (measured best: BENCHMARKS.md), and the process stays
under 3 GB.
"""

from __future__ import annotations

import torch

#: Cache positions planned per row (the cache itself grows only as far as the longest live row).
PLANNED_POSITIONS = 500
#: Default KV-cache budget on CPU (bytes); ``EngineTuning.kv_budget_mb`` (``RENDER_KV_BUDGET_MB``) overrides it.
CPU_KV_BUDGET = 1600 * 2**20
#: Share of the free GPU memory the cache may take.
GPU_KV_SHARE = 0.5
#: Largest automatic batch on CPU (bigger batches gain little there and cost memory) and on GPU.
CPU_MAX_ROWS = 64
GPU_MAX_ROWS = 256


def kv_bytes_per_row(n_layer: int, d_model: int, dtype: torch.dtype, positions: int = PLANNED_POSITIONS) -> int:
    """Bytes of keys + values one row needs for ``positions`` positions."""
    return 2 * n_layer * d_model * positions * torch.empty(0, dtype=dtype).element_size()


def kv_budget_bytes(device: str, budget_mb: float | None = None) -> int:
    """Memory the KV cache may use on ``device``: ``budget_mb`` when given, else the device's default."""
    if budget_mb is not None:
        return int(budget_mb * 2**20)
    if device.startswith("cuda") and torch.cuda.is_available():
        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free * GPU_KV_SHARE)
    return CPU_KV_BUDGET


def auto_batch_size(n_layer: int, d_model: int, dtype: torch.dtype, device: str,
                    budget_mb: float | None = None) -> int:
    """The largest power-of-two batch (at least 1) whose planned cache fits the budget."""
    per_row = kv_bytes_per_row(n_layer, d_model, dtype)
    limit = GPU_MAX_ROWS if device.startswith("cuda") else CPU_MAX_ROWS
    fits = max(1, kv_budget_bytes(device, budget_mb) // per_row)
    rows = 1
    while rows * 2 <= min(fits, limit):
        rows *= 2
    return rows
