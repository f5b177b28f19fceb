"""Stable, safe output file names: chapter order + sanitised title, unicode kept where it is harmless."""

from __future__ import annotations

import re
import unicodedata

_RESERVED_CHARS = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
MAX_NAME_BYTES = 120  # well under the 255-byte limit of common file systems, room for the extension


def sanitize_title(title: str, max_bytes: int = MAX_NAME_BYTES) -> str:
    """A title made safe as one path component: no separators, reserved or control characters, no leading
    dots (hidden files, "..") or trailing dots/spaces (Windows), NFC-normalised, cut at a character
    boundary to ``max_bytes`` of UTF-8. May return "" (callers fall back to a generic name)."""
    text = re.sub(r"\s", " ", unicodedata.normalize("NFC", title))  # tabs/newlines are word breaks
    # Drop format/control/unassigned code points (bidi overrides, zero-width joiners at the edges, ...).
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
    text = _RESERVED_CHARS.sub(" ", text)
    text = re.sub(r"\s+", " ", text).strip(" .")
    encoded = text.encode("utf-8")
    if len(encoded) > max_bytes:
        text = encoded[:max_bytes].decode("utf-8", errors="ignore").rstrip(" .")
    if text.split(".")[0].upper() in _WINDOWS_RESERVED:
        text = "_" + text
    return text


def chapter_filename(index: int, total: int, title: str, extension: str) -> str:
    """``"03 - Title.mp3"``: zero-padded order first so names sort like the book; same input, same name."""
    width = max(2, len(str(total)))
    clean = sanitize_title(title) or f"Chapter {index}"
    return f"{index:0{width}d} - {clean}.{extension}"


def book_filename(title: str, extension: str) -> str:
    return f"{sanitize_title(title) or 'Audiobook'}.{extension}"
