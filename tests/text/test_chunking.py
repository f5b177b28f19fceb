import dataclasses
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from renderer.errors import OptionsError
from renderer.text import Block, Boundary, ChunkingOptions, chunk_blocks, normalize, split_sentences
from renderer.text.chunking import BERT_MAX_CHARS


def _squash(s: str) -> str:
    return re.sub(r"\s+", "", s)


def test_sentence_split_respects_abbreviations_decimals_quotes_and_ellipses() -> None:
    text = (
        '"Hello!" she said. Mr. Smith paid $3.50 for it... and left. J. R. R. Tolkien wrote it, e.g. this. '
        "Wait... Then he came. 他说：“你好！”今天很好。"
    )
    assert split_sentences(text) == [
        '"Hello!" she said. ',
        "Mr. Smith paid $3.50 for it... and left. ",
        "J. R. R. Tolkien wrote it, e.g. this. ",
        "Wait... ",
        "Then he came. ",
        "他说：“你好！”",
        "今天很好。",
    ]
    assert "".join(split_sentences(text)) == text


def test_chunk_boundaries_golden() -> None:
    blocks = [
        Block("heading", "Chapter IV"),
        Block("paragraph", "It was late. The rain, which had fallen since noon, kept falling on the town. "
                           "Mr. Smith closed the shop at 6 p.m. and walked home alone."),
        Block("scene_break", "* * *"),
        Block("paragraph", "Yes."),
        Block("paragraph", "他说：“你好！”今天是2024年3月5日。我们一起去公园吧？好的。"),
    ]  # fmt: skip
    chunks = chunk_blocks(blocks, "en")
    got = [(c.boundary, c.language, c.block_index, c.text, c.normalized) for c in chunks]
    assert got == [
        (Boundary.HEADING, "en", 0, "Chapter IV", "Chapter four"),
        (Boundary.SENTENCE, "en", 1, "It was late. The rain, which had fallen since noon, kept falling on the town.",
         "It was late. The rain, which had fallen since noon, kept falling on the town."),
        (Boundary.SCENE_BREAK, "en", 1, "Mr. Smith closed the shop at 6 p.m. and walked home alone.",
         "Mr Smith closed the shop at six P M and walked home alone."),
        (Boundary.PARAGRAPH, "en", 3, "Yes.", "Yes."),
        (Boundary.SENTENCE, "zh", 4, "他说：“你好！”今天是2024年3月5日。", "他说,你好!今天是二零二四年三月五日."),
        (Boundary.CHAPTER_END, "zh", 4, "我们一起去公园吧？好的。", "我们一起去公园吧?好的."),
    ]  # fmt: skip


def test_long_sentences_split_at_clauses_within_limits() -> None:
    o = ChunkingOptions(min_words=3, max_words=14)
    text = ("First part of a long sentence goes here, second part follows right after it, "
            "third part comes later on; and the last part ends the whole thing.")  # fmt: skip
    chunks = chunk_blocks([Block("paragraph", text)], "en", o)
    # The semicolon is the strongest cut; the first half is cut again at a comma, in balanced pieces.
    assert [c.text for c in chunks] == [
        "First part of a long sentence goes here,",
        "second part follows right after it, third part comes later on;",
        "and the last part ends the whole thing.",
    ]
    assert [c.boundary for c in chunks] == [Boundary.CLAUSE, Boundary.CLAUSE, Boundary.CHAPTER_END]
    # The older 'fill' strategy packs each chunk as full as it goes.
    fill = chunk_blocks([Block("paragraph", text)], "en", dataclasses.replace(o, long_sentences="fill"))
    assert [c.text for c in fill] == [
        "First part of a long sentence goes here, second part follows right after it,",
        "third part comes later on; and the last part ends the whole thing.",
    ]
    assert all(len(c.text.split()) <= 14 for c in chunks)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_5000_characters_without_punctuation_still_chunk(language: str) -> None:
    text = " ".join(["word"] * 1000) if language == "en" else "我们今天去公园散步看花" * 500
    o = ChunkingOptions()
    chunks = chunk_blocks([Block("paragraph", text)], language, o)
    assert _squash("".join(c.text for c in chunks)) == _squash(text)
    for c in chunks:
        assert len(c.text) <= o.max_chars <= BERT_MAX_CHARS
        if language == "en":
            assert len(c.text.split()) <= o.max_words
        else:
            assert len(c.text) <= o.max_cjk_chars
    assert chunks[-1].boundary is Boundary.CHAPTER_END
    assert {c.boundary for c in chunks[:-1]} == {Boundary.CLAUSE}  # cut inside one sentence


def test_space_less_latin_run_is_cut_at_fixed_length() -> None:
    chunks = chunk_blocks([Block("paragraph", "x" * 5000)], "en")
    assert "".join(c.text for c in chunks) == "x" * 5000
    assert max(len(c.text) for c in chunks) <= ChunkingOptions().max_chars


def test_short_sentences_merge_and_punctuation_never_stands_alone() -> None:
    chunks = chunk_blocks([Block("paragraph", "Oh. Ah. I see. Well then, shall we go now, my friend? ... !")], "en")
    assert len(chunks) == 1
    assert chunks[0].text == "Oh. Ah. I see. Well then, shall we go now, my friend? ... !"
    assert chunk_blocks([Block("paragraph", "* * * …")], "en") == []


def test_any_block_like_object_and_note_blocks_are_accepted() -> None:
    @dataclasses.dataclass(frozen=True)
    class BookBlock:  # the shape of jobs.books.Block
        kind: str
        text: str

    chunks = chunk_blocks([BookBlock("note", "A footnote that is read like a paragraph of the book.")], "en")
    assert [(c.boundary, c.text) for c in chunks] == [
        (Boundary.CHAPTER_END, "A footnote that is read like a paragraph of the book.")
    ]
    assert chunk_blocks([], "en") == []


def test_options_are_validated() -> None:
    with pytest.raises(OptionsError):
        ChunkingOptions(min_words=10, max_words=5)
    with pytest.raises(OptionsError):
        ChunkingOptions(max_chars=600)
    with pytest.raises(OptionsError):
        ChunkingOptions(min_cjk_chars=0)


WORDS = st.sampled_from(
    ["the", "cat", "Mr.", "Dr.", "sat", "on", "mat", "3", "42", "1984", "3.5", "$5", "10%", "e.g.", "etc.", "I",
     "John", "Paris", "and", "said", "quickly", "FBI", "walked", "home", "today"]
)  # fmt: skip
PUNCT = st.sampled_from(["", "", "", ",", ".", "!", "?", ";", "...", ".\u201d", ":"])
ZH_WORDS = st.sampled_from(["我们", "今天", "公园", "2024年", "3个", "他说", "很好", "iPhone", "50%", "散步"])
ZH_PUNCT = st.sampled_from(["", "", "，", "。", "！", "？", "、", "……"])


@st.composite
def english_paragraph(draw: st.DrawFn) -> str:
    n = draw(st.integers(1, 80))
    return " ".join(draw(WORDS) + draw(PUNCT) for _ in range(n))


@st.composite
def chinese_paragraph(draw: st.DrawFn) -> str:
    n = draw(st.integers(1, 60))
    return "".join(draw(ZH_WORDS) + draw(ZH_PUNCT) for _ in range(n))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(english_paragraph(), st.integers(1, 10), st.integers(12, 40))
def test_property_english_chunks_cover_input_exactly(text: str, min_words: int, max_words: int) -> None:
    o = ChunkingOptions(min_words=min_words, max_words=max_words)
    chunks = chunk_blocks([Block("paragraph", text)], "en", o)
    assert _squash("".join(c.text for c in chunks)) == _squash(text)
    assert _squash("".join(c.normalized for c in chunks)) == _squash(normalize(text, "en"))
    assert all(len(c.text.split()) <= max_words for c in chunks)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chinese_paragraph(), st.integers(5, 20), st.integers(20, 80))
def test_property_chinese_chunks_cover_input_exactly(text: str, min_cjk: int, max_cjk: int) -> None:
    o = ChunkingOptions(min_cjk_chars=min_cjk, max_cjk_chars=max_cjk)
    chunks = chunk_blocks([Block("paragraph", text)], "zh", o)
    assert _squash("".join(c.text for c in chunks)) == _squash(text)
    for c in chunks:
        assert c.normalized == normalize(c.text, c.language)
    if all(c.language == "zh" for c in chunks):  # a chunk that is mostly English is normalised as English
        assert _squash("".join(c.normalized for c in chunks)) == _squash(normalize(text, "zh"))


@settings(max_examples=40, deadline=None)
@given(st.text(min_size=0, max_size=300))
def test_property_arbitrary_text_never_loses_speakable_characters(text: str) -> None:
    chunks = chunk_blocks([Block("paragraph", text)], "en", ChunkingOptions(normalize=False))
    joined = "".join(c.text for c in chunks)
    assert [ch for ch in _squash(joined) if ch.isalnum()] == [ch for ch in _squash(text) if ch.isalnum()]
