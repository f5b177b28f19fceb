"""Decode-step attention against the KV cache: a fused CPU kernel (numba) with a pure-torch fallback.

One decode step attends each row's single new query to its cache plus its own new key/value:

    scores = [q . K[:, :n] * scale | q . k_new * scale]     (one softmax over both parts)
    out    = softmax(scores) @ [V[:n] ; v_new]

Layouts (those of :class:`renderer.backends.torch_backend.TorchKVCache`):
    q, k_new, v_new: [B, H, 1, hd] float32
    past_keys:       [B, H, hd, cap]  float32 or bfloat16 (stored transposed)
    past_values:     [B, H, cap, hd]  float32 or bfloat16
    cache_lens:      [B] int64; positions >= cache_lens[b] are not read (the torch path masks them
                     with the additive ``mask`` [B, 1, 1, cap] of 0 / -inf)

Why a kernel: at batch 32-64 the two batched GEMVs (``torch.matmul`` of a 1-row query) reach about half
the memory bandwidth in float32 and run no faster in bfloat16 than in float32, so the step's attention
was kernel-bound. The numba kernel streams each (row, head)'s keys once for the scores and its values
once for the output, skips the unused tail of the cache, widens bfloat16 bits to float32 in registers
(bf16 is the top half of a float32) and accumulates in float32.

The kernel is used only for CPU tensors, outside tracing/ONNX export/``torch.compile`` and autograd, and
when numba imports; ``RENDER_STEP_ATTENTION=torch`` forces the torch path (``numba`` requires the
kernel, ``auto`` is the default). Nothing is compiled at import: the first call compiles (or loads
from the on-disk cache in ``$NUMBA_CACHE_DIR`` or ``~/.cache/audiobook-renderer/numba``).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from renderer.errors import BackendUnavailableError

ENV_VAR = "RENDER_STEP_ATTENTION"
MODES = ("auto", "numba", "torch")
_KERNEL_DTYPES = (torch.float32, torch.bfloat16)

_lock = threading.Lock()
_kernel: Any = None  # the compiled dispatcher, once built
_kernel_error: str | None = None  # why it could not be built (numba missing, ...)


# --------------------------------------------------------------------------------------- public API
def step_attention(q: Tensor, k_new: Tensor, v_new: Tensor, past_keys: Tensor, past_values: Tensor,
                   cache_lens: Tensor, mask: Tensor, scale: float) -> Tensor:
    """Attention of one new token per row over its cache and itself; returns [B, H, 1, hd] in q's dtype.

    q, k_new, v_new [B, H, 1, hd]; past_keys [B, H, hd, cap]; past_values [B, H, cap, hd]; cache_lens [B];
    mask [B, 1, 1, cap] additive (0 / -inf, equal to ``arange(cap) >= cache_lens``), used by the torch path.
    """
    if _use_kernel(q, past_keys, past_values, cache_lens):
        return _kernel_attention(q, k_new, v_new, past_keys, past_values, cache_lens, scale)
    return torch_step_attention(q, k_new, v_new, past_keys, past_values, mask, scale)


def torch_step_attention(q: Tensor, k_new: Tensor, v_new: Tensor, past_keys: Tensor, past_values: Tensor,
                         mask: Tensor, scale: float) -> Tensor:
    """The reference formulation (two batched GEMVs, one softmax over [cache | new]); any device, traceable."""
    kd = past_keys.dtype  # float32, or bfloat16 for the reduced-precision cache
    s_cache = torch.matmul(q.to(kd), past_keys).to(q.dtype) * scale + mask  # [B, H, 1, cap]
    s_new = (q * k_new).sum(dim=-1, keepdim=True) * scale  # [B, H, 1, 1]
    # one softmax over [cache | new]: only the scores are concatenated, never the cache
    p = torch.softmax(torch.cat([s_cache, s_new], dim=-1), dim=-1)
    cap = past_keys.shape[-1]
    return torch.matmul(p[..., :cap].to(kd), past_values).to(q.dtype) + p[..., cap:] * v_new  # [B, H, 1, hd]


def mode() -> str:
    """The configured mode from ``$RENDER_STEP_ATTENTION`` (auto | numba | torch)."""
    value = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    if value not in MODES:
        raise BackendUnavailableError(f"{ENV_VAR}={value!r}: expected one of {', '.join(MODES)}")
    return value


def kernel_available() -> bool:
    """True when the numba kernel can be built (compiles it on first call, so not free)."""
    return _get_kernel() is not None


def cache_dir() -> Path:
    """Where the compiled kernel is cached: $NUMBA_CACHE_DIR, else $XDG_CACHE_HOME/audiobook-renderer/numba."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "audiobook-renderer" / "numba"


# --------------------------------------------------------------------------------------- dispatch
def _use_kernel(q: Tensor, past_keys: Tensor, past_values: Tensor, cache_lens: Tensor) -> bool:
    """Kernel only where it is exact and safe: eager CPU inference on float32 queries."""
    chosen = mode()
    if chosen == "torch" or _tracing():
        return False
    eligible = (q.device.type == "cpu" and past_keys.device.type == "cpu" and past_values.device.type == "cpu"
                and cache_lens.device.type == "cpu" and q.dtype == torch.float32
                and past_keys.dtype in _KERNEL_DTYPES and past_values.dtype == past_keys.dtype
                and past_keys.is_contiguous() and past_values.is_contiguous()
                and not (torch.is_grad_enabled() and (q.requires_grad or past_keys.requires_grad
                                                      or past_values.requires_grad)))
    if not eligible:
        return False
    if _get_kernel() is None:
        if chosen == "numba":
            raise BackendUnavailableError(f"{ENV_VAR}=numba but the kernel is unavailable: {_kernel_error}")
        return False
    return True


def _tracing() -> bool:
    """Tracing, ONNX export and torch.compile must see the torch ops, never an opaque numpy call."""
    if torch.jit.is_tracing() or torch.jit.is_scripting():
        return True
    if torch.onnx.is_in_onnx_export():
        return True
    return bool(torch.compiler.is_compiling())


def _as_numpy(t: Tensor) -> np.ndarray:
    """Zero-copy numpy view; bfloat16 (no numpy dtype) is viewed as its uint16 bit patterns."""
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(np.uint16)
    return t.numpy()


def _kernel_attention(q: Tensor, k_new: Tensor, v_new: Tensor, past_keys: Tensor, past_values: Tensor,
                      cache_lens: Tensor, scale: float) -> Tensor:
    """Run the compiled kernel with numba's thread count following torch's at call time."""
    b, h, _, hd = q.shape
    qs = q.detach().reshape(b, h, hd).contiguous()
    ks = k_new.detach().reshape(b, h, hd).to(torch.float32).contiguous()
    vs = v_new.detach().reshape(b, h, hd).to(torch.float32).contiguous()
    lens = cache_lens.detach().to(torch.int64).contiguous()
    out = torch.empty(b, h, 1, hd, dtype=torch.float32)
    _set_threads(torch.get_num_threads())
    _kernel(qs.numpy(), ks.numpy(), vs.numpy(), _as_numpy(past_keys.detach()),
            _as_numpy(past_values.detach()), lens.numpy(), np.float32(scale), out.view(b, h, hd).numpy())
    return out


def _set_threads(n: int) -> None:
    """numba's pool size is fixed at its first use (NUMBA_NUM_THREADS); per-call counts may only shrink it."""
    import numba

    config: Any = numba.config
    n = max(1, min(n, config.NUMBA_NUM_THREADS))
    if numba.get_num_threads() != n:
        numba.set_num_threads(n)


# --------------------------------------------------------------------------------------- kernel
def _get_kernel() -> Any:
    """Build (once) the njit dispatcher; None with ``_kernel_error`` set when numba is unusable."""
    global _kernel, _kernel_error
    if _kernel is not None or _kernel_error is not None:
        return _kernel
    with _lock:
        if _kernel is None and _kernel_error is None:
            try:
                _kernel = _build_kernel()
            except Exception as exc:  # numba missing or broken: the torch path still works
                _kernel_error = f"{type(exc).__name__}: {exc}"
    return _kernel


def _build_kernel() -> Any:
    """njit the kernel with its on-disk cache in :func:`cache_dir` (compiles lazily, per dtype)."""
    import numba

    global _widen, _exp2i, _expf, _prange
    _widen, _exp2i = _make_intrinsics()
    _prange = numba.prange
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    config: Any = numba.config
    saved = config.CACHE_DIR
    config.CACHE_DIR = str(folder)  # read when the cache locator is picked, i.e. at decoration
    try:
        _expf = numba.njit(inline="always", fastmath=True, cache=True)(_fast_exp)
        return numba.njit(parallel=True, fastmath=True, cache=True, nogil=True)(_attend_rows)
    finally:
        config.CACHE_DIR = saved


def _make_intrinsics() -> tuple[Any, Any]:
    """``widen``: float32 or bfloat16 bits (uint16) -> float32. ``exp``: vectorisable float32 exp."""
    from llvmlite import ir
    from numba import types
    from numba.extending import intrinsic

    i32 = ir.IntType(32)

    @intrinsic
    def widen(typingctx: Any, x: Any) -> Any:
        if isinstance(x, types.Float):
            def cast(context: Any, builder: Any, sig: Any, args: Any) -> Any:
                return context.cast(builder, args[0], x, types.float32)
            return types.float32(x), cast
        if isinstance(x, types.Integer) and getattr(x, "bitwidth", 0) == 16:
            def bits(context: Any, builder: Any, sig: Any, args: Any) -> Any:
                wide = builder.shl(builder.zext(args[0], i32), ir.Constant(i32, 16))
                return builder.bitcast(wide, ir.FloatType())
            return types.float32(x), bits
        return None

    @intrinsic
    def exp2i(typingctx: Any, n: Any) -> Any:
        """2**n for an int32 n in [-126, 127], built from the exponent bits."""
        def build(context: Any, builder: Any, sig: Any, args: Any) -> Any:
            biased = builder.add(args[0], ir.Constant(i32, 127))
            return builder.bitcast(builder.shl(biased, ir.Constant(i32, 23)), ir.FloatType())
        return types.float32(types.int32), build

    return widen, exp2i


# Globals of the compiled functions, set by _build_kernel before numba resolves them.
_widen: Any = None
_exp2i: Any = None
_expf: Any = None
_prange: Any = range


def _fast_exp(x: Any) -> Any:  # pragma: no cover - compiled by numba
    """exp(x) for x <= 0 to ~2 ulp: 2**round(x log2 e) times a degree-6 polynomial (Cephes expf)."""
    x = max(x, np.float32(-87.0))
    n = np.floor(x * np.float32(1.44269504) + np.float32(0.5))
    r = x - n * np.float32(0.693359375) + n * np.float32(2.12194440e-4)
    p = np.float32(1.9875691500e-4)
    p = p * r + np.float32(1.3981999507e-3)
    p = p * r + np.float32(8.3334519073e-3)
    p = p * r + np.float32(4.1665795894e-2)
    p = p * r + np.float32(1.6666665459e-1)
    p = p * r + np.float32(5.0000001201e-1)
    p = p * r * r + r + np.float32(1.0)
    return p * _exp2i(np.int32(n))


def _attend_rows(q: Any, k_new: Any, v_new: Any, keys: Any, values: Any, lens: Any, scale: Any,
                 out: Any) -> None:  # pragma: no cover - compiled by numba
    """One (row, head) per parallel iteration: scores, softmax with the new token, P @ V.

    q, k_new, v_new, out [B, H, hd] float32; keys [B, H, hd, cap], values [B, H, cap, hd] float32 or
    uint16 (bfloat16 bits); lens [B] int64.
    """
    nb, nh, hd = q.shape
    cap = keys.shape[3]
    for bh in _prange(nb * nh):
        b = bh // nh
        h = bh - b * nh
        n = min(max(lens[b], 0), cap)
        kt = keys[b, h]
        vv = values[b, h]
        qv = q[b, h]
        s = np.zeros(n, dtype=np.float32)
        s_new = np.float32(0.0)
        for d in range(hd):
            qd = qv[d] * scale
            s_new += qd * k_new[b, h, d]
            row = kt[d]
            for j in range(n):
                s[j] += qd * _widen(row[j])
        m = s_new
        for j in range(n):
            m = max(m, s[j])
        p_new = _expf(s_new - m)
        total = p_new
        for j in range(n):
            e = _expf(s[j] - m)
            s[j] = e
            total += e
        acc = np.zeros(hd, dtype=np.float32)
        for j in range(n):
            pj = s[j]
            vrow = vv[j]
            for d in range(hd):
                acc[d] += pj * _widen(vrow[d])
        inv = np.float32(1.0) / total
        for d in range(hd):
            out[b, h, d] = (acc[d] + p_new * v_new[b, h, d]) * inv

