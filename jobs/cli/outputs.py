"""Command-line options for what a run produces besides chapter audio: subtitles, the read-along EPUB
(`render BOOK` and `render export`) and run metrics (`render BOOK` and `render worker`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

SUBTITLE_FORMATS = ("srt", "vtt")


def listener_options(func: Any) -> Any:
    """--subtitles and --read-along, shared by `render BOOK` and `render export`."""
    func = click.option(
        "--read-along", is_flag=True,
        help="Also write BOOK.readalong.epub: the EPUB with the chapter audio and EPUB 3 media overlays, so "
             "reading apps (Thorium, Apple Books, Kobo) highlight each sentence as it is spoken. EPUB 3 only.",
    )(func)
    func = click.option(
        "--subtitles", type=click.Choice(SUBTITLE_FORMATS),
        help="Also write a subtitle file (SubRip .srt or WebVTT .vtt) with one cue per sentence next to every "
             "audio file.",
    )(func)
    return func


def metrics_options(func: Any) -> Any:
    """--metrics FILE, --metrics-port N, --metrics-host ADDR (`render BOOK` and `render worker`)."""
    func = click.option(
        "--metrics-host", default="127.0.0.1", show_default=True,
        help="Address the metrics endpoint listens on (loopback: only this machine can scrape it; 0.0.0.0: all).",
    )(func)
    func = click.option(
        "--metrics-port", type=click.IntRange(0, 65535),
        help="Also serve the metrics at http://HOST:PORT/metrics while rendering (0: any free port, printed).",
    )(func)
    func = click.option(
        "--metrics", "metrics_file", type=click.Path(dir_okay=False, path_type=Path),
        help="Keep run metrics (chunks done/failed/pending, audio seconds, tokens/s, batch fill, stage times, peak "
             "memory, GPU use) in this Prometheus text file, rewritten atomically every few seconds; name it "
             "*.prom in node exporter's textfile folder to collect it.",
    )(func)
    return func


@contextmanager
def metrics_publisher(file: Path | None, port: int | None, host: str, device: str) -> Iterator[Any]:
    """The run's metrics publisher, or None when no metrics were asked for."""
    from jobs.metrics import MetricsOptions, MetricsPublisher, RunMetrics

    options = MetricsOptions(file=file, port=port, host=host)
    if not options.enabled:
        yield None
        return
    with MetricsPublisher(RunMetrics(device=device), options) as publisher:
        if publisher.url:
            click.echo(f"metrics at {publisher.url}", err=True)
        yield publisher
