import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renderer.errors import TextError
from renderer.text import detect_language, normalize, split_languages

EN_GOLDEN = [
    ("Mr. Smith paid $12.50 for 3 apples on May 5th, 1984.",
     ".Mr Smith paid twelve dollars and fifty cents for three apples on May fifth, nineteen eighty-four."),
    ("It was 3:30 p.m. and 45% of the 1,200 guests had left.",
     "It was three thirty P M and forty-five percent of the twelve hundred guests had left."),
    ("Dr. Jones lives at 221 Baker St. with St. John's cat, e.g. Tom, etc.",
     ".Doctor Jones lives at two hundred twenty-one Baker Street. with Saint John's cat, for example Tom, etc."),
    ("\u201cDon't go,\u201d she whispered \u2014 \u201cit's 5 km away!\u201d",
     "Don't go, she whispered it's five kilometers away!"),
    ("The price rose from \u00a33 to $1.5 million in 2005.",
     "The price rose from three pounds to one point five million dollars in two thousand five."),
    ("He ran 10 km in 1 hour at -5\u00b0C.", "He ran ten kilometers in one hour at negative five degrees celsius."),
    ("The FBI and NASA met at 10:00 on the 21st.", "The F B I and N A S A met at ten o'clock on the twenty-first."),
    ("I live on Baker St. The house is red.", "I live on Baker Street. The house is red."),
    ("Wait... what?! No!!", "Wait. what? No!"),
    ("It cost $0.99, about 3/4 of a 2.5 kg bag.",
     "It cost ninety-nine cents, about three fourths of a two point five kilograms bag."),
    ("Version 2.0.1 shipped; call 007.", "Version two point zero point one shipped, call seven."),
    ("Caf\u00e9 na\u00efve fa\u00e7ade", "Cafe naive facade"),
    ("In the 1990s and the '60s, pages 10-20.", "In the nineteen nineties and the sixties, pages ten to twenty."),
    ("On 2024-03-05 call 555-123-4567.",
     "On March fifth, twenty twenty-four call five five five, one two three, four five six seven."),
    ("He said \"hello\" in 1066.", "He said 'hello' in ten sixty-six."),
    ("What is 10 - 4? Add 2tbsp and wait 20min or 30s.",
     "What is ten minus four? Add two tablespoons and wait twenty minutes or thirty seconds."),
]  # fmt: skip

ZH_GOLDEN = [
    ("2024年3月5日下午3:30，气温-3℃。", "二零二四年三月五日下午三点半,气温零下三度."),
    ("他有2个苹果、12345个橘子……", "他有两个苹果,一万二千三百四十五个橘子…"),
    ("电话是13812345678，增长了50%！", "电话是幺三八幺二三四五六七八,增长了百分之五十!"),
    ("我用iPhone 15拍照——效果很好？", "我用i Phone十五拍照效果很好?"),
    ("「你好」，他說：“這是 OK 的。”", ".你好,他说,这是O K的."),
    ("2024-03-05，10~20人，3/4的人，5km。", "二零二四年三月五日,十到二十人,四分之三的人,五千米."),
    ("嗯，价格是3.14元，共1,000,000元", ".恩,价格是三点一四元,共一百万元"),
]


@pytest.mark.parametrize(("raw", "expected"), EN_GOLDEN)
def test_english_golden(raw: str, expected: str) -> None:
    assert normalize(raw, "en") == expected
    assert normalize(expected, "en") == expected  # idempotent


@pytest.mark.parametrize(("raw", "expected"), ZH_GOLDEN)
def test_chinese_golden(raw: str, expected: str) -> None:
    assert normalize(raw, "zh") == expected
    assert normalize(expected, "zh") == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Chapter IV", "Chapter four"), ("CHAPTER XII. The End", "Chapter twelve. The End"), ("IX", ".nine."),
     ("I. A Beginning", ".one. A Beginning"), ("Part 2", "Part two")],
)  # fmt: skip
def test_roman_numerals_in_headings(raw: str, expected: str) -> None:
    assert normalize(raw, "en", heading=True) == expected


def test_roman_numeral_i_is_a_pronoun_outside_headings() -> None:
    assert normalize("I said no.", "en") == "I said no."
    assert normalize("In chapter IV we meet him.", "en") == "In chapter four we meet him."


def test_english_text_with_cjk_name_normalises_each_part() -> None:
    assert normalize("Mr. Wang (王先生，老师) paid $5.", "en") == ".Mr Wang 王先生,老师 paid five dollars."


def test_unsupported_languages_raise_text_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TextError, match="not supported"):
        normalize("text", "xx")
    import renderer.text.g2p_ja as g2p_ja

    def missing() -> None:
        raise TextError("Japanese text needs the optional package pyopenjtalk-plus")

    monkeypatch.setattr(g2p_ja, "_openjtalk", missing)
    with pytest.raises(TextError, match="pyopenjtalk"):
        normalize("こんにちは", "ja")


def test_language_detection_and_split() -> None:
    assert detect_language("Hello there, friend.", "zh") == "en"
    assert detect_language("他说 OK 了。", "en") == "zh"
    assert detect_language("Mr. Wang (王先生) arrived early today.", "zh") == "en"
    assert detect_language("1234 ...", "zh") == "zh"
    assert detect_language("こんにちは世界", "zh") == "ja"
    spans = split_languages("2024年我用iPhone 15拍照，很好。", "zh")
    assert [(s.language, s.text) for s in spans] == [("zh", "2024年我用"), ("en", "iPhone 15"), ("zh", "拍照，很好。")]
    text = "He met 王小明 in Beijing."
    assert "".join(s.text for s in split_languages(text, "en")) == text
    assert [s.language for s in split_languages(text, "en")] == ["en", "zh", "en"]


# derandomized: the same 300 examples in every run (CI cannot fail on a new draw); cases found while
# exploring with random draws are pinned below
@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(max_size=200))
def test_property_normalisation_is_idempotent(text: str) -> None:
    for language in ("en", "zh"):
        once = normalize(text, language)
        assert normalize(once, language) == once


@pytest.mark.parametrize(("text", "language"), [
    ("AA-A", "zh"), ("AA - A", "zh"), ("Mr.A", "en"), ("ASt.", "en"), ("$。:1", "en"),
    ("zero St.", "en"), ("×.", "zh"),
])
def test_normalisation_is_idempotent_on_cases_hypothesis_found(text: str, language: str) -> None:
    once = normalize(text, language)
    assert once and normalize(once, language) == once


def test_money_with_a_comma_after_the_point_does_not_crash() -> None:
    assert "cents" in normalize("$.,1", "en")
