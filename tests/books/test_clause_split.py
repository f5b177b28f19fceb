"""Long sentences are cut at their best clause boundary: fewer chunks start in the middle of a clause.

Both strategies are run here on the public corpus (and this project's books), on the prose paragraphs each
book's plan would speak; the shares are printed (``pytest -s``) and the new one must be lower.
"""

from __future__ import annotations

import pytest

from renderer.text import Block, ChunkingOptions, chunk_blocks
from renderer.text.chunking import starts_mid_clause
from tests.books.plans import OWN_BOOKS, SHARED_BOOKS, book

BOOKS = SHARED_BOOKS + OWN_BOOKS


def _prose(name: str) -> list[tuple[str, list[Block]]]:
    b = book(name)
    language = b.metadata.language.split("-")[0].lower()
    chapters = []
    for chapter in b.readable_chapters:
        blocks = [Block("paragraph", x.text) for x in chapter.blocks
                  if x.kind in ("paragraph", "note") and "\n" not in x.text and not x.speaker]  # fmt: skip
        if blocks:
            chapters.append((language, blocks))
    return chapters


def mid_clause_share(name: str, strategy: str) -> tuple[int, int]:
    """(chunks that start mid-clause, all chunks) of the book's prose with a long-sentence strategy."""
    options = ChunkingOptions(normalize=False, long_sentences=strategy)
    mid = total = 0
    for language, blocks in _prose(name):
        chunks = chunk_blocks(blocks, language, options)
        total += len(chunks)
        for before, chunk in zip(chunks, chunks[1:], strict=False):
            mid += before.block_index == chunk.block_index and starts_mid_clause(before.text, chunk.text)
    return mid, total


def test_fewer_chunks_start_mid_clause_than_with_the_fill_strategy(capsys: pytest.CaptureFixture[str]) -> None:
    rows = []
    for name in BOOKS:
        old, new = mid_clause_share(name, "fill"), mid_clause_share(name, "clause")
        rows.append((name, old, new))
        assert new[0] / max(new[1], 1) <= old[0] / max(old[1], 1), (name, old, new)
    with capsys.disabled():
        print("\nchunks starting mid-clause (prose paragraphs): fill -> clause")
        for name, (o_mid, o_all), (n_mid, n_all) in rows:
            print(f"  {name:40s} {o_mid:4d}/{o_all:5d} = {o_mid / max(o_all, 1):6.1%}  ->  "
                  f"{n_mid:4d}/{n_all:5d} = {n_mid / max(n_all, 1):6.1%}")
    old_total = sum(o[0] for _, o, _ in rows) / sum(o[1] for _, o, _ in rows)
    new_total = sum(n[0] for _, _, n in rows) / sum(n[1] for _, _, n in rows)
    assert new_total < old_total


def test_mid_clause_definition() -> None:
    assert not starts_mid_clause("It was late.", "The rain fell.")
    assert not starts_mid_clause("He waited;", "she did not come.")
    assert not starts_mid_clause("He waited,", "and she did not come.")
    assert starts_mid_clause("He waited for the man,", "the king of Spain, to come.")
    assert starts_mid_clause("He waited for the", "man to come.")
    assert not starts_mid_clause("他等了很久，", "她没有来。")
