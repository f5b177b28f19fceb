"""Walk MPEG audio frame headers to prove the bit-rate mode (CBR = every audio frame has the same rate)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

# kb/s by bit-rate index, Layer III; index 0 (free) and 15 (bad) are invalid.
_MPEG1_L3 = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0)
_MPEG2_L3 = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0)
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}  # by version bits


@dataclass(frozen=True)
class Mp3Profile:
    frames: int
    bitrates_kbps: dict[int, int]  # bit rate -> number of frames
    sample_rate: int
    channels: int

    @property
    def mode(self) -> str:
        return "CBR" if len(self.bitrates_kbps) == 1 else ("VBR" if self.bitrates_kbps else "unknown")

    @property
    def bitrate_kbps(self) -> int:
        """The constant rate for CBR; the lowest rate used otherwise (what a minimum-rate rule must see)."""
        return min(self.bitrates_kbps) if self.bitrates_kbps else 0


def _skip_id3v2(data: bytes) -> int:
    if data[:3] != b"ID3" or len(data) < 10:
        return 0
    size = 0
    for byte in data[6:10]:
        size = (size << 7) | (byte & 0x7F)
    return 10 + size + (10 if data[5] & 0x10 else 0)


def _parse_header(h: bytes) -> tuple[int, int, int, int] | None:
    """(frame length bytes, bitrate kb/s, sample rate, channels) of a Layer III header, or None."""
    if len(h) < 4 or h[0] != 0xFF or (h[1] & 0xE0) != 0xE0:
        return None
    version, layer = (h[1] >> 3) & 0x3, (h[1] >> 1) & 0x3
    bitrate_index, rate_index, padding = h[2] >> 4, (h[2] >> 2) & 0x3, (h[2] >> 1) & 0x1
    if version == 1 or layer != 1 or rate_index == 3 or bitrate_index in (0, 15):
        return None
    kbps = (_MPEG1_L3 if version == 3 else _MPEG2_L3)[bitrate_index]
    rate = _RATES[version][rate_index]
    coefficient = 144 if version == 3 else 72
    channels = 1 if (h[3] >> 6) == 3 else 2
    return coefficient * kbps * 1000 // rate + padding, kbps, rate, channels


def mp3_profile(path: Path) -> Mp3Profile:
    """Count the bit rates of all frames, reading the file header by header (constant memory)."""
    counts: Counter[int] = Counter()
    rate = channels = frames = 0
    with open(path, "rb") as f:
        head = f.read(10)
        offset = _skip_id3v2(head)
        while True:
            f.seek(offset)
            header = f.read(4)
            parsed = _parse_header(header)
            if parsed is None:
                break
            length, kbps, rate, channels = parsed
            counts[kbps] += 1
            frames += 1
            offset += length
    return Mp3Profile(frames, dict(counts), rate, channels)
