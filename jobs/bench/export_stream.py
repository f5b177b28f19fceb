"""Streaming benchmark: export N hours of synthetic chunk files and print peak RSS and time.

    python -m jobs.bench.export_stream              # 10 h in 10 chapters, MP3, ACX preset
    python -m jobs.bench.export_stream --hours 1 --format flac --chapters 1

Chunks are speech-like synthetic signals (noise + harmonics under a syllable envelope, ~8 s each, 32 kHz
16-bit WAV). To keep disk use small, 64 distinct files are written and the manifest points each chunk
entry at one of them; every entry is still read, trimmed, gain-matched and placed on its own.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import soundfile as sf

from export import BookInfo, ChapterManifest, ChunkAudio, ExportOptions, export_book

RATE = 32000
CHUNK_S = 8.0
POOL = 64


def _speech_like(rng: np.random.Generator, seconds: float) -> np.ndarray:
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    syllables = np.abs(np.sin(2 * np.pi * rng.uniform(2.5, 4.0) * t)) ** 0.7
    phrase = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.2, 0.5) * t)
    f0 = rng.uniform(90, 220)
    voiced = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 8))
    x = (0.6 * voiced + 0.2 * rng.standard_normal(n)) * syllables * phrase
    x = np.concatenate([np.zeros(int(0.12 * RATE)), x, np.zeros(int(0.2 * RATE))])
    level_db = rng.uniform(-28.0, -20.0)
    return (x / np.sqrt(np.mean(x**2)) * 10 ** (level_db / 20)).astype(np.float32)


def make_chunks(folder: Path, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(POOL):
        path = folder / f"pool_{i:03d}.wav"
        sf.write(str(path), _speech_like(rng, CHUNK_S * rng.uniform(0.6, 1.2)), RATE, subtype="PCM_16")
        paths.append(path)
    return paths


def make_manifest(pool: list[Path], hours: float, n_chapters: int) -> list[ChapterManifest]:
    """Chunk entries cycling through the pool until the speech plus pauses reach ``hours``."""
    boundaries = ["sentence", "sentence", "paragraph", "sentence", "sentence", "heading", "scene_break"]
    pool_s = [sf.info(str(p)).duration - 0.3 for p in pool]  # minus the padding that trimming removes
    mean_pause_s = 0.7  # the boundary mix above with the default pauses
    entries, total_s = 0, n_chapters * 2.75  # head + tail room tone per chapter
    while total_s < hours * 3600 or entries < n_chapters:
        total_s += pool_s[entries % POOL] + mean_pause_s
        entries += 1
    per = entries // n_chapters
    chapters = []
    for c in range(n_chapters):
        ks = range(c * per, entries if c == n_chapters - 1 else (c + 1) * per)
        chunks = [ChunkAudio(pool[k % POOL], "chapter_end" if k == ks[-1] else boundaries[k % len(boundaries)],
                             f"chunk {k}", f"c{c}-{k}", n_phones=90, n_tokens=200) for k in ks]
        chapters.append(ChapterManifest(c + 1, f"Chapter {c + 1}", chunks))
    return chapters


class _RssSampler(threading.Thread):
    """Samples RSS every 50 ms (ru_maxrss is also printed; it is the kernel's own high-water mark)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        proc = psutil.Process()
        while not self._stop_event.is_set():
            self.peak = max(self.peak, proc.memory_info().rss)
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=10.0)
    parser.add_argument("--chapters", type=int, default=10)
    parser.add_argument("--format", default="mp3", choices=["mp3", "m4b", "flac", "wav"])
    parser.add_argument("--preset", default="acx", choices=["acx", "podcast", "none"])
    parser.add_argument("--single-file", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None, help="where chunks and output go (default: a temp dir)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="export-bench-", dir=args.workdir))
    try:
        (work / "chunks").mkdir()
        chapters = make_manifest(make_chunks(work / "chunks"), args.hours, args.chapters)
        n_chunks = sum(len(c.chunks) for c in chapters)
        baseline_rss = psutil.Process().memory_info().rss
        sampler = _RssSampler()
        sampler.start()
        start = time.perf_counter()
        report = export_book(BookInfo("Bench Book", "Synthetic", "en"), chapters, work / "out",
                             ExportOptions(format=args.format, preset=args.preset, single_file=args.single_file))
        elapsed = time.perf_counter() - start
        sampler.stop()
        audio_s = sum(f.measurement.duration_s for f in report.files if f.kind == "chapter") or sum(
            f.measurement.duration_s for f in report.files)
        max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"chunks: {n_chunks} in {len(chapters)} chapters, audio {audio_s / 3600:.2f} h, format {args.format}, "
              f"preset {args.preset}")
        print(f"time: {elapsed:.1f} s ({audio_s / elapsed:.1f}x real time)")
        print(f"peak RSS: {max_rss_mb:.0f} MB (ru_maxrss, whole process); sampled {sampler.peak / 2**20:.0f} MB, "
              f"baseline before export {baseline_rss / 2**20:.0f} MB")
        attempts = sum(f.encode_attempts for f in report.files)
        passes = sum(int(c.mastering["passes"]) for c in report.chapters)
        print(f"encodes: {attempts} for {len(report.files)} files; mastering renders: {passes}")
        print(f"report: {'PASS' if report.passed else 'FAIL'}; "
              f"files failing: {[f.name for f in report.files if not f.passed]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
