"""Text rough edges (issue 24 item 8) and the offline guarantee of the frontend."""

from __future__ import annotations

import socket

import pytest

from renderer.text import TextFrontend, normalize, split_languages
from renderer.text.normalize import is_speakable, strip_invisible


def test_ansi_escape_sequences_are_never_read() -> None:
    raw = "\x1b[31mred\x1b[0m, \x1b]0;title\x07zero \x1b[2Kmeters"
    assert strip_invisible(raw) == "red, zero meters"
    assert normalize("It was \x1b[1;31mred\x1b[0m.", "en") == "It was red."


def test_format_and_control_characters_are_removed() -> None:
    raw = "abc\u202edef\u200b\u2066x\u2069\u00ad\ufeffy\x07z"
    assert strip_invisible(raw) == "abcdefxyz"
    assert normalize("\u202eHello\u202c world", "en") == "Hello world"
    assert normalize("你\u200d好\u202e。", "zh") == "你好."


def test_emoji_only_text_has_nothing_to_speak() -> None:
    # The planner reports such paragraphs as skipped (see tests/jobs/test_plan_notices.py).
    assert not is_speakable(normalize("😀🎉👍", "en"))
    assert is_speakable(normalize("Great 👍", "en"))


def test_mixed_paragraph_is_split_per_span() -> None:
    spans = split_languages("我们 today 去了東京タワー", "zh")
    assert [(s.language, s.text) for s in spans] == [
        ("zh", "我们 "),
        ("en", "today "),
        ("zh", "去了"),
        ("ja", "東京タワー"),
    ]
    assert [s.language for s in split_languages("私は東京に行きました。", "ja")] == ["ja"]


def test_mixed_paragraph_phonemises_each_span_in_its_language() -> None:
    pytest.importorskip("pyopenjtalk")
    ph = TextFrontend().phonemize("我们 today 去了東京タワー", "zh")
    assert [s.language for s in ph.segments] == ["zh", "en", "zh", "ja"]
    assert ph.segments[0].phones[:4] == ("w", "o3", "m", "en5")


def test_frontend_runs_with_networking_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing is downloaded: every resource (dictionaries, neural G2P weights, homographs, word
    frequencies for compound splitting, jieba, pypinyin) comes from installed packages."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the text frontend tried to open a network connection")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    from renderer.text import g2p_en, g2p_en_neural

    g2p_en.lookup.cache_clear()
    g2p_en_neural.predict.cache_clear()
    fe = TextFrontend()
    en = fe.phonemize("Grimbleton's zorblaxian résumé cost $5 in 1066; they lead.", "en")
    assert "UNK" not in en.phones and len(en.phones) > 20
    zh = fe.phonemize("我们在2024年3月5日去公园，花了￥88。", "zh")
    assert zh.word2ph is not None and sum(zh.word2ph) == len(zh.phones)
