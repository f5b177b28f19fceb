"""Memory housekeeping: give freed heap memory back to the operating system, ask for huge pages.

Every chunk has its own length, so the vocoder's activations have new sizes for every chunk. glibc's
allocator raises its mmap threshold after large blocks are freed, serves the next (differently sized)
blocks from the heap, and keeps the freed pages: measured on the full-size v2 vocoder, resident memory
grew by ~500 MB per chunk of a new length (4.8 GB after 8 chunks) although the live data did not grow.
``malloc_trim(0)`` returns those pages, but the next chunk then page-faults its buffers in afresh: trimming
after every chunk made the vocoder ~10 % slower (RTF 0.354-0.399 vs 0.316-0.328 over 14 chunks of
2.4-8 s), so :func:`release_if_grown` trims only once resident memory has grown by
:data:`TRIM_GROWTH_BYTES` since the last trim (with 1 GB: RTF 0.340-0.348 and a 2.2 GB peak instead of
3.9 GB and rising; 512 MB keeps a 32-row fp32 worker under 3 GB).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
import mmap
import threading
from typing import Any

import psutil

from renderer.rounding import round_up

#: Transparent huge pages are 2 MB on x86-64 and arm64 (4 KB base pages).
HUGE_PAGE_BYTES = 2 * 2**20

#: Trim once resident memory has grown this much since the last trim.
TRIM_GROWTH_BYTES = 512 * 2**20

_lock = threading.Lock()
_baseline: list[int] = []


@functools.cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    return lib if hasattr(lib, "malloc_trim") else None


def release_free_memory() -> bool:
    """Return free heap pages to the OS (glibc); False where the C library has no ``malloc_trim``."""
    lib = _libc()
    if lib is None:
        return False
    lib.malloc_trim(0)
    return True


def release_if_grown(growth_bytes: int = TRIM_GROWTH_BYTES) -> bool:
    """Trim when resident memory exceeds the level after the last trim by ``growth_bytes``; True if it did."""
    with _lock:
        rss = psutil.Process().memory_info().rss
        if not _baseline:
            _baseline.append(rss)
            return False
        if rss - _baseline[0] < growth_bytes or not release_free_memory():
            return False
        _baseline[0] = psutil.Process().memory_info().rss
        return True


def fix_mmap_threshold(megabytes: float) -> bool:
    """Serve every block of at least ``megabytes`` with its own mmap (returned to the OS when freed).

    glibc raises its mmap threshold (up to 32 MB) each time a large block is freed; after that, KV-cache
    layers and activations of a few MB to 32 MB come from the heap, where blocks of ever-new sizes are not
    reused: a second 17-chunk chapter at batch 32 fp32 peaked at 3.6-3.8 GB instead of 1.9 GB. A fixed
    threshold (which also turns the adjustment off) kept three runs at 2.25 GB.
    """
    lib = _libc()
    if lib is None or not hasattr(lib, "mallopt") or megabytes <= 0:
        return False
    m_mmap_threshold = -3
    return bool(lib.mallopt(m_mmap_threshold, int(megabytes * 2**20)))


def mapped_zeros(shape: tuple[int, ...], dtype: Any) -> Any:
    """A zero-filled CPU tensor in its own anonymous memory mapping, unmapped when the last view dies.

    For big buffers that are re-allocated in ever-new sizes (the KV cache grows every 64 positions and
    shrinks as a batch drains): coming from glibc's heap (once its mmap threshold has risen, see
    :func:`fix_mmap_threshold`), each old buffer left a hole the next, larger one could not use, and a
    second fp32 chapter at batch 32 peaked ~1.7 GB above the first. A mapping of its own goes back to
    the OS at once and never raises the threshold. Fresh mappings read as zeros, so nothing is written
    until the buffer is used.

    Buffers of at least one huge page start on a huge-page boundary (the mapping is up to 2 MB larger;
    the unused head is address space only, never touched), so :func:`advise_huge_pages` can cover all of
    them rather than only the whole 2 MB pages that happen to lie inside.
    """
    import torch

    count = math.prod(shape)
    size = count * dtype.itemsize
    if size == 0:
        return torch.zeros(shape, dtype=dtype)
    slack = HUGE_PAGE_BYTES - mmap.PAGESIZE if size >= HUGE_PAGE_BYTES else 0
    try:
        # private: a shared anonymous mapping (mmap's default) is shmem, which faulted in ~30 % slower here
        # (0.36 against 0.28 s per GB) and never gets transparent huge pages (those follow
        # ``shmem_enabled``, typically "never")
        mapping = mmap.mmap(-1, size + slack, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    except OSError as exc:  # ENOMEM: reported like any failed allocation, so callers can shrink the batch
        raise MemoryError(f"cannot map {size / 2**20:.0f} MB for a buffer of shape {tuple(shape)}: {exc}") from exc
    offset = 0
    if slack:
        start = ctypes.addressof(ctypes.c_char.from_buffer(mapping))
        offset = round_up(start, HUGE_PAGE_BYTES) - start
    # the tensor's storage holds the mmap object (and so the mapping) for as long as any view lives
    return torch.frombuffer(mapping, dtype=dtype, count=count, offset=offset).view(shape)


_MADV_HUGEPAGE = 14


@functools.cache
def huge_pages_possible() -> bool:
    """Whether the kernel offers transparent huge pages to ``madvise`` (``always`` or ``madvise`` mode)."""
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled", encoding="ascii") as fh:
            mode = fh.read()
    except OSError:
        return False
    return "[never]" not in mode and _libc() is not None and hasattr(_libc(), "madvise")


def advise_huge_pages(tensor: Any) -> bool:
    """Ask for transparent huge pages behind a CPU tensor's memory (call before its pages are touched);
    the KV cache does so only with ``EngineTuning.huge_pages`` (opt-in).

    The decode step's attention reads every row's whole KV cache once per step, hopping between rows
    and layers; with 4 KB pages that costs a TLB miss every few cache lines, and in ``madvise`` mode (the
    common distribution default) torch never asks for huge pages. Measured on the 2-core development
    machine: the attention over a 64-row fp32 cache took 104 ms per step on 4 KB pages and 87 ms on huge
    pages, and `render bench` decode at batch 64 gained ≈ 4 % (376 against 363 tok/s). But the cache is
    re-allocated as it grows and drains, and faulting huge pages in costs more system time (and, on a
    fragmented machine, compaction): prefill got slower (786 against 874 positions/s) and whole
    chapters too (RTF 0.534 against 0.517 with the cache in private mappings; 0.596 / 0.613 against
    0.541 / 0.571 when it came from the heap), so it stays off by default (BENCHMARKS.md).
    Only whole 2 MB pages inside the tensor are advised; True if any were.
    """
    if not huge_pages_possible() or tensor.device.type != "cpu":
        return False
    start = tensor.data_ptr()
    end = start + tensor.numel() * tensor.element_size()
    first = round_up(start, HUGE_PAGE_BYTES)
    last = end // HUGE_PAGE_BYTES * HUGE_PAGE_BYTES
    if last <= first:
        return False
    lib = _libc()
    lib.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return int(lib.madvise(ctypes.c_void_p(first), ctypes.c_size_t(last - first), _MADV_HUGEPAGE)) == 0
