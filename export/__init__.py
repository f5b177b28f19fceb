"""Chunk audio → chapter files: trim, gain-match, pauses, crossfades, loudness, encode, reports.

No torch and no database here: the input is a chapter manifest of audio files.
"""
