"""Pass 1: chunk files → one continuous chapter signal (raw float32 temp file at the chunks' rate).

Per chunk: trim near-silence (threshold relative to the chunk's own level, keeping a short margin), a
gentle bounded gain towards the running chapter level (one constant gain per chunk, so no pumping), then
placement so that the silence between two chunks' speech equals the pause of the boundary type. Every
segment is faded in and out with quarter-sine/quarter-cosine (equal-power) ramps, so it starts and ends
at zero: neighbouring segments, or a segment and the room tone added later, join without a step.
Only one chunk and a short tail are in memory at any time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.ndimage
import soundfile as sf
import soxr

from export.errors import ExportError
from export.loudness import SILENCE_DB, LoudnessMeter, integrated_loudness, k_weighted_mean_square_lufs
from export.model import ChapterManifest, ChunkAudio
from export.options import ExportOptions
from export.rawfile import RawWriter

_EMA_ALPHA = 0.3  # weight of the newest chunk in the running chapter level
_MIN_LEVEL_SECONDS = 0.15  # shorter speech does not update the running level (too noisy an estimate)


@dataclass
class ChunkPlacement:
    """Where a chunk's speech landed in the chapter (seconds from the chapter file's start)."""

    key: str
    text: str
    start_s: float
    end_s: float
    gain_db: float
    loudness_lufs: float
    trimmed_head_s: float
    trimmed_tail_s: float
    n_phones: int
    n_tokens: int
    silent: bool = False

    @property
    def speech_s(self) -> float:
        return self.end_s - self.start_s


@dataclass
class Assembly:
    path: Path
    sample_rate: int
    n_samples: int
    chunks: list[ChunkPlacement] = field(default_factory=list)
    pauses_s: list[tuple[float, float]] = field(default_factory=list)  # room-tone intervals, head and tail included
    loudness_lufs: float = SILENCE_DB

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.sample_rate


def read_chunk(path: Path, sample_rate: int | None) -> tuple[np.ndarray, int]:
    """Mono float32 samples of a chunk file, resampled (soxr HQ) to ``sample_rate`` when given."""
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, OSError) as exc:
        raise ExportError(f"cannot read chunk audio {path}: {exc}") from exc
    x = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    x = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)
    if sample_rate is not None and rate != sample_rate and len(x):
        x = soxr.resample(x, rate, sample_rate, quality="HQ").astype(np.float32)
        rate = sample_rate
    return np.ascontiguousarray(x, dtype=np.float32), rate


def speech_bounds(x: np.ndarray, sample_rate: int, threshold_db: float) -> tuple[int, int] | None:
    """[start, end) of the part louder than ``threshold_db`` below the chunk's active level, or None.

    Active level: 95th percentile of 10 ms frame RMS (robust to a few clicks). The envelope is a 2 ms
    moving RMS, so onsets are found to about a millisecond.
    """
    frame = max(1, sample_rate // 100)
    n_frames = len(x) // frame
    if n_frames == 0:
        return None
    frames = x[: n_frames * frame].astype(np.float64).reshape(n_frames, frame)
    active = float(np.percentile(np.sqrt((frames * frames).mean(axis=1)), 95))
    if active < 1e-6:  # below -120 dBFS: nothing to keep
        return None
    threshold = active * 10.0 ** (threshold_db / 20.0)
    window = max(1, int(0.002 * sample_rate))
    mean_square = scipy.ndimage.uniform_filter1d(x.astype(np.float64) ** 2, size=window, mode="constant")
    envelope = np.sqrt(np.maximum(mean_square, 0.0))  # the running sum can dip a hair below zero
    loud = np.flatnonzero(envelope > threshold)
    if len(loud) == 0:
        return None
    return int(loud[0]), int(loud[-1]) + 1


def equal_power_fades(segment: np.ndarray, fade: int) -> np.ndarray:
    """Quarter-sine fade-in and quarter-cosine fade-out (sin² + cos² = 1) over ``fade`` samples each."""
    n = min(fade, len(segment) // 2)
    if n == 0:
        return np.zeros_like(segment)
    ramp = np.sin(0.5 * np.pi * (np.arange(n, dtype=np.float64) + 0.5) / n)
    out = segment.astype(np.float64)
    out[:n] *= ramp
    out[len(out) - n :] *= ramp[::-1]
    return out


class _OverlapWriter:
    """Overlap-adds segments onto a timeline and streams the finished prefix to disk."""

    def __init__(self, writer: RawWriter, meter: LoudnessMeter, reserve: int) -> None:
        self._writer, self._meter, self._reserve = writer, meter, reserve
        self._buf = np.zeros(0, dtype=np.float64)
        self._start = 0  # timeline position of _buf[0]; everything before is on disk

    def place(self, segment: np.ndarray, position: int) -> None:
        if position < self._start:
            raise ExportError(f"internal: segment at {position} overlaps audio already written (<{self._start})")
        end = position + len(segment)
        if end > self._start + len(self._buf):
            self._buf = np.concatenate([self._buf, np.zeros(end - self._start - len(self._buf))])
        self._buf[position - self._start : end - self._start] += segment
        self._commit(end - self._reserve)

    def finish(self, total: int) -> None:
        if total > self._start + len(self._buf):
            self._buf = np.concatenate([self._buf, np.zeros(total - self._start - len(self._buf))])
        self._commit(total)

    def _commit(self, upto: int) -> None:
        n = upto - self._start
        if n <= 0:
            return
        done = self._buf[:n].astype(np.float32)
        self._writer.write(done)
        self._meter.add(done)
        self._buf = self._buf[n:]
        self._start = upto


def _chunk_level(speech: np.ndarray, sample_rate: int) -> float:
    if len(speech) >= int(0.4 * sample_rate):
        level = integrated_loudness(speech, sample_rate)
        if level > SILENCE_DB:
            return level
    return k_weighted_mean_square_lufs(speech, sample_rate)


def _working_rate(chapter: ChapterManifest) -> int:
    for chunk in chapter.chunks:
        if not chunk.path.is_file():
            raise ExportError(f"chapter {chapter.index}: chunk {chunk.key!r} audio file is missing: {chunk.path}")
    try:
        return int(sf.info(str(chapter.chunks[0].path)).samplerate)
    except (sf.LibsndfileError, OSError) as exc:
        raise ExportError(f"cannot read chunk audio {chapter.chunks[0].path}: {exc}") from exc


class _Placer:
    """Keeps the chapter timeline state: speech cursor, pending pause, running level."""

    def __init__(self, options: ExportOptions, rate: int, out: _OverlapWriter, result: Assembly) -> None:
        self.options, self.rate, self.out, self.result = options, rate, out, result
        self.keep = int(options.trim_keep_ms * 1e-3 * rate)
        self.fade = max(1, int(options.crossfade_ms * 1e-3 * rate))
        self.cursor = 0  # end of the last placed speech
        self.pending_pause: float | None = None  # None until the first speech: then the head room tone
        self.running_lufs: float | None = None

    def _gain_db(self, level: float, speech_samples: int) -> float:
        if self.running_lufs is None or level <= SILENCE_DB:
            gain = 0.0
        else:
            gain = self.options.gain_match_strength * (self.running_lufs - level)
            gain = float(np.clip(gain, -self.options.gain_match_max_db, self.options.gain_match_max_db))
        if level > SILENCE_DB and speech_samples >= _MIN_LEVEL_SECONDS * self.rate:
            self.running_lufs = level if self.running_lufs is None else (
                (1 - _EMA_ALPHA) * self.running_lufs + _EMA_ALPHA * level)
        return gain

    def _onset(self) -> int:
        if self.pending_pause is None:
            return int(round(self.options.head_room_tone_s * self.rate))
        return self.cursor + int(round(self.pending_pause * self.rate))

    def add(self, chunk: ChunkAudio, x: np.ndarray) -> None:
        bounds = speech_bounds(x, self.rate, self.options.trim_threshold_db)
        pause_after = self.options.pauses.after(chunk.boundary)
        if bounds is None:
            at = self._onset() / self.rate if self.pending_pause is not None else self.cursor / self.rate
            self.result.chunks.append(ChunkPlacement(chunk.key, chunk.text, at, at, 0.0, SILENCE_DB,
                                                     len(x) / self.rate, 0.0, chunk.n_phones, chunk.n_tokens, True))
            if self.pending_pause is not None:
                self.pending_pause = max(self.pending_pause, pause_after)
            return
        start, end = bounds
        level = _chunk_level(x[start:end], self.rate)
        gain_db = self._gain_db(level, end - start)
        onset = self._onset()
        # The kept lead-in cannot reach before the file start (head room tone of 0 s).
        seg_start, seg_end = max(0, start - self.keep, start - onset), min(len(x), end + self.keep)
        segment = equal_power_fades(x[seg_start:seg_end] * 10.0 ** (gain_db / 20.0), self.fade)
        if self.pending_pause is not None:
            self.result.pauses_s.append((self.cursor / self.rate, onset / self.rate))
        else:
            self.result.pauses_s.append((0.0, onset / self.rate))
        self.out.place(segment, onset - (start - seg_start))
        self.result.chunks.append(ChunkPlacement(
            chunk.key, chunk.text, onset / self.rate, (onset + end - start) / self.rate, gain_db, level,
            start / self.rate, (len(x) - end) / self.rate, chunk.n_phones, chunk.n_tokens))
        self.cursor = onset + (end - start)
        self.pending_pause = pause_after


def assemble_chapter(chapter: ChapterManifest, options: ExportOptions, raw_path: Path) -> Assembly:
    """Write the chapter's continuous float32 signal to ``raw_path`` and return where everything landed."""
    rate = _working_rate(chapter)
    result = Assembly(path=Path(raw_path), sample_rate=rate, n_samples=0)
    meter = LoudnessMeter(rate)
    with RawWriter(raw_path) as writer:
        keep = int(options.trim_keep_ms * 1e-3 * rate)
        out = _OverlapWriter(writer, meter, reserve=2 * keep + int(0.05 * rate))
        placer = _Placer(options, rate, out, result)
        for chunk in chapter.chunks:
            x, _ = read_chunk(chunk.path, rate)
            placer.add(chunk, x)
        if placer.pending_pause is None:  # no speech at all: head + tail of room tone
            placer.cursor = int(round(options.head_room_tone_s * rate))
            result.pauses_s.append((0.0, placer.cursor / rate))
        total = placer.cursor + int(round(options.tail_room_tone_s * rate))
        result.pauses_s.append((placer.cursor / rate, total / rate))
        out.finish(total)
        result.n_samples = writer.n_samples
    result.loudness_lufs = meter.integrated()
    if not math.isfinite(result.loudness_lufs):
        result.loudness_lufs = SILENCE_DB
    return result
