"""Job hooks and audio writers for crash, disk-full and concurrency tests (``jobs.events.JobHooks``).

:class:`EnvHooks` is configured from the environment of a ``render`` subprocess (see ``run_cli.py``):

- ``RENDER_TEST_PAUSE_AT="claim:1,write:2"``: stop the n-th time the process passes the named point
  (:data:`jobs.events.Point`, plus ``write``: a chunk's temporary file half written, see
  :func:`write_with_pause`): write the point's name to ``RENDER_TEST_PAUSE_FILE`` (so the test knows
  where the process is) and sleep until the test kills it;
- ``RENDER_TEST_START_GATE=<file>``: a worker waits for the file before its first claim, so that several
  worker processes start claiming at the same moment;
- ``RENDER_TEST_CLAIM_LOG=<file>``: one ``<worker> <chunk id> <time>`` line per claimed chunk.
"""

from __future__ import annotations

import errno
import os
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jobs.audio_files import AudioWriter, encode_wav, temp_path, write_chunk_audio
from jobs.events import JobHooks, Point


def _pause_targets(spec: str) -> dict[str, int]:
    targets = {}
    for item in spec.split(","):
        if item.strip():
            name, _, nth = item.strip().partition(":")
            targets[name] = int(nth or 1)
    return targets


class EnvHooks(JobHooks):
    """Pause points, start gate and claim log, as the environment asks (each off when its variable is unset)."""

    def __init__(self, pause_at: dict[str, int] | None = None, pause_file: str | None = None,
                 start_gate: str | None = None, claim_log: str | None = None) -> None:
        self.pause_at = pause_at or {}
        self.pause_file = pause_file
        self.start_gate = start_gate
        self.claim_log = claim_log
        self._hits: Counter[str] = Counter()

    @classmethod
    def from_env(cls) -> EnvHooks:
        env = os.environ
        return cls(_pause_targets(env.get("RENDER_TEST_PAUSE_AT", "")), env.get("RENDER_TEST_PAUSE_FILE"),
                   env.get("RENDER_TEST_START_GATE"), env.get("RENDER_TEST_CLAIM_LOG"))

    def at(self, point: Point) -> None:
        self.pause(point)

    def pause(self, name: str) -> None:
        """Pause forever here if this is the passage the test asked for; otherwise do nothing."""
        if name not in self.pause_at:
            return
        self._hits[name] += 1
        if self._hits[name] != self.pause_at[name]:
            return
        if self.pause_file:
            with open(self.pause_file, "w", encoding="utf-8") as f:
                f.write(name)
                f.flush()
                os.fsync(f.fileno())
        while True:  # the test kills us with SIGKILL
            time.sleep(60)

    def worker_started(self, worker_id: str) -> None:
        if not self.start_gate:
            return
        deadline = time.monotonic() + 120
        while not os.path.exists(self.start_gate) and time.monotonic() < deadline:
            time.sleep(0.01)

    def claimed(self, worker_id: str, chunk_ids: Sequence[int]) -> None:
        if not self.claim_log:
            return
        now = time.time()
        lines = "".join(f"{worker_id} {chunk_id} {now:.6f}\n" for chunk_id in chunk_ids)
        fd = os.open(self.claim_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, lines.encode())
        finally:
            os.close(fd)


def write_with_pause(hooks: EnvHooks) -> AudioWriter:
    """The real writer, after leaving half of the file under its temporary name and passing the ``write``
    pause point: what a process killed in the middle of a write leaves behind."""

    def write(path: Path, audio: np.ndarray, sample_rate: int) -> None:
        data = encode_wav(audio, sample_rate)
        path.parent.mkdir(parents=True, exist_ok=True)
        temp_path(path).write_bytes(data[: len(data) // 2])
        hooks.pause("write")
        write_chunk_audio(path, audio, sample_rate)

    return write


def disk_full_after(n_files: int) -> AudioWriter:
    """A writer that writes ``n_files`` chunk files, then fails every later one with ENOSPC (disk full)."""
    written = 0

    def write(path: Path, audio: np.ndarray, sample_rate: int) -> None:
        nonlocal written
        if written >= n_files:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        write_chunk_audio(path, audio, sample_rate)
        written += 1

    return write
