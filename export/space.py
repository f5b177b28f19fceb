"""Disk space: how much an export needs, and telling a full disk from other write errors."""

from __future__ import annotations

import errno
import shutil
from collections.abc import Sequence
from pathlib import Path

import soundfile as sf

from export.model import ChapterManifest
from export.options import ExportOptions

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
#: Below this much free space an encoder's failure is taken for a full disk (they report it vaguely).
NEARLY_FULL_BYTES = 1 << 20
_PAUSE_S = 0.8  # average pause per chunk, plus room tone per chapter below
_ROOM_TONE_S = 3.0


def free_bytes(folder: Path) -> int:
    for candidate in (Path(folder), *Path(folder).parents):
        if candidate.exists():
            return int(shutil.disk_usage(candidate).free)
    return 0


def is_disk_full(exc: BaseException, folder: Path) -> bool:
    """An OSError that says so, or any write failure while (almost) no space is left."""
    if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
        return True
    return free_bytes(folder) < NEARLY_FULL_BYTES


def _chunk_seconds(chunk_duration: float, path: Path) -> float:
    if chunk_duration > 0:
        return chunk_duration
    try:
        return float(sf.info(str(path)).duration)
    except (sf.LibsndfileError, OSError, RuntimeError):
        return 0.0


def estimate_bytes(chapters: Sequence[ChapterManifest], options: ExportOptions) -> int:
    """Bytes an export needs at its peak: the delivered files plus the float32 temp files of mastering
    (one chapter at a time, or all chapters for a single file / M4B) plus the longest chapter's pass 1."""
    seconds = [sum(_chunk_seconds(c.duration_s, c.path) + _PAUSE_S for c in ch.chunks) + _ROOM_TONE_S
               for ch in chapters]
    rate = options.sample_rate or 32000
    raw_per_s = rate * 4
    kept_raw = sum(seconds) if options.single_file or options.format == "m4b" else max(seconds, default=0.0)
    if options.format in ("mp3", "m4b"):
        encoded_per_s = (options.bitrate_kbps or 192) * 1000 / 8
    else:
        encoded_per_s = rate * 3 * (0.7 if options.format == "flac" else 1.0)
    copies = 2 if options.single_file and options.format != "m4b" else 1
    encoded = sum(seconds) * encoded_per_s * copies
    return int(kept_raw * raw_per_s + max(seconds, default=0.0) * raw_per_s + encoded)
