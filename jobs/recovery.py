"""Work already done that the store does not know about: chunk audio files on disk.

Chunk files are content-addressed (``<book id>/<key[:2]>/<render key>.wav``, :mod:`jobs.audio_files`)
and written atomically, so a file under a chunk's render key is that chunk's audio, whoever wrote it.
The store can lose track of one: ``render.db`` deleted or moved away after damage (the book is then
planned afresh, possibly under another book id), or a worker killed after renaming the file into place
but before marking the chunk done. Before rendering, :func:`adopt_chunk_audio` marks such chunks done
after checking that the file reads back whole; a file that does not is simply rendered again (and
replaced atomically).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from jobs.audio_files import chunk_relpath
from jobs.store import Store

log = logging.getLogger(__name__)


def adopt_chunk_audio(store: Store, book_id: int, root: Path) -> int:
    """Mark the book's pending chunks whose audio is already under ``root`` done; returns how many."""
    found = []
    for chunk_id, key in store.status.pending_keys(book_id):
        relpath = find_chunk_audio(root, book_id, key)
        if relpath is None:
            continue
        duration_s = readable_duration(root / relpath)
        if duration_s is None:
            log.warning("chunk audio %s does not read back whole: rendering it again", root / relpath)
            continue
        found.append((chunk_id, key, relpath, duration_s))
    return store.queue.adopt_audio(found) if found else 0


def find_chunk_audio(root: Path, book_id: int, render_key: str) -> str | None:
    """Path (relative to ``root``) of a file holding ``render_key``'s audio: the book's own, else one
    another book id left (the same key is the same audio)."""
    own = chunk_relpath(book_id, render_key)
    if (root / own).is_file():
        return own
    if not root.is_dir():
        return None
    for folder in sorted(p for p in root.iterdir() if p.name.isdigit() and p.name != str(book_id)):
        other = chunk_relpath(int(folder.name), render_key)
        if (root / other).is_file():
            return other
    return None


def readable_duration(path: Path) -> float | None:
    """Seconds of audio in a chunk file, or None unless it is a float WAV whose samples all read back
    (as many as its header says) and are finite."""
    if not _complete_riff(path):
        return None
    try:
        info = sf.info(str(path))
        if info.format != "WAV" or info.subtype != "FLOAT" or info.frames <= 0 or info.samplerate <= 0:
            return None
        audio, _rate = sf.read(str(path), dtype="float32", always_2d=False)
    except (OSError, RuntimeError, sf.LibsndfileError):
        return None
    if len(audio) != info.frames or not np.all(np.isfinite(audio)):
        return None
    return float(info.frames) / float(info.samplerate)


def _complete_riff(path: Path) -> bool:
    """Whether the file holds every byte its WAV header declares (libsndfile quietly reads a truncated
    file as a shorter one, which would put a cut-off chunk into a chapter)."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            size = os.fstat(f.fileno()).st_size
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return False
            while True:
                chunk = f.read(8)
                if len(chunk) < 8:
                    return False
                length = int.from_bytes(chunk[4:8], "little")
                if chunk[:4] == b"data":
                    return f.tell() + length <= size
                f.seek(length + (length & 1), os.SEEK_CUR)
    except OSError:
        return False
