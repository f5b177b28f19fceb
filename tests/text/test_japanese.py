"""Japanese G2P (optional extra): runs only where pyopenjtalk is installed."""

import pytest

pytest.importorskip("pyopenjtalk", reason="optional Japanese G2P (pip install pyopenjtalk-plus) is not installed")

from renderer.text import Block, TextFrontend, chunk_blocks, normalize  # noqa: E402
from renderer.text.g2p_ja import g2p_ja, prosody_phones  # noqa: E402
from renderer.text.symbols import SYMBOL_TO_ID  # noqa: E402


def test_prosody_marks_match_the_reference_example() -> None:
    # the ESPnet docstring example the original cites: ^ k o [ N n i ch i w a $ (start/end marks dropped)
    assert prosody_phones("こんにちは") == ["k", "o", "[", "N", "n", "i", "ch", "i", "w", "a"]


def test_accent_phrase_border_becomes_unk_and_marks_map() -> None:
    phones = g2p_ja(normalize("今日はいい天気ですね！東京タワーに行きましょう。", "ja"))
    assert phones[:7] == ["ky", "o", "]", "o", "w", "a", "UNK"]
    assert "!" in phones and phones[-1] == "."
    assert all(p in SYMBOL_TO_ID for p in phones)


def test_frontend_and_chunking_for_japanese() -> None:
    fe = TextFrontend()
    ph = fe.phonemize("本当？", "ja")
    assert ph.norm_text == ".本当?" and ph.g2p == "openjtalk" and ph.word2ph is None
    assert ph.phones == [".", "h", "o", "[", "N", "t", "o", "o", "?"]
    (bert,) = fe.bert_features([ph])
    assert bert.shape == (1024, 9) and not bert.any()
    chunks = chunk_blocks(
        [Block("paragraph", "今日はいい天気ですね！東京タワーに行きましょう。本当ですか？はい。")], "ja"
    )
    assert [c.language for c in chunks] == ["ja", "ja"]
    assert "".join(c.text for c in chunks) == "今日はいい天気ですね！東京タワーに行きましょう。本当ですか？はい。"
