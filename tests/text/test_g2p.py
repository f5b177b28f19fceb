import pytest

from renderer.text.g2p_en import g2p_en, lookup
from renderer.text.g2p_zh import g2p_zh, pinyin_to_phones
from renderer.text.symbols import ARPABET, SYMBOL_TO_ID

ZH_GOLDEN = [
    ("你好世界.", "n i2 h ao3 sh ir4 j ie4 ."),  # third-tone sandhi
    ("我们一起看一看.", "w o3 m en5 y i4 q i3 k an4 y i5 k an4 ."),  # 们 neutral, 一 sandhi, 看一看
    ("不要怕,不对.", "b u2 y ao4 p a4 , b u2 d ui4 ."),  # 不 before tone 4
    ("一个人,第一天,一样.", "y i2 g e5 r en2 , d i4 y i1 t ian1 , y i2 y ang4 ."),
    ("小孩儿的花儿.", "x iao3 h ai2 EE er2 d e5 h ua1 EE er2 ."),  # 儿 keeps its syllable, takes the tone
    ("展览馆.", "zh an2 l an2 g uan3 ."),
    ("这是好的吧?", "zh e4 sh ir4 h ao3 d e5 b a5 ?"),
]


@pytest.mark.parametrize(("text", "phones"), ZH_GOLDEN)
def test_chinese_g2p_golden(text: str, phones: str) -> None:
    got, word2ph = g2p_zh(text)
    assert " ".join(got) == phones
    assert len(word2ph) == len(text) and sum(word2ph) == len(got)
    assert all(n == (1 if ch in ",.?!…-" else 2) for ch, n in zip(text, word2ph, strict=True))
    assert all(p in SYMBOL_TO_ID for p in got)


def test_pinyin_mapping_covers_zero_initials_and_special_finals() -> None:
    assert pinyin_to_phones("a") == ("AA", "a")
    assert pinyin_to_phones("er") == ("EE", "er")
    assert pinyin_to_phones("ou") == ("OO", "ou")
    assert pinyin_to_phones("yan") == ("y", "En")
    assert pinyin_to_phones("ye") == ("y", "E")
    assert pinyin_to_phones("yuan") == ("y", "van")
    assert pinyin_to_phones("zhi") == ("zh", "ir")
    assert pinyin_to_phones("si") == ("s", "i0")
    assert pinyin_to_phones("qu") == ("q", "v")
    assert pinyin_to_phones("jue") == ("j", "ve")
    assert pinyin_to_phones("lv") == ("l", "v")
    assert pinyin_to_phones("wei") == ("w", "ei")


def test_neutral_tone_words_and_not_erhua() -> None:
    assert g2p_zh("东西.")[0][-2] == "i5"
    assert g2p_zh("女儿.")[0][:4] == ["n", "v3", "EE", "er2"]


EN_GOLDEN = [
    ("Hello, world.", "HH AH0 L OW1 , W ER1 L D ."),
    ("The agent read the record to record it.",
     "DH AH0 EY1 JH AH0 N T R EH1 D DH AH0 R EH1 K ER0 D T UW1 R IH0 K AO1 R D IH1 T ."),
    ("I will read it. I have read it.", "AY1 W IH1 L R IY1 D IH1 T . AY1 HH AE1 V R EH1 D IH1 T ."),
    ("It's John's cat.", "IH1 T S JH AA1 N Z K AE1 T ."),
    ("A well-known tear in the wind.", "AH0 W EH1 L N OW1 N T EH1 R IH0 N DH AH0 W IH1 N D ."),
    ("twenty-four", "T W EH1 N T IY0 F AO2 R"),  # the hyphenated dictionary entry keeps its stress
]  # fmt: skip


@pytest.mark.parametrize(("text", "phones"), EN_GOLDEN)
def test_english_g2p_golden(text: str, phones: str) -> None:
    assert " ".join(g2p_en(text)) == phones


def test_homographs_follow_context() -> None:
    assert g2p_en("they live here")[2:5] == ["L", "IH1", "V"]
    assert g2p_en("a live show")[1:4] == ["L", "AY1", "V"]
    assert g2p_en("close to home")[:4] == ["K", "L", "OW1", "S"]
    assert g2p_en("close the door")[:4] == ["K", "L", "OW1", "Z"]
    assert g2p_en("to wind the clock")[2:6] == ["W", "AY1", "N", "D"]
    assert g2p_en("they lead the way")[2:5] == ["L", "IY1", "D"]
    assert g2p_en("a lead pipe")[1:4] == ["L", "EH1", "D"]
    assert g2p_en("my résumé")[2:] == ["R", "EH1", "Z", "AH0", "M", "EY2"]
    assert g2p_en("we resume work")[2:7] == ["R", "IY0", "Z", "UW1", "M"]


def test_unknown_words_use_the_neural_model_and_the_originals_fallbacks() -> None:
    for word in ("zorblax", "grimbleton", "blorptastic"):
        phones = lookup(word)
        assert phones and all(p in ARPABET for p in phones), (word, phones)
    assert lookup("zyx") == lookup("z") + lookup("y") + lookup("x")  # up to three letters: spelled
    assert lookup("zorblax's") == lookup("zorblax") + ("AH0", "Z")  # possessive after /S/
    assert lookup("saoirse", title=True) != lookup("saoirse") or lookup("saoirse")  # name list for Title case
    assert lookup("blackbirdhouse")[:3] == ("B", "L", "AE1")  # split into known words first
