"""Encoders: MP3 (CBR, libsndfile/LAME), FLAC, WAV through soundfile; M4B (AAC + chapters) through ffmpeg.

Input is always one or more raw float32 temp files at the output rate, streamed block by block.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from export.errors import EncoderUnavailableError, ExportError
from export.rawfile import read_blocks

MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
_SF_FORMATS = {"mp3": ("MP3", "MPEG_LAYER_III"), "flac": ("FLAC", "PCM_24"), "wav": ("WAV", "PCM_24")}


def mp3_compression_level(bitrate_kbps: int, sample_rate: int) -> float:
    """libsndfile's CBR knob: compression 0..1 maps linearly onto the layer's bit-rate range.

    MPEG-1 (>= 32 kHz) spans 320..32 kb/s, MPEG-2/2.5 spans 160..8 kb/s; the result is checked afterwards
    by reading the frame headers (:func:`mp3_bitrates`).
    """
    top, bottom = (320, 32) if sample_rate >= 32000 else (160, 8)
    kbps = min(max(bitrate_kbps, bottom), top)
    return (top - kbps) / (top - bottom)


def _concat_blocks(raw_paths: Sequence[Path], gains_db: Sequence[float] | float) -> Iterator[np.ndarray]:
    """The raw files one after another, each scaled by its own gain (dB)."""
    gains = [float(gains_db)] * len(raw_paths) if isinstance(gains_db, (int, float)) else list(gains_db)
    if len(gains) != len(raw_paths):
        raise ExportError("internal: one gain per raw file expected")
    for raw, gain_db in zip(raw_paths, gains, strict=True):
        gain = np.float32(10.0 ** (gain_db / 20.0))
        for block in read_blocks(raw):
            yield block * gain


def write_soundfile(raw_paths: Sequence[Path], path: Path, fmt: str, sample_rate: int, bitrate_kbps: int,
                    gain_db: Sequence[float] | float = 0.0) -> None:
    """Stream raw float32 temps into an MP3/FLAC/WAV file (with a gain per temp, or one for all)."""
    if fmt == "mp3" and sample_rate not in MP3_RATES:
        raise ExportError(f"MP3 cannot store {sample_rate} Hz; choose one of {MP3_RATES}")
    container, subtype = _SF_FORMATS[fmt]
    extra: dict[str, object] = {}
    if fmt == "mp3":
        extra = {"bitrate_mode": "CONSTANT", "compression_level": mp3_compression_level(bitrate_kbps, sample_rate)}
    try:
        with sf.SoundFile(str(path), "w", samplerate=sample_rate, channels=1, format=container,
                          subtype=subtype, **extra) as out:  # type: ignore[arg-type]
            for block in _concat_blocks(raw_paths, gain_db):
                # PCM formats clip at full scale; the limiter already keeps us far below it.
                out.write(np.clip(block, -1.0, 1.0))
    except sf.LibsndfileError as exc:
        raise ExportError(f"cannot encode {path}: {exc}") from exc


@dataclass(frozen=True)
class ChapterMark:
    title: str
    start_s: float
    end_s: float


def ffmpeg_path() -> str:
    """Path of ffmpeg, or :class:`EncoderUnavailableError` with what to do about it."""
    found = shutil.which("ffmpeg")
    if found is None:
        raise EncoderUnavailableError(
            "M4B export needs ffmpeg (AAC encoder and chapter muxer), which is not installed; "
            "install it (e.g. `apt-get install ffmpeg`) or export with --format mp3|flac|wav")
    return found


def _ffmetadata(title: str, author: str, marks: Sequence[ChapterMark]) -> str:
    def esc(text: str) -> str:
        for ch in ("\\", "=", ";", "#", "\n"):
            text = text.replace(ch, "\\" + ch)
        return text

    lines = [";FFMETADATA1", f"title={esc(title)}", f"album={esc(title)}", f"artist={esc(author)}",
             "genre=Audiobook"]
    for mark in marks:
        lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={int(round(mark.start_s * 1000))}",
                  f"END={int(round(mark.end_s * 1000))}", f"title={esc(mark.title)}"]
    return "\n".join(lines) + "\n"


def write_m4b(raw_paths: Sequence[Path], path: Path, sample_rate: int, bitrate_kbps: int, title: str,
              author: str, marks: Sequence[ChapterMark], gain_db: Sequence[float] | float = 0.0) -> None:
    """AAC in an MP4 (.m4b) container with chapter marks; audio is piped to ffmpeg, never held in memory."""
    ffmpeg = ffmpeg_path()
    meta = path.with_name(path.name + ".ffmeta.txt")
    meta.write_text(_ffmetadata(title, author, marks), encoding="utf-8")
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "f32le", "-ar", str(sample_rate),
           "-ac", "1", "-i", "pipe:0", "-i", str(meta), "-map", "0:a", "-map_metadata", "1", "-map_chapters", "1",
           "-c:a", "aac", "-b:a", f"{bitrate_kbps}k", "-f", "ipod", str(path)]
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdin is not None
        try:
            for block in _concat_blocks(raw_paths, gain_db):
                proc.stdin.write(block.astype("<f4").tobytes())
        except BrokenPipeError:
            pass
        proc.stdin.close()
        stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.wait() != 0:
            raise ExportError(f"ffmpeg failed to write {path}: {stderr.strip()[-2000:]}")
    finally:
        meta.unlink(missing_ok=True)


def decode_blocks(path: Path, fmt: str, block_samples: int = 1 << 16) -> tuple[int, int, Iterator[np.ndarray]]:
    """(sample_rate, channels, iterator of mono float32 blocks) of an encoded file, streamed."""
    if fmt == "m4b":
        return _decode_ffmpeg(path, block_samples)
    try:
        info = sf.info(str(path))
    except sf.LibsndfileError as exc:
        raise ExportError(f"cannot decode {path}: {exc}") from exc

    def blocks() -> Iterator[np.ndarray]:
        with sf.SoundFile(str(path)) as f:
            for block in f.blocks(blocksize=block_samples, dtype="float32", always_2d=True):
                yield block.mean(axis=1) if block.shape[1] > 1 else block[:, 0]

    return int(info.samplerate), int(info.channels), blocks()


def probe_audio(path: Path) -> tuple[int, int, int]:
    """(sample rate, channels, bit rate in kb/s) of the first audio stream, read by ffprobe."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        raise EncoderUnavailableError("verifying M4B needs ffprobe (part of ffmpeg), which is not installed")
    out = subprocess.run([ffprobe, "-v", "error", "-select_streams", "a:0", "-show_entries",
                          "stream=sample_rate,channels,bit_rate", "-of", "json", str(path)],
                         capture_output=True, text=True, check=False)
    try:
        stream = json.loads(out.stdout)["streams"][0]
        bitrate = stream.get("bit_rate", "0")
        return int(stream["sample_rate"]), int(stream["channels"]), int(bitrate) // 1000 if bitrate.isdigit() else 0
    except (KeyError, IndexError, ValueError) as exc:
        raise ExportError(f"ffprobe cannot read {path}: {out.stderr.strip()}") from exc


def _decode_ffmpeg(path: Path, block_samples: int) -> tuple[int, int, Iterator[np.ndarray]]:
    rate, channels, _ = probe_audio(path)
    cmd = [ffmpeg_path(), "-hide_banner", "-loglevel", "error", "-i", str(path), "-map", "0:a:0",
           "-ac", "1", "-f", "f32le", "pipe:1"]

    def blocks() -> Iterator[np.ndarray]:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert proc.stdout is not None
        try:
            while data := proc.stdout.read(block_samples * 4):
                yield np.frombuffer(data[: len(data) // 4 * 4], dtype="<f4").astype(np.float32)
        finally:
            proc.stdout.close()
            proc.wait()

    return rate, channels, blocks()


def ffprobe_chapters(path: Path) -> list[dict[str, object]]:
    """Chapter list (title, start_s, end_s) as ffprobe reads it back from the container."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        raise EncoderUnavailableError("reading chapters needs ffprobe (part of ffmpeg), which is not installed")
    out = subprocess.run([ffprobe, "-v", "error", "-show_chapters", "-of", "json", str(path)],
                         capture_output=True, text=True, check=False)
    chapters = json.loads(out.stdout or "{}").get("chapters", [])
    return [{"title": c.get("tags", {}).get("title", ""), "start_s": float(c["start_time"]),
             "end_s": float(c["end_time"])} for c in chapters]
