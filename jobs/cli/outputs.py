"""Command-line options for what a run produces besides chapter audio: subtitles, the read-along EPUB
(`render BOOK` and `render export`) and run metrics (`render BOOK` and `render worker`)."""

from __future__ import annotations

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
