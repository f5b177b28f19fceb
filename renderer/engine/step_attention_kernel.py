"""numba kernels behind :mod:`renderer.engine.step_attention` (CPU, float32 or bfloat16 KV cache).

Imported lazily by ``step_attention`` on first use (with numba's cache folder set), never at package
import: importing this module loads the compiled code from the on-disk cache or compiles it.

One work item is one (row, head) pair ``bh = b * H + h``; per item, with q already multiplied by the
softmax scale and n = cache_lens[b] clamped to [0, cap]:

    s[j]  = q . K[:, j]              j < n   (K stored [hd, cap]: the inner loop runs over cache positions)
    s_new = q . k_new
    p     = softmax([s[:n], s_new])  (max-subtracted, float32)
    out   = p[:n] @ V[:n] + p_new * v_new
    and optionally (``store``) K[:, n] = k_new, V[n] = v_new in the cache's dtype.

bfloat16 caches arrive as uint16 bit patterns; ``widen`` shifts them into the top half of a float32,
which is exact, so every product and sum is float32; ``narrow`` rounds a float32 back to bf16 bits.

Two ways to run the items on several threads:
* ``attend_parallel``: numba's own ``prange`` (its threading layer; a second thread pool next to torch's).
* ``omp_body(kind)``: C callbacks for ``GOMP_parallel`` of the OpenMP runtime torch
  already uses, so the step's matmuls and this kernel share one pool of already-spinning threads. Items
  are handed out by an atomic counter in the argument block (layout: the ``SLOT_*`` constants).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir
from numba import carray, cfunc, njit, prange, types
from numba.extending import intrinsic

_I32 = ir.IntType(32)
# error_model numpy: a float division by zero gives inf/NaN instead of raising (an exception cannot leave
# the OpenMP callback; numba would print it and carry on with a half-written output)
_JIT: dict[str, Any] = {"fastmath": True, "cache": True, "nogil": True, "error_model": "numpy"}

# argument block for the GOMP callbacks: int64 slots (addresses as integers)
SLOT_COUNTER, SLOT_CHUNK, SLOT_B, SLOT_H, SLOT_HD, SLOT_CAP = 0, 1, 2, 3, 4, 5
SLOT_Q, SLOT_KNEW, SLOT_VNEW, SLOT_KEYS, SLOT_VALUES, SLOT_LENS, SLOT_OUT = 6, 7, 8, 9, 10, 11, 12
SLOT_STORE = 13
N_SLOTS = 16


# ------------------------------------------------------------------------------------------ intrinsics
def _widen(typingctx: Any, x: Any) -> Any:
    """float32 -> itself; uint16 bfloat16 bits -> the float32 they are the top half of."""
    if isinstance(x, types.Float):
        def cast(context: Any, builder: Any, sig: Any, args: Any) -> Any:
            return context.cast(builder, args[0], x, types.float32)
        return types.float32(x), cast
    if isinstance(x, types.Integer) and getattr(x, "bitwidth", 0) == 16:
        def bits(context: Any, builder: Any, sig: Any, args: Any) -> Any:
            wide = builder.shl(builder.zext(args[0], _I32), ir.Constant(_I32, 16))
            return builder.bitcast(wide, ir.FloatType())
        return types.float32(x), bits
    return None


widen: Any = intrinsic(_widen)


def _narrow(typingctx: Any, x: Any, like: Any) -> Any:
    """float32 ``x`` in the cache's element type ``like``: float32 as is; for uint16 bfloat16 bits, rounded
    to nearest even as torch's ``.to(torch.bfloat16)`` does (NaN -> 0x7FC0)."""
    if isinstance(like, types.Float):
        def same(context: Any, builder: Any, sig: Any, args: Any) -> Any:
            return context.cast(builder, args[0], types.float32, like)
        return like(types.float32, like), same
    if isinstance(like, types.Integer) and getattr(like, "bitwidth", 0) == 16:
        def rounded(context: Any, builder: Any, sig: Any, args: Any) -> Any:
            bits = builder.bitcast(args[0], _I32)
            lsb = builder.and_(builder.lshr(bits, ir.Constant(_I32, 16)), ir.Constant(_I32, 1))
            up = builder.add(builder.add(bits, ir.Constant(_I32, 0x7FFF)), lsb)
            top = builder.trunc(builder.lshr(up, ir.Constant(_I32, 16)), ir.IntType(16))
            is_nan = builder.fcmp_unordered("uno", args[0], args[0])
            return builder.select(is_nan, ir.Constant(ir.IntType(16), 0x7FC0), top)
        return like(types.float32, like), rounded
    return None


narrow: Any = intrinsic(_narrow)


def _exp2i(typingctx: Any, n: Any) -> Any:
    """2**n as float32 for an int32 n in [-126, 127], built from the exponent bits."""
    def build(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        biased = builder.add(args[0], ir.Constant(_I32, 127))
        return builder.bitcast(builder.shl(biased, ir.Constant(_I32, 23)), ir.FloatType())
    return types.float32(types.int32), build


exp2i: Any = intrinsic(_exp2i)


def _fmax(typingctx: Any, a: Any, b: Any) -> Any:
    """float32 max through llvm.maxnum, which LLVM vectorises as a reduction (a compare-select does not)."""
    def build(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        f32 = ir.FloatType()
        fn = builder.module.declare_intrinsic("llvm.maxnum", [f32], ir.FunctionType(f32, [f32, f32]))
        return builder.call(fn, args)
    return types.float32(types.float32, types.float32), build


fmax: Any = intrinsic(_fmax)


def _fetch_add(typingctx: Any, data: Any, value: Any) -> Any:
    """Atomically add ``value`` to the int64 at ``data`` (a void*); returns the old value."""
    def build(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        ptr = builder.bitcast(args[0], ir.IntType(64).as_pointer())
        return builder.atomic_rmw("add", ptr, args[1], "monotonic")
    return types.int64(types.voidptr, types.int64), build


fetch_add: Any = intrinsic(_fetch_add)


def _pointer_intrinsic(target: Any, llvm_type: Any) -> Any:
    """An intrinsic turning a void* or an int64 address into a typed pointer (for ``carray``)."""
    def to_pointer(typingctx: Any, source: Any) -> Any:
        def build(context: Any, builder: Any, sig: Any, args: Any) -> Any:
            if isinstance(source, types.Integer):
                return builder.inttoptr(args[0], llvm_type.as_pointer())
            return builder.bitcast(args[0], llvm_type.as_pointer())
        return types.CPointer(target)(source), build
    return intrinsic(to_pointer)


i64_ptr: Any = _pointer_intrinsic(types.int64, ir.IntType(64))
f32_ptr: Any = _pointer_intrinsic(types.float32, ir.FloatType())
u16_ptr: Any = _pointer_intrinsic(types.uint16, ir.IntType(16))


# ------------------------------------------------------------------------------------------ math
@njit(**_JIT)
def fast_exp(x: Any) -> Any:
    """exp(x) in float32 to ~2 ulp, vectorisable: 2**round(x log2 e) times a degree-6 polynomial
    (Cephes expf). Inputs below -87 give ~1e-38 instead of 0, harmless next to a softmax total >= 1."""
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
    return p * exp2i(np.int32(n))


@njit(**_JIT)
def scores(qv: Any, kt: Any, n: int, s: Any) -> None:
    """s[:n] = qv @ kt[:, :n]; kt [hd, cap]. One key row per pass: the rows are read in memory order, one
    long stream for the hardware prefetcher (interleaving 4 rows, to re-read s less, was slower once the
    cache no longer fits in L2: docs/benchmarks-history.md)."""
    hd = qv.shape[0]
    for j in range(n):
        s[j] = np.float32(0.0)
    for d in range(hd):
        qd = qv[d]
        row = kt[d]
        for j in range(n):
            s[j] += qd * widen(row[j])


@njit(**_JIT)
def weighted_sum(p: Any, vv: Any, n: int, acc: Any) -> None:
    """acc[:] = p[:n] @ vv[:n]; vv [cap, hd]. Four cache positions per pass over acc."""
    hd = acc.shape[0]
    n4 = n - n % 4
    for d in range(hd):
        acc[d] = np.float32(0.0)
    for j in range(0, n4, 4):
        p0, p1, p2, p3 = p[j], p[j + 1], p[j + 2], p[j + 3]
        v0, v1, v2, v3 = vv[j], vv[j + 1], vv[j + 2], vv[j + 3]
        for d in range(hd):
            acc[d] += p0 * widen(v0[d]) + p1 * widen(v1[d]) + p2 * widen(v2[d]) + p3 * widen(v3[d])
    for j in range(n4, n):
        pj = p[j]
        v0 = vv[j]
        for d in range(hd):
            acc[d] += pj * widen(v0[d])


@njit(**_JIT)
def attend_one(qv: Any, kn: Any, vn: Any, kt: Any, vv: Any, n: int, o: Any) -> None:
    """One (row, head): qv, kn, vn, o [hd] float32; kt [hd, cap]; vv [cap, hd]; n valid positions."""
    hd = qv.shape[0]
    s = np.empty(n, dtype=np.float32)
    scores(qv, kt, n, s)
    s_new = np.float32(0.0)
    for d in range(hd):
        s_new += qv[d] * kn[d]
    m = s_new
    for j in range(n):
        m = fmax(m, s[j])
    p_new = fast_exp(s_new - m)
    total = p_new
    for j in range(n):
        e = fast_exp(s[j] - m)
        s[j] = e
        total += e
    acc = np.empty(hd, dtype=np.float32)
    weighted_sum(s, vv, n, acc)
    inv = np.float32(1.0) / total
    for d in range(hd):
        o[d] = (acc[d] + p_new * vn[d]) * inv


@njit(**_JIT)
def store_new(kn: Any, vn: Any, kt: Any, vv: Any, n: int) -> None:
    """Write the new token's key and value at cache position n (kt [hd, cap], vv [cap, hd]): the item has
    just streamed the positions before it, so this costs next to nothing here, where a separate indexed
    write over the whole cache took a noticeable share of a step (docs/benchmarks-history.md)."""
    for d in range(kn.shape[0]):
        kt[d, n] = narrow(kn[d], kt[0, 0])
        vv[n, d] = narrow(vn[d], vv[0, 0])


@njit(**_JIT)
def attend_range(q: Any, k_new: Any, v_new: Any, keys: Any, values: Any, lens: Any, out: Any,
                 start: int, stop: int, store: bool) -> None:
    """Items ``start <= bh < stop``; q, k_new, v_new, out [B, H, hd]; keys [B, H, hd, cap]; values
    [B, H, cap, hd]; lens [B] int64. With ``store``, also writes k_new / v_new at position lens[b]."""
    nh = q.shape[1]
    cap = keys.shape[3]
    for bh in range(start, stop):
        b = bh // nh
        h = bh - b * nh
        n = min(max(lens[b], 0), cap)
        attend_one(q[b, h], k_new[b, h], v_new[b, h], keys[b, h], values[b, h], n, out[b, h])
        if store and n < cap:
            store_new(k_new[b, h], v_new[b, h], keys[b, h], values[b, h], n)


@njit(parallel=True, **_JIT)
def attend_parallel(q: Any, k_new: Any, v_new: Any, keys: Any, values: Any, lens: Any, out: Any,
                    chunk: int, store: bool) -> None:
    """All items on numba's thread pool, ``chunk`` items per parallel iteration."""
    total = q.shape[0] * q.shape[1]
    for c in prange((total + chunk - 1) // chunk):
        attend_range(q, k_new, v_new, keys, values, lens, out, c * chunk, min(total, (c + 1) * chunk), store)


# ------------------------------------------------------------------------------------------ OpenMP
@njit(**_JIT)
def _omp_loop(data: Any, blk: Any, keys: Any, values: Any) -> None:
    """Each OpenMP thread takes ``chunk`` items at a time from the shared counter until none are left."""
    b, h, hd = blk[SLOT_B], blk[SLOT_H], blk[SLOT_HD]
    q = carray(f32_ptr(blk[SLOT_Q]), (b, h, hd))
    k_new = carray(f32_ptr(blk[SLOT_KNEW]), (b, h, hd))
    v_new = carray(f32_ptr(blk[SLOT_VNEW]), (b, h, hd))
    out = carray(f32_ptr(blk[SLOT_OUT]), (b, h, hd))
    lens = carray(i64_ptr(blk[SLOT_LENS]), (b,))
    total, chunk, store = b * h, blk[SLOT_CHUNK], blk[SLOT_STORE] != 0
    while True:
        start = fetch_add(data, chunk)
        if start >= total:
            break
        attend_range(q, k_new, v_new, keys, values, lens, out, start, min(total, start + chunk), store)


def _omp_body_f32(data: Any) -> None:
    blk = carray(i64_ptr(data), (N_SLOTS,))
    b, h, hd, cap = blk[SLOT_B], blk[SLOT_H], blk[SLOT_HD], blk[SLOT_CAP]
    _omp_loop(data, blk, carray(f32_ptr(blk[SLOT_KEYS]), (b, h, hd, cap)),
              carray(f32_ptr(blk[SLOT_VALUES]), (b, h, cap, hd)))


def _omp_body_bf16(data: Any) -> None:
    blk = carray(i64_ptr(data), (N_SLOTS,))
    b, h, hd, cap = blk[SLOT_B], blk[SLOT_H], blk[SLOT_HD], blk[SLOT_CAP]
    _omp_loop(data, blk, carray(u16_ptr(blk[SLOT_KEYS]), (b, h, hd, cap)),
              carray(u16_ptr(blk[SLOT_VALUES]), (b, h, cap, hd)))


_OMP_BODIES = {"float32": _omp_body_f32, "uint16": _omp_body_bf16}


def omp_body(kind: str) -> Any:
    """The ``void(void*)`` C callback for a cache of numpy dtype name ``kind`` (float32 | uint16).

    ``cfunc`` compiles when applied, so each is built on first request (numba's cache folder must be
    set by the caller, as for the import of this module)."""
    return cfunc(types.void(types.voidptr), cache=True)(_OMP_BODIES[kind])
