"""Freed heap pages go back to the OS between chunks of different lengths; the KV cache asks for huge pages."""

from __future__ import annotations

import platform

import numpy as np
import psutil
import pytest
import torch

from renderer.backends.torch_backend import TorchKVCache
from renderer.memory import (
    HUGE_PAGE_BYTES,
    advise_huge_pages,
    huge_pages_possible,
    mapped_zeros,
    release_free_memory,
)

MB = 2**20


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_trim_returns_freed_heap_pages() -> None:
    proc = psutil.Process()
    big = np.ones(20 * MB // 8)  # freeing an mmapped block (<= 32 MB) raises glibc's mmap threshold ...
    del big
    blocks = [np.ones(3 * MB // 8 + 64 * i) for i in range(60)]  # ... so these 3 MB blocks come from the heap
    before = proc.memory_info().rss
    del blocks[::2]  # free every other block: holes inside the heap, which free() does not give back
    kept = proc.memory_info().rss
    assert kept > before - 30 * MB  # the problem this module exists for
    assert release_free_memory() is True
    assert proc.memory_info().rss < kept - 60 * MB  # ~90 MB of holes returned
    assert len(blocks) == 30


def test_trim_only_after_growth(monkeypatch: pytest.MonkeyPatch) -> None:
    import renderer.memory as memory

    trims: list[int] = []
    monkeypatch.setattr(memory, "release_free_memory", lambda: trims.append(1) or True)
    monkeypatch.setattr(memory, "_baseline", [])
    assert memory.release_if_grown(50 * MB) is False  # first call: sets the baseline
    assert memory.release_if_grown(50 * MB) is False and not trims
    block = np.ones(120 * MB // 8)
    assert memory.release_if_grown(50 * MB) is True and trims == [1]
    assert memory.release_if_grown(50 * MB) is False  # the baseline moved up
    assert block.sum() > 0


def _anon_huge_kb() -> int:
    with open("/proc/self/smaps_rollup", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("AnonHugePages:"):
                return int(line.split()[1])
    return 0


def _advised_huge(address: int) -> bool:
    """Whether the mapping holding ``address`` carries the MADV_HUGEPAGE flag (``hg`` in /proc/self/smaps)."""
    inside = False
    with open("/proc/self/smaps", encoding="ascii") as fh:
        for line in fh:
            head = line.split()[0]
            if "-" in head and ":" not in head:
                low, high = (int(part, 16) for part in head.split("-"))
                inside = low <= address < high
            elif inside and line.startswith("VmFlags:"):
                return "hg" in line.split()[1:]
    return False


@pytest.mark.skipif(not huge_pages_possible(), reason="the kernel offers no transparent huge pages (THP 'never')")
def test_kv_cache_asks_for_huge_pages() -> None:
    plain = TorchKVCache(2, 4, 8, torch.device("cpu"))  # opt-in: off by default
    plain.allocate(64, 1024)
    assert not any(_advised_huge(t.data_ptr()) for t in plain.keys + plain.values)
    assert advise_huge_pages(torch.empty(1024)) is False  # smaller than one huge page: nothing to advise
    cache = TorchKVCache(2, 4, 8, torch.device("cpu"), huge_pages=True)
    cache.allocate(64, 1024)  # 2 x 2 layers x 8 MB, advised as they are made
    assert all(_advised_huge(t.data_ptr()) for t in cache.keys + cache.values)
    before = _anon_huge_kb()
    for t in cache.keys + cache.values:
        t.fill_(0.0)
    grown = _anon_huge_kb() - before
    # the kernel may be short of free huge pages; when it grants them, they back the cache
    assert grown == 0 or grown >= 2 * 1024
    cache.keys[1][3, 2, 1, 5] = 7.0
    cache.grow(1100)
    assert all(_advised_huge(t.data_ptr()) for t in cache.keys + cache.values)
    cache.compact(torch.tensor([3, 0]))
    assert cache.keys[1].shape == (2, 4, 8, 1152) and float(cache.keys[1][0, 2, 1, 5]) == 7.0
    assert float(cache.keys[1].abs().sum()) == 7.0  # zeroed everywhere else, including the grown part


def _mapping_of(address: int) -> str | None:
    """The permissions (e.g. ``rw-p``) of this process's memory mapping that holds ``address``, if any."""
    with open("/proc/self/maps", encoding="ascii") as fh:
        for line in fh:
            fields = line.split()
            low, high = (int(part, 16) for part in fields[0].split("-"))
            if low <= address < high:
                return fields[1]
    return None


def _mapped(address: int) -> bool:
    """Whether ``address`` lies inside one of this process's memory mappings."""
    return _mapping_of(address) is not None


@pytest.mark.skipif(platform.system() != "Linux", reason="reads /proc/self/maps")
def test_mapped_zeros_is_its_own_mapping_and_goes_back_when_freed() -> None:
    buffer = mapped_zeros((3, 5, 7), torch.bfloat16)
    assert buffer.shape == (3, 5, 7) and buffer.dtype == torch.bfloat16 and buffer.is_contiguous()
    assert float(buffer.float().abs().sum()) == 0.0
    assert buffer.data_ptr() % 4096 == 0  # page-aligned: a mapping, not a heap block
    big = mapped_zeros((16, 2**20), torch.float32)  # 64 MB
    address = big.data_ptr()
    assert address % HUGE_PAGE_BYTES == 0  # so huge pages can back all of it
    # private: a shared anonymous mapping is shmem, which never gets transparent huge pages
    assert _mapping_of(address) == "rw-p"
    assert big.is_contiguous() and float(big.abs().sum()) == 0.0
    view = big[3:5]  # a view keeps the mapping alive ...
    del big
    view.fill_(2.0)
    assert _mapped(address) and float(view.sum()) == 2.0 * 2 * 2**20
    del view  # ... and the last one unmaps it, whatever glibc's mmap threshold is
    assert not _mapped(address)
    assert mapped_zeros((0, 4), torch.float32).shape == (0, 4)


def test_mapped_zeros_that_cannot_be_mapped_is_a_memory_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker halves its batch on MemoryError; ENOMEM from mmap must not look like a disk error."""
    import mmap

    import renderer.memory as memory

    def refuse(*args: object, **kwargs: object) -> mmap.mmap:
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(memory.mmap, "mmap", refuse)
    with pytest.raises(MemoryError, match="cannot map 64 MB"):
        mapped_zeros((16, 2**20), torch.float32)


def test_kv_cache_buffers_are_mapped_and_zeroed() -> None:
    cache = TorchKVCache(2, 4, 8, torch.device("cpu"))
    cache.allocate(3, 64)
    cache.keys[0][1, 2, 3, 4] = 5.0
    cache.values[1][2, 1, 10, 7] = 6.0
    cache.grow(130)
    assert cache.capacity == 192 and all(t.data_ptr() % 4096 == 0 for t in cache.keys + cache.values)
    assert float(cache.keys[0][1, 2, 3, 4]) == 5.0 and float(cache.keys[0].abs().sum()) == 5.0
    cache.compact(torch.tensor([2]))
    assert float(cache.values[1][0, 1, 10, 7]) == 6.0 and float(cache.values[1].abs().sum()) == 6.0
