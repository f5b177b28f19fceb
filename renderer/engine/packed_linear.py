"""Linear layers on prepacked oneDNN weights, for CPU inference of the GPT.

Why: torch's ``F.linear`` on CPU calls MKL's sgemm on the plain ``[out, in]`` weight. For the decode
step's skinny products (a few to 64 rows against 512x2048 weights) that streams the weights at only
≈ 6-11 GB/s on the 2-core development machine, a third of its memory bandwidth. oneDNN's matmul on a
weight reordered once into its blocked layout (``mkldnn._reorder_linear_weight``) ran the 24 layers'
linears at batch 17 in 22 ms instead of 43 ms, at batch 64 in 56 ms instead of 80 ms (172 GFLOP/s,
above the MKL GEMM "peak"), at batch 1 in 20 ms instead of 28 ms (BENCHMARKS.md). It also gives every
row the same result whatever the batch size (MKL does not below 8 rows), so a chunk's tokens do not
depend on the chunks decoded beside it.

The packed copy is attached to the weight ``Parameter`` itself, tagged with the parameter's storage
pointer, dtype and version counter; :func:`linear` uses it only when all three still match (a
``load_state_dict``, ``.data =`` or in-place update makes it stale, and the plain path runs), and only
in eager CPU inference: tracing, ONNX export, autograd and other devices take ``F.linear``.
Whether a backend packs at all is ``EngineTuning.packed_linear`` (``render bench --tune
packed_linear=0`` measures the plain path).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["packing_available", "pack_weights", "packed_weight", "linear"]

_ATTR = "_render_packed"


@functools.lru_cache(maxsize=1)
def packing_available() -> bool:
    """Whether this torch build exposes oneDNN's packed linear ops and they run here."""
    try:
        w = torch.ops.mkldnn._reorder_linear_weight(torch.ones(4, 4), None)
        y = torch.ops.mkldnn._linear_pointwise(torch.ones(2, 4), w, None, "none", [], "")
        return bool(torch.all(y == 4.0))
    except Exception:  # noqa: BLE001 (a probe: any failure means "not available")
        return False


def _tag(weight: Tensor) -> tuple[int, torch.dtype, int]:
    """What must not change for a packed copy to stay valid: storage, dtype and in-place version."""
    try:
        version = weight._version
    except RuntimeError:  # an inference-mode tensor has no version counter (and cannot be changed outside it)
        version = -1
    return weight.data_ptr(), weight.dtype, version


def pack_weights(weights: Iterable[Tensor]) -> int:
    """Attach a packed copy to each 2-D CPU weight (float32 or bfloat16); returns how many were packed.

    Costs one extra copy of the weights in memory (the plain ones stay for export and other paths).
    A no-op (0) when this torch build cannot pack.
    """
    if not packing_available():
        return 0
    count = 0
    with torch.no_grad():
        for weight in weights:
            if weight.device.type != "cpu" or weight.dim() != 2 or weight.dtype not in (torch.float32, torch.bfloat16):
                continue
            packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach(), None)
            setattr(weight, _ATTR, (_tag(weight), packed))
            count += 1
    return count


def unpack_weights(weights: Iterable[Tensor]) -> None:
    """Drop the packed copies (e.g. before casting the weights to another dtype)."""
    for weight in weights:
        if hasattr(weight, _ATTR):
            delattr(weight, _ATTR)


def packed_weight(weight: Tensor) -> Tensor | None:
    """The weight's packed copy if it is still current, else None."""
    entry = getattr(weight, _ATTR, None)
    if entry is None or entry[0] != _tag(weight):
        return None
    return entry[1]  # type: ignore[no-any-return]


def _eager_cpu_inference(x: Tensor) -> bool:
    if x.device.type != "cpu" or x.requires_grad:
        return False
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return False
    return not torch.compiler.is_compiling()


def linear(x: Tensor, weight: Tensor, bias: Tensor | None, relu: bool = False,
           keep_weight_dtype: bool = False) -> Tensor:
    """``F.linear`` (then ReLU when ``relu``) in the weight's dtype, the result in ``x``'s dtype (in the
    weight's dtype with ``keep_weight_dtype``).

    x [..., in], weight [out, in], bias [out] or None -> [..., out]. Reduced-precision weights: the
    activations are cast to the weight's dtype for the product and the result back, so LayerNorm,
    softmax and residuals stay float32. ``keep_weight_dtype`` skips that cast back for a result that
    only feeds the next product (the FFN's hidden layer): casting bf16/fp16 to float32 and back is
    exact, so the numbers are the same, minus two copies of the 4d-wide activation per layer.
    """
    packed = packed_weight(weight) if _eager_cpu_inference(x) else None
    if packed is None:
        y = F.linear(x if x.dtype == weight.dtype else x.to(weight.dtype), weight, bias)
        if relu:
            y = F.relu(y)
    else:
        xin = x if x.dtype == weight.dtype else x.to(weight.dtype)
        y = torch.ops.mkldnn._linear_pointwise(xin.contiguous(), packed, bias, "relu" if relu else "none", [], "")
    return y if keep_weight_dtype or y.dtype == x.dtype else y.to(x.dtype)
