"""Chunk audio files: content-addressed by render key, written atomically.

A chunk's audio lives at ``<audio root>/<book id>/<key[:2]>/<key>.wav`` (32-bit float WAV at the
model's rate, so the export stage gets the exact samples the engine made). Files are written to a
temporary name in the same folder, flushed, fsync'ed and renamed, and the folder is fsync'ed: after
a crash a file either is complete or does not exist under its final name. Because the name is the
render key, two workers finishing the same chunk (after a lease was taken over) write identical
bytes to the same place.

The store holds paths relative to the audio root. With SQLite the root is ``<out>/chunks``; with
PostgreSQL it is ``--audio-dir``, a folder every worker must see under the same path (NFS, a
shared volume). Audio is kept out of the database on purpose: a book is hundreds of MB of float
audio, which would bloat the store, slow its backups and make every claim/commit contend with
large writes, while a shared file system streams it and lets export read files directly.
"""

from __future__ import annotations

import io
import os
import socket
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

_HOST = socket.gethostname().replace(".", "_").replace("/", "_")

#: Writes one chunk's audio (final path, float32 samples, sample rate in Hz); :func:`write_chunk_audio`.
AudioWriter = Callable[[Path, np.ndarray, int], None]


def chunk_relpath(book_id: int, render_key: str) -> str:
    return f"{book_id}/{render_key[:2]}/{render_key}.wav"


def temp_path(path: Path) -> Path:
    """Where ``path`` is written before it is renamed into place (host and pid in the name, see
    :func:`sweep_stale_temp_files`)."""
    return path.with_name(f".{path.name}.{_HOST}.{os.getpid()}.tmp")


def encode_wav(audio: np.ndarray, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.asarray(audio, dtype=np.float32), sample_rate, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def write_chunk_audio(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write atomically (temp file + fsync + rename + fsync of the folder); no partial file survives."""
    data = encode_wav(audio, sample_rate)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_chunk_audio(path: Path) -> tuple[np.ndarray, int]:
    audio, rate = sf.read(path, dtype="float32", always_2d=False)
    return audio, int(rate)


def sweep_stale_temp_files(folder: Path) -> int:
    """Delete temporary files left by killed processes of this host (another host's are left alone)."""
    import psutil

    removed = 0
    if not folder.is_dir():
        return 0
    for tmp in folder.rglob(f".*.{_HOST}.*.tmp"):
        pid_text = tmp.name.rsplit(".", 2)[-2]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and not psutil.pid_exists(int(pid_text)):
            try:
                tmp.unlink()
                removed += 1
            except OSError:
                pass
    return removed
