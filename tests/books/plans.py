"""Books read and planned once per test session (planning with the real text frontend takes seconds)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from jobs.books import Book, ReadOptions, read_book
from jobs.planner import BookPlan, VoiceRef, build_plan
from tests.books import owncorpus
from tests.paths import shared_dir

SHARED = shared_dir() / "corpus"
SHARED_MANIFEST = json.loads((SHARED / "manifest.json").read_text()) if SHARED.is_dir() else []
SHARED_BOOKS = [b["file"] for b in SHARED_MANIFEST if not b.get("malformed") and (SHARED / b["file"]).is_file()]
OWN_BOOKS = [b["file"] for b in owncorpus.MANIFEST]
# Books the manifest itself calls poetry (its "kind"), whatever the set holds.
POETRY = [b["file"] for b in SHARED_MANIFEST if b["file"] in SHARED_BOOKS and "poetry" in b.get("kind", "").lower()]


@cache
def _own_dir() -> Path:
    import tempfile

    return Path(tempfile.mkdtemp(prefix="own-corpus-"))


def path_of(name: str) -> Path:
    """A book of either corpus by file name (this project's books are built on first use)."""
    if name in OWN_BOOKS:
        built = _own_dir() / name
        return built if built.is_file() else owncorpus.build(name, _own_dir())
    return SHARED / name


@cache
def book(name: str, options: ReadOptions = ReadOptions()) -> Book:
    return read_book(path_of(name), options)


@cache
def plan(name: str, options: ReadOptions = ReadOptions()) -> BookPlan:
    return build_plan(book(name, options), VoiceRef("v", "voice-id"), {"seed": 0}, "engine-1")
