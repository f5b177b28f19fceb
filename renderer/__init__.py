"""Text → tokens → audio: text frontend, GPT-SoVITS models, batched engine and runtimes.

This package knows nothing of books, databases or the files of a job; ``jobs`` calls it.
"""

__version__ = "0.1.0"

import os as _os

# oneDNN caches every convolution primitive it creates (with its JIT code and scratchpad; ~0.8 MB each
# here). The vocoder pads chunk lengths to buckets of 16 tokens (renderer/engine/vocoder.py), and each
# bucket needs ~85 primitives, so a chapter's 7 buckets need ~600: with 256 entries the cache evicted
# every one before its next use (vocoder RTF 0.359 vs 0.267 over 17 chunks seen before, chapter RTF 0.543
# vs 0.495 with 1024). 1024 (oneDNN's default) keeps ~12 buckets and bounds the cache near 0.8 GB (+640 MB
# measured over a chapter; fp32 chapter peak 2.94 GB). oneDNN reads the variable at its first primitive.
_os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "1024")

# RENDER_MMAP_THRESHOLD_MB=4 gives every block of >= 4 MB its own mmap, so memory freed by one chunk's
# shapes is returned: it bounds a worker at ~2.3 GB but made the fp32 chapter 35 % slower (page faults),
# so by default (0) glibc keeps its own adjustment (renderer/memory.py, BENCHMARKS.md "Memory").
from renderer.memory import fix_mmap_threshold as _fix_mmap_threshold  # noqa: E402

_fix_mmap_threshold(float(_os.environ.get("RENDER_MMAP_THRESHOLD_MB", "0") or 0))
