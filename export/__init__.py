"""Chunk audio → chapter files: trim, gain-match, pauses, crossfades, loudness, encode, reports.

No torch and no database here: the input is a chapter manifest of audio files::

    report = export_book(BookInfo("Title", "Author", "en", cover=jpeg_bytes),
                         [ChapterManifest(1, "Chapter One", [ChunkAudio(path, "sentence", text, key, n_phones), ...])],
                         out_dir, ExportOptions(format="mp3", preset="acx"))
    report.passed, report.files[0].compliance.failed_rules, report.coverage.suspicious

Pipeline per chapter (all streaming, bounded memory): ``assemble`` (pass 1: trim, gain-match, pauses,
equal-power fades) → ``master`` (pass 2: BS.1770 loudness — moved when a preset's RMS window (ACX) would be missed —
soxr resampling, true-peak limiter, room tone)
→ ``encode`` + ``tags`` → ``verify`` (decode again, measure, check the preset) → ``report``; then the
listener outputs (``subtitles``, ``readalong``: sentence ``cues`` from the chunks' places). ``publish`` moves
a staged export into the output folder, removing what earlier exports wrote and this one did not.
"""

from export.book import export_book
from export.errors import DiskFullError, EncoderUnavailableError, ExportError, ReadAlongError
from export.model import BookInfo, ChapterManifest, ChunkAudio, NavMark
from export.options import PRESETS, ExportOptions, PauseOptions
from export.report import ExportReport, TakeSummary

__all__ = [
    "PRESETS",
    "BookInfo",
    "ChapterManifest",
    "ChunkAudio",
    "DiskFullError",
    "EncoderUnavailableError",
    "ExportError",
    "ExportOptions",
    "ExportReport",
    "NavMark",
    "PauseOptions",
    "ReadAlongError",
    "TakeSummary",
    "export_book",
]
