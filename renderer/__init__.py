"""Text → tokens → audio: text frontend, GPT-SoVITS models, batched engine and runtimes.

This package knows nothing of books, databases or the files of a job; ``jobs`` calls it.
"""

__version__ = "0.1.0"

import os as _os

# oneDNN caches every convolution primitive it creates (default: 1024), with its scratchpad and reordered
# weights. Every chunk has its own length, so the vocoder creates new primitives for every chunk and the
# cache grew by ~35 MB per chunk shape (+480 MB after 14 chunks). 256 entries bound it with no measured
# slowdown (vocoder RTF 0.343 vs 0.348); oneDNN reads the variable when it creates its first primitive.
_os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "256")

# RENDER_MMAP_THRESHOLD_MB=4 gives every block of >= 4 MB its own mmap, so memory freed by one chunk's
# shapes is returned: it bounds a worker at ~2.3 GB but made the fp32 chapter 35 % slower (page faults),
# so by default (0) glibc keeps its own adjustment (renderer/memory.py, BENCHMARKS.md "Memory").
from renderer.memory import fix_mmap_threshold as _fix_mmap_threshold  # noqa: E402

_fix_mmap_threshold(float(_os.environ.get("RENDER_MMAP_THRESHOLD_MB", "0") or 0))
