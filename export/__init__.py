"""Chunk audio → chapter files: trim, gain-match, pauses, crossfades, loudness, encode, reports.

No torch and no database here: the input is a chapter manifest of audio files.
"""

from export.book import export_book
from export.errors import EncoderUnavailableError, ExportError
from export.model import BookInfo, ChapterManifest, ChunkAudio
from export.options import PRESETS, ExportOptions, PauseOptions
from export.report import ExportReport

__all__ = [
    "PRESETS",
    "BookInfo",
    "ChapterManifest",
    "ChunkAudio",
    "EncoderUnavailableError",
    "ExportError",
    "ExportOptions",
    "ExportReport",
    "PauseOptions",
    "export_book",
]
