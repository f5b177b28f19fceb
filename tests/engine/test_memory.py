"""Freed heap pages go back to the OS between chunks of different lengths."""

from __future__ import annotations

import platform

import numpy as np
import psutil
import pytest

from renderer.memory import release_free_memory

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
