"""``render bench-takes``: throughput of the same book with re-rolls off (``--max-takes 1``) and on.

Each run renders the book from scratch into a fresh folder through :func:`jobs.pipeline.run_book`, as
``render run`` does (WAV export, no loudness preset, so that encoding adds little), alternating the two
modes so that a change in the machine's load falls on both. Figures per mode are medians over the runs:

- ``takes_per_s``: takes rendered (first takes and re-rolls) per second of rendering: the engine's
  throughput. Re-rolls are ordinary chunks in the next claim, so this should stay where it is;
- ``chunks_per_s``: chunks finished per second of rendering: what a listener waits for. It falls by the
  number of takes per chunk (with a random voice every take is bad, so "on" renders ``max_takes`` per chunk:
  the worst case);
- ``render_s``: from the first claim to the last chunk done (the worker's span in the store), and
  ``wall_s``: the whole command, planning and export included.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from jobs.engines import EngineSettings
from jobs.pipeline import RenderSettings, run_book
from jobs.services import Services
from jobs.store import Store

__all__ = ["TakeBenchFigures", "TakeBenchRun", "bench_takes", "format_table"]


@dataclass(frozen=True)
class TakeBenchRun:
    """One rendering of the book."""

    max_takes: int
    wall_s: float
    render_s: float
    chunks: int
    takes: int
    doubtful: int
    audio_s: float  # audio of every take rendered

    @property
    def takes_per_s(self) -> float:
        return self.takes / self.render_s if self.render_s > 0 else 0.0

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.render_s if self.render_s > 0 else 0.0


@dataclass(frozen=True)
class TakeBenchFigures:
    """Medians of one mode's runs."""

    mode: str
    max_takes: int
    runs: int
    chunks: int
    takes: float
    doubtful: float
    render_s: float
    wall_s: float
    takes_per_s: float
    chunks_per_s: float
    audio_s_per_s: float

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def bench_takes(book: Path, voice: str, *, max_takes: int = 3, runs: int = 3, chapters: str | None = None,
                max_tokens: int | None = None, batch_size: int = 0, engine: EngineSettings = EngineSettings(),
                voices_dir: Path | None = None, services: Services = Services(),
                log: Callable[[str], None] = print) -> list[TakeBenchFigures]:
    """Render ``book`` ``runs`` times with re-rolls off and on (alternating); figures of each mode."""
    overrides = {} if max_tokens is None else {"max_tokens": max_tokens}
    done: dict[int, list[TakeBenchRun]] = {1: [], max_takes: []}
    with tempfile.TemporaryDirectory(prefix="render-bench-takes-") as tmp:
        for run in range(runs):
            for takes in done:
                out = Path(tmp) / f"run{run}-takes{takes}"
                settings = RenderSettings(book=book, voice=voice, out_dir=out, chapters=chapters,
                                          batch_size=batch_size, engine=engine, voices_dir=voices_dir,
                                          overrides=overrides, export_format="wav", preset="none",
                                          max_takes=takes)
                done[takes].append(_one_run(settings, services))
                last = done[takes][-1]
                log(f"run {run + 1}/{runs}, --max-takes {takes}: {last.takes} takes for {last.chunks} chunks "
                    f"in {last.render_s:.1f} s ({last.takes_per_s:.2f} takes/s, {last.chunks_per_s:.2f} chunks/s)")
    return [_figures("off" if takes == 1 else "on", takes, found) for takes, found in done.items()]


def _one_run(settings: RenderSettings, services: Services) -> TakeBenchRun:
    started = time.perf_counter()
    result = run_book(settings, services)
    wall_s = time.perf_counter() - started
    from jobs.pipeline import store_url

    with Store(store_url(settings.out_dir, None)) as store:
        speed = store.stats.throughput(result.book_id, window_s=1e9)  # every batch of the run
    chunks = result.counts.get("done", 0)
    return TakeBenchRun(max_takes=settings.max_takes, wall_s=wall_s, render_s=speed.span_s, chunks=chunks,
                        takes=chunks + result.takes.rerolled, doubtful=result.takes.doubtful,
                        audio_s=speed.audio_s)


def _figures(mode: str, max_takes: int, runs: list[TakeBenchRun]) -> TakeBenchFigures:
    def median(values: list[float]) -> float:
        return float(statistics.median(values))

    return TakeBenchFigures(
        mode=mode, max_takes=max_takes, runs=len(runs), chunks=runs[0].chunks,
        takes=median([r.takes for r in runs]), doubtful=median([r.doubtful for r in runs]),
        render_s=median([r.render_s for r in runs]), wall_s=median([r.wall_s for r in runs]),
        takes_per_s=median([r.takes_per_s for r in runs]), chunks_per_s=median([r.chunks_per_s for r in runs]),
        audio_s_per_s=median([r.audio_s / r.render_s if r.render_s > 0 else 0.0 for r in runs]))


def format_table(figures: list[TakeBenchFigures]) -> str:
    """The figures as a small text table (what the command prints)."""
    header = (f"{'re-rolls':<9} {'max-takes':>9} {'chunks':>6} {'takes':>6} {'doubtful':>8} {'render s':>8} "
              f"{'wall s':>7} {'takes/s':>8} {'chunks/s':>8} {'audio-s/s':>9}")
    lines = [header]
    for f in figures:
        lines.append(f"{f.mode:<9} {f.max_takes:>9} {f.chunks:>6} {f.takes:>6.0f} {f.doubtful:>8.0f} "
                     f"{f.render_s:>8.1f} {f.wall_s:>7.1f} {f.takes_per_s:>8.2f} {f.chunks_per_s:>8.2f} "
                     f"{f.audio_s_per_s:>9.2f}")
    return "\n".join(lines)
