import logging
import sys

import pytest

from renderer.errors import TextError
from renderer.text import TextFrontend, model_text
from renderer.text.symbols import SYMBOL_TO_ID


@pytest.fixture(scope="module")
def frontend() -> TextFrontend:
    return TextFrontend()


# (raw text, language, model text, phone ids) — pinned end to end.
GOLDEN = [
    ("Mr. Smith paid $12.50 on May 5th.", "en",
     "Mr Smith paid twelve dollars and fifty cents on May fifth.",
     [63, 55, 75, 80, 38, 75, 63, 55, 81, 73, 42, 26, 80, 91, 35, 62, 90, 26, 7, 62, 38, 93, 12, 64, 26, 49, 55, 49,
      80, 57, 75, 35, 64, 80, 75, 7, 64, 63, 42, 49, 55, 49, 81, 3]),
    ("“Don't go,” she said.", "en", "Don't go, she said.",
     [26, 68, 64, 80, 50, 68, 1, 76, 58, 75, 35, 26, 3]),
    ("2024年3月5日，气温-3℃。", "zh", "二零二四年三月五日,气温零下三度.",
     [33, 153, 224, 202, 33, 153, 250, 164, 227, 177, 250, 107, 318, 309, 316, 257, 248, 214, 1, 247, 169, 316, 140,
      224, 202, 317, 174, 250, 107, 127, 258, 3]),
    ("我用iPhone 15拍照——效果很好？", "zh", "我用i Phone十五拍照效果很好?",  # "——" is dropped, as the original does
     [316, 232, 318, 238, 22, 49, 68, 64, 251, 212, 316, 257, 245, 102, 320, 120, 317, 189, 156, 292, 158, 141,
      158, 119, 4]),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "language", "mtext", "ids"), GOLDEN)
def test_phone_id_golden(frontend: TextFrontend, raw: str, language: str, mtext: str, ids: list[int]) -> None:
    ph = frontend.phonemize(raw, language)
    assert ph.norm_text == mtext
    assert ph.phone_ids == ids
    assert [SYMBOL_TO_ID[p] for p in ph.phones] == ids
    assert ph.unknown == 0
    if ph.word2ph is not None:
        assert len(ph.word2ph) == len(ph.norm_text) and sum(ph.word2ph) == len(ph.phones)


def test_word2ph_only_when_chinese_present(frontend: TextFrontend) -> None:
    assert frontend.phonemize("A plain English sentence.", "en").word2ph is None
    zh = frontend.phonemize("今天天气很好。", "zh")
    assert zh.word2ph == [2, 2, 2, 2, 2, 2, 1] and zh.g2p == "pypinyin"
    mixed = frontend.phonemize("He met 王小明 in Beijing yesterday.", "en")
    assert mixed.word2ph is not None and sum(mixed.word2ph) == len(mixed.phones)
    assert [s.language for s in mixed.segments] == ["en", "zh", "en"]
    assert mixed.g2p == "pypinyin"


def test_upstream_guards(frontend: TextFrontend) -> None:
    # final period added, a short first clause gets a leading '.', very short texts are padded
    assert model_text("你好,世界", "zh") == ".你好,世界."
    assert model_text("The night was dark and cold", "en") == "The night was dark and cold."
    assert model_text("Oh, no", "en") == ".Oh, no."
    yes = frontend.phonemize("Yes", "en")
    assert yes.norm_text == ".Yes." and yes.phones == [".", "Y", "EH1", "S", "."]
    hao = frontend.phonemize("好", "zh")
    assert hao.phones == [".", "h", "ao3", "."]
    ok = frontend.phonemize("He said hello", "en")
    assert ok.norm_text == "He said hello."
    assert frontend.phonemize("Stop!!! Now???", "en").norm_text == "Stop! Now?"


def test_punctuation_only_is_refused(frontend: TextFrontend) -> None:
    with pytest.raises(TextError, match="nothing to speak"):
        frontend.phonemize("……！？", "zh")
    with pytest.raises(TextError):
        frontend.phonemize(" - * - ", "en")


def test_japanese_without_pyopenjtalk_is_refused_with_a_reason(
    frontend: TextFrontend, monkeypatch: pytest.MonkeyPatch
) -> None:
    import renderer.text.g2p_ja as g2p_ja

    def missing() -> None:
        raise TextError("Japanese text needs the optional package pyopenjtalk-plus")

    monkeypatch.setattr(g2p_ja, "_openjtalk", missing)
    with pytest.raises(TextError, match="pyopenjtalk"):
        frontend.phonemize("こんにちは", "ja")
    with pytest.raises(TextError, match="nothing to speak"):
        frontend.phonemize("こんにちは", "en")  # only a Japanese word, which cannot be read here
    # English text with a Japanese word still works: the word is skipped with a warning
    assert frontend.phonemize("He said こんにちは to me.", "en").phones[:5] == ["HH", "IY1", "S", "EH1", "D"]


def test_lexicon_replacement_and_phones() -> None:
    fe = TextFrontend(lexicon={"GPT-SoVITS": "G P T so vits", "Hermione": "/HH ER0 M AY1 AH0 N IY0/", "行": "/x ing2/"})
    ph = fe.phonemize("Hermione read GPT-SoVITS.", "en")
    assert ph.phones[:8] == ["HH", "ER0", "M", "AY1", "AH0", "N", "IY0", "R"]
    assert "so vits" in ph.norm_text
    zh = fe.phonemize("银行很大。", "zh")
    assert zh.phones[2:4] == ["x", "ing2"]
    # entries match raw text and normalised text alike
    fe2 = TextFrontend(lexicon={"Doctor": "Doc", "$5": "five bucks"})
    assert fe2.phonemize("Dr. Who paid $5.", "en").norm_text == "Doc Who paid five bucks."
    with pytest.raises(TextError, match="unknown phone"):
        TextFrontend(lexicon={"word": "/NOT A PHONE/"})


def test_unknown_phones_are_counted_and_logged(
    frontend: TextFrontend, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    normalize_module = sys.modules["renderer.text.normalize"]  # the package re-exports a function of that name
    monkeypatch.setattr(normalize_module, "is_phone_group", lambda group: True)  # let a bad phone through
    with caplog.at_level(logging.WARNING, logger="renderer.text"):
        ph = frontend.phonemize("{Z XX P} {Z XX P} {Z XX P} {Z XX P}.", "en")
    assert ph.unknown == 4 and ph.phone_ids.count(86) == 4
    assert "unknown phone" in caplog.text


def test_bert_features_zero_for_english_without_bert_folder(frontend: TextFrontend) -> None:
    ph = frontend.phonemize("No BERT is needed for English.", "en")
    (feat,) = frontend.bert_features([ph])
    assert feat.shape == (1024, len(ph.phone_ids)) and not feat.any()
    with pytest.raises(TextError, match="BERT"):
        frontend.bert_features([frontend.phonemize("中文需要特征。", "zh")])
