"""Headerless float32 temp files: no 4 GiB WAV limit, streamed in and out in fixed-size blocks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

BLOCK_SAMPLES = 1 << 16


class RawWriter:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self.n_samples = 0

    def write(self, samples: np.ndarray) -> None:
        data = np.ascontiguousarray(samples, dtype=np.float32)
        self._file.write(data.tobytes())
        self.n_samples += len(data)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> RawWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_blocks(path: Path, block_samples: int = BLOCK_SAMPLES) -> Iterator[np.ndarray]:
    """Yield float32 blocks of a raw file in order (the last one may be shorter)."""
    with open(path, "rb") as f:
        while True:
            data = f.read(block_samples * 4)
            if not data:
                return
            yield np.frombuffer(data, dtype=np.float32)
