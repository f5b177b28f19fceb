"""Subtitle files (SubRip .srt, WebVTT .vtt) with one cue per sentence, next to each audio file.

A player that shows subtitles for audio (VLC, mpv, many podcast and audiobook players) finds them by the
audio file's name: ``03 - Title.mp3`` gets ``03 - Title.srt``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

from export.cues import MIN_CUE_S, Cue

LINE_CHARS = 42  # the usual subtitle line length


def _clock(seconds: float, separator: str) -> str:
    ms = max(0, int(round(seconds * 1000)))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{separator}{ms:03d}"


def _lines(text: str) -> list[str]:
    """Cue text as lines: verse line breaks kept, long lines wrapped, never an empty line (it ends a cue)."""
    out: list[str] = []
    for line in text.split("\n"):
        out += textwrap.wrap(line, LINE_CHARS, break_long_words=False, break_on_hyphens=False) or []
    return out or [text.strip()]


def _vtt_escape(line: str) -> str:
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _timed(cues: Sequence[Cue]) -> list[tuple[float, float, list[str]]]:
    """Cues in order, at least MIN_CUE_S long, never overlapping ('-->' cannot appear in any text)."""
    timed = []
    for cue in cues:
        if cue.end_s - cue.start_s < MIN_CUE_S:
            continue
        lines = [line.replace("-->", "->") for line in _lines(cue.text)]
        timed.append((cue.start_s, cue.end_s, lines))
    return timed


def format_srt(cues: Sequence[Cue]) -> str:
    blocks = [f"{n}\n{_clock(start, ',')} --> {_clock(end, ',')}\n" + "\n".join(lines)
              for n, (start, end, lines) in enumerate(_timed(cues), start=1)]
    return "\n\n".join(blocks) + "\n"


def format_vtt(cues: Sequence[Cue]) -> str:
    blocks = [f"{_clock(start, '.')} --> {_clock(end, '.')}\n" + "\n".join(_vtt_escape(x) for x in lines)
              for start, end, lines in _timed(cues)]
    return "WEBVTT\n\n" + "\n\n".join(blocks) + "\n"


def write_subtitles(path: Path, cues: Sequence[Cue], fmt: str) -> Path:
    """Write ``cues`` to ``path`` (suffix replaced by the format's); returns the path written."""
    target = Path(path).with_suffix(f".{fmt}")
    text = format_srt(cues) if fmt == "srt" else format_vtt(cues)
    target.write_text(text, encoding="utf-8")
    return target
