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

Threads: the kernel runs on ``torch.get_num_threads()`` threads of torch's own OpenMP pool (it calls
``GOMP_parallel`` of the libgomp torch loaded), so the step's matmuls and its attention share one set of
threads; a second pool (numba's ``omp``/``workqueue`` layers) would fight torch's still-spinning workers
for the same cores. Where torch's OpenMP runtime is not found the kernel uses numba's pool instead.

The kernel is used only for CPU tensors, outside tracing/ONNX export/``torch.compile`` and autograd, and
when numba imports; ``kernel="torch"`` forces the torch path and ``"numba"`` requires the kernel
(``auto`` is the default; ``EngineTuning.attention`` chooses it for an engine). Nothing is compiled at
import: the first call compiles (≈ 3 s per cache dtype, once per machine) or loads from the on-disk
cache in ``$NUMBA_CACHE_DIR`` or ``$XDG_CACHE_HOME/audiobook-renderer/numba`` (default ``~/.cache/...``).
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from renderer.errors import BackendUnavailableError
from renderer.tuning import ATTENTION_KERNELS

MODES = ATTENTION_KERNELS
_KERNEL_DTYPES = (torch.float32, torch.bfloat16)

_lock = threading.Lock()
_kernel: _Runner | None = None  # the compiled kernel's runner, once built
_kernel_error: str | None = None  # why it could not be built (numba missing, ...)


# --------------------------------------------------------------------------------------- public API
def step_attention(q: Tensor, k_new: Tensor, v_new: Tensor, past_keys: Tensor, past_values: Tensor,
                   cache_lens: Tensor, mask: Tensor, scale: float, store: bool = False,
                   kernel: str = "auto") -> Tensor:
    """Attention of one new token per row over its cache and itself; returns [B, H, 1, hd] in q's dtype.

    q, k_new, v_new [B, H, 1, hd]; past_keys [B, H, hd, cap]; past_values [B, H, cap, hd]; cache_lens [B];
    mask [B, 1, 1, cap] additive (0 / -inf, equal to ``arange(cap) >= cache_lens``), used by the torch path.
    ``store``: also write k_new / v_new into the cache at position cache_lens[b] (the kernel does it while
    it holds that row; every cache_lens[b] must be < cap). ``kernel``: one of :data:`MODES`.
    """
    if _use_kernel(q, past_keys, past_values, cache_lens, kernel):
        return _kernel_attention(q, k_new, v_new, past_keys, past_values, cache_lens, scale, store)
    out = torch_step_attention(q, k_new, v_new, past_keys, past_values, mask, scale)
    if store:
        store_position(past_keys, past_values, cache_lens, k_new.squeeze(2), v_new.squeeze(2))
    return out


def store_position(past_keys: Tensor, past_values: Tensor, positions: Tensor, k_new: Tensor,
                   v_new: Tensor) -> None:
    """past_keys[b, :, :, positions[b]] = k_new[b] and past_values[b, :, positions[b]] = v_new[b] (k_new,
    v_new [B, H, hd]), cast to the cache's dtype."""
    rows = torch.arange(past_keys.shape[0], device=past_keys.device)
    past_keys[rows, :, :, positions] = k_new.to(past_keys.dtype)
    past_values[rows, :, positions, :] = v_new.to(past_values.dtype)


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
def _use_kernel(q: Tensor, past_keys: Tensor, past_values: Tensor, cache_lens: Tensor, chosen: str) -> bool:
    """Kernel only where it is exact and safe: eager CPU inference on float32 queries."""
    if chosen not in MODES:
        raise BackendUnavailableError(f"unknown step-attention kernel {chosen!r}; expected one of {', '.join(MODES)}")
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
            raise BackendUnavailableError(f"step attention 'numba' asked for, but the kernel is unavailable: "
                                          f"{_kernel_error}")
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
                      cache_lens: Tensor, scale: float, store: bool = False) -> Tensor:
    """Run the compiled kernel on ``torch.get_num_threads()`` threads; returns [B, H, 1, hd] float32."""
    runner = _get_kernel()
    if runner is None:
        raise BackendUnavailableError(f"step-attention kernel unavailable: {_kernel_error}")
    b, h, _, hd = q.shape
    arrays = [(q.detach() * scale).reshape(b, h, hd).contiguous(),  # the kernel takes q pre-scaled
              k_new.detach().reshape(b, h, hd).to(torch.float32).contiguous(),
              v_new.detach().reshape(b, h, hd).to(torch.float32).contiguous(),
              past_keys.detach(), past_values.detach(), cache_lens.detach().to(torch.int64).contiguous()]
    out = torch.empty(b, h, 1, hd, dtype=torch.float32)
    runner.run([_as_numpy(t) for t in arrays], out.view(b, h, hd).numpy(), torch.get_num_threads(), store)
    return out


# --------------------------------------------------------------------------------------- kernel
class _Runner:
    """Runs the kernel's items on torch's own OpenMP pool when it can find it, else on numba's pool.

    Sharing torch's pool matters on small machines: torch's OpenMP workers keep spinning for a while
    after each matmul, so a second pool's threads would fight them for the same cores.
    """

    def __init__(self, kernels: Any, gomp_parallel: Any) -> None:
        self.k = kernels
        self.gomp_parallel = gomp_parallel  # ctypes GOMP_parallel of torch's OpenMP runtime, or None
        self.use_torch_pool = gomp_parallel is not None
        self._block = np.zeros(kernels.N_SLOTS, dtype=np.int64)
        self._bodies: dict[str, int] = {}

    def run(self, arrays: list[np.ndarray], out: np.ndarray, threads: int, store: bool = False) -> None:
        """arrays = q, k_new, v_new, keys, values, lens, shaped as for
        :func:`renderer.engine.step_attention_kernel.attend_range`; fills out [B, H, hd] (and, with
        ``store``, the cache at each row's position lens[b])."""
        q, k_new, v_new, keys, values, lens = arrays
        b, h, hd = q.shape
        threads = max(1, threads)
        chunk = max(1, min(16, b * h // (8 * threads)))  # a few items per grab; small enough to balance
        if not self.use_torch_pool:
            _set_numba_threads(threads)
            self.k.attend_parallel(q, k_new, v_new, keys, values, lens, out, chunk, store)
            return
        k = self.k
        block = self._block.copy()  # per call: the counter is mutated by the workers
        block[[k.SLOT_CHUNK, k.SLOT_B, k.SLOT_H, k.SLOT_HD, k.SLOT_CAP, k.SLOT_STORE]] = (
            chunk, b, h, hd, keys.shape[3], int(store))
        for slot, array in ((k.SLOT_Q, q), (k.SLOT_KNEW, k_new), (k.SLOT_VNEW, v_new), (k.SLOT_KEYS, keys),
                            (k.SLOT_VALUES, values), (k.SLOT_LENS, lens), (k.SLOT_OUT, out)):
            block[slot] = array.ctypes.data
        self.gomp_parallel(self._body(keys.dtype.name), block.ctypes.data, threads, 0)

    def _body(self, kind: str) -> int:
        """Address of the C callback for this cache dtype, compiled (or loaded) on first use."""
        if kind not in self._bodies:
            with _numba_cache_dir():
                self._bodies[kind] = self.k.omp_body(kind).address
        return self._bodies[kind]


def _set_numba_threads(n: int) -> None:
    """numba's pool size is fixed at its first use (NUMBA_NUM_THREADS); per-call counts may only shrink it."""
    import numba

    config: Any = numba.config
    n = max(1, min(n, config.NUMBA_NUM_THREADS))
    if numba.get_num_threads() != n:
        numba.set_num_threads(n)


def _torch_gomp_parallel() -> Any:
    """``GOMP_parallel`` of the OpenMP runtime loaded by torch (Linux), or None where there is none."""
    if not torch.backends.openmp.is_available() or not Path("/proc/self/maps").exists():
        return None
    torch_dir = str(Path(torch.__file__).resolve().parent)
    loaded = {line.split()[-1] for line in Path("/proc/self/maps").read_text().splitlines()
              if "/lib" in line and ("libgomp" in line or "libiomp" in line)}
    # torch's own copy first; a system one only when it is the only runtime loaded
    candidates = sorted(p for p in loaded if p.startswith(torch_dir)) or (sorted(loaded) if len(loaded) == 1 else [])
    for path in candidates:
        try:
            fn = ctypes.CDLL(path).GOMP_parallel
        except (OSError, AttributeError):
            continue
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
        fn.restype = None
        return fn
    return None


def _get_kernel() -> _Runner | None:
    """Build (once) the runner; None with ``_kernel_error`` set when numba is unusable."""
    global _kernel, _kernel_error
    if _kernel is not None or _kernel_error is not None:
        return _kernel
    with _lock:
        if _kernel is None and _kernel_error is None:
            try:
                _kernel = _Runner(_import_kernels(), _torch_gomp_parallel())
            except Exception as exc:  # numba missing or broken: the torch path still works
                _kernel_error = f"{type(exc).__name__}: {exc}"
    return _kernel


def _import_kernels() -> Any:
    """Import the numba module (its functions compile lazily, per dtype, into :func:`cache_dir`)."""
    with _numba_cache_dir():
        from renderer.engine import step_attention_kernel
    return step_attention_kernel


@contextmanager
def _numba_cache_dir() -> Iterator[None]:
    """numba picks a function's cache folder when it is decorated: point it at :func:`cache_dir` meanwhile."""
    import numba

    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    config: Any = numba.config
    saved = config.CACHE_DIR
    config.CACHE_DIR = str(folder)
    try:
        yield
    finally:
        config.CACHE_DIR = saved
