"""Books: read EPUB 2/3, plain text and Markdown into chapters of blocks (see :func:`read_book`)."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from jobs.books.model import Block, Book, BookMetadata, Chapter, MissingPart, ReadOptions, TocEntry
from jobs.errors import BookError
from renderer.files import sha256_file

__all__ = [
    "Block", "Book", "BookError", "BookMetadata", "Chapter", "MissingPart", "ReadOptions", "TocEntry", "read_book",
]  # fmt: skip

SUFFIXES = (".epub", ".txt", ".md", ".markdown")


def read_book(path: str | Path, options: ReadOptions = ReadOptions()) -> Book:
    """Read a book file into chapters.

    Supports .epub (EPUB 2 and 3), .txt and .md. Raises :class:`BookError` (never another exception) when the
    file cannot be read; recoverable damage (one missing or malformed file) becomes ``Book.warnings``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise BookError(path, f"unsupported book format {suffix or '(no extension)'!r}", "use .epub, .txt or .md")
    if not path.is_file():
        raise BookError(path, "file not found")
    warnings: list[str] = []
    missing: list[MissingPart] = []
    try:
        if suffix == ".epub":
            from jobs.books.epub import read_epub

            metadata, chapters, toc = read_epub(path, options, warnings, missing)
            fmt = "epub"
        else:
            from jobs.books.markdown import read_markdown
            from jobs.books.plaintext import read_text

            reader = read_text if suffix == ".txt" else read_markdown
            metadata, chapters = reader(path, options, warnings)
            toc = [TocEntry(0, c.title, c.href, c.index, True) for c in chapters]
            fmt = suffix.lstrip(".")
        source_hash = sha256_file(path)
    except BookError:
        raise
    except (OSError, RecursionError, MemoryError, ValueError, KeyError, LookupError, etree.LxmlError) as exc:
        # A library bug or an exotic file must still end as a clear message, not a traceback.
        raise BookError(path, f"cannot read the book: {type(exc).__name__}: {exc}") from exc
    return Book(path, metadata, chapters, warnings, source_hash, toc=toc, format=fmt, missing=missing, options=options)
