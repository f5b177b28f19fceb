"""Chinese text normalisation: the original GPT-SoVITS steps, after our fixes for its plain mistakes.

The original frontend (``chinese2.text_normalize``) removes spaces and the marks ``——《》【】<>{}
()（）#&@“”^_|\\``, then verbalises, in this order: dates (2024年3月5日, 2024-03-05), time
ranges (9:00-17:30 = 九点至十七点三十分) and times (3:30 = 三点半), unit ranges (5%~10%),
temperatures (-12℃ = 零下十二度), units (km = 千米), arithmetic (3+5=8), powers, fractions,
percentages, mobile numbers (+86 and 1 read 幺), landlines and 400 numbers (digit by digit),
ranges (10~20 = 十到二十), negatives, version numbers (2.0.1 = 二点零点一), decimals, numbers
before measure words (2个 = 两个), numbers of three or more digits elsewhere digit by digit
(拨打110 = 幺幺零, 房间305 = 三零五, 2024 = 二零二四), other numbers by value; then ``+ - × ÷ =``
become 加 减 乘 除 等 and punctuation is mapped to the model's set (``，：；、·/`` -> ``,`` ...).

:func:`_our_fixes` first reads what the original gets plainly wrong (DEVIATIONS.md): currency
symbols (￥88 = 八十八元, $1299 = 一千二百九十九美元; the original reads $ as a pause and turns
every comma of a text with ￥ into a long pause), numbers before units it does not know
(1200公里 = 一千二百公里, not 幺二零零), "10-20人" as a range (the original: 十减二十),
1-digit months in 2024-3-5, and the minutes of a time range's end. English words inside Chinese
text are kept for the English G2P, normalised by the English rules (``iOS`` = ``i O S``).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable

from renderer.text import numbers_zh as nz
from renderer.text.symbols import PUNCTUATION

# The original's measure words: a number before one of them is read by value (2 = 两).
_QUANTIFIERS = (
    "处|台|架|枚|趟|幅|平|方|堵|间|床|株|批|项|例|列|篇|栋|注|亩|封|艘|把|目|套|段|人|所|朵|匹|张|座|回|场|尾|条|个|首|阙|"
    "阵|网|炮|顶|丘|棵|只|支|袭|辆|挑|担|颗|壳|窠|曲|墙|群|腔|砣|座|客|贯|扎|捆|刀|令|打|手|罗|坡|山|岭|江|溪|钟|队|单|双|对|"
    "出|口|头|脚|板|跳|枝|件|贴|针|线|管|名|位|身|堂|课|本|页|家|户|层|丝|毫|厘|分|钱|两|斤|担|铢|石|钧|锱|忽|(?:千|毫|微)克|"
    "毫|厘|(?:公)分|分|寸|尺|丈|里|寻|常|铺|程|(?:千|分|厘|毫|微)米|米|撮|勺|合|升|斗|石|盘|碗|碟|叠|桶|笼|盆|盒|杯|钟|斛|锅|"
    "簋|篮|盘|桶|罐|瓶|壶|卮|盏|箩|箱|煲|啖|袋|钵|年|月|日|季|刻|时|周|天|秒|分|小时|旬|纪|岁|世|更|夜|春|夏|秋|冬|代|伏|辈|"
    "丸|泡|粒|颗|幢|堆|条|根|支|道|面|片|张|颗|块|元|(?:亿|千万|百万|万|千|百)|(?:亿|千万|百万|万|千|百|美|)元|"
    "(?:亿|千万|百万|万|千|百|十|)吨|(?:亿|千万|百万|万|千|百|)块|角|毛|分"
)
# Units the original lacks, before which a long number is still a quantity (our fix).
_MORE_QUANTIFIERS = "公里|公斤|公顷|英里|英尺|平方米|立方米|千瓦|瓦|次|倍|种|届|册|字|幕|集|章|节|遍|圈|步|部|号楼"
_MEASURES = {
    "cm2": "平方厘米", "cm²": "平方厘米", "cm3": "立方厘米", "cm³": "立方厘米", "cm": "厘米", "db": "分贝",
    "ds": "毫秒", "kg": "千克", "km": "千米", "m2": "平方米", "m²": "平方米", "m³": "立方米", "m3": "立方米",
    "ml": "毫升", "mm": "毫米", "m": "米", "s": "秒", "km/h": "千米每小时",
}  # fmt: skip
_UNIT_NAMES = "|".join(sorted(map(re.escape, _MEASURES), key=len, reverse=True))
_MEASURE_RE = re.compile(r"(?<=[\d/~])(" + _UNIT_NAMES + r")(?![A-Za-z])")  # our fix: only after a number
_RANGE_UNITS = r"(?:%|°C|℃|度|摄氏度|cm2|cm²|cm3|cm³|cm|db|ds|kg|km|m2|m²|m³|m3|ml|m|mm|s)"
_CURRENCIES = {"¥": "元", "￥": "元", "$": "美元", "€": "欧元", "£": "英镑"}
_GREEK_NAMES = (
    "阿尔法 贝塔 伽玛 伽玛 德尔塔 德尔塔 艾普西龙 捷塔 依塔 西塔 西塔 艾欧塔 喀帕 拉姆达 拉姆达 缪 拗 "
    "克西 克西 欧米克伦 派 派 肉 西格玛 西格玛 西格玛 套 宇普西龙 服艾 服艾 器 普赛 普赛 欧米伽 欧米伽"
).split()
_GREEK = dict(zip("αβγΓδΔεζηθΘικλΛμνξΞοπΠρςΣστυφΦχψΨωΩ", _GREEK_NAMES, strict=True))
_POST_MAP = {"/": "每", "+": "加", "-": "减", "×": "乘", "÷": "除", "=": "等"} | {
    chr(0x2460 + i): nz.cardinal(str(i + 1)) for i in range(10)  # ① .. ⑩
} | _GREEK
_PUNCT_MAP = {
    "：": ",", "；": ",", "，": ",", "。": ".", "！": "!", "？": "?", "\n": ".", "·": ",", "、": ",", "...": "…",
    "$": ".", "/": ",", "—": "-", "~": "…", "～": "…",
}  # fmt: skip  (ASCII ":" and ";" are not in it: the original drops them, 比分3:2 = 三二)
_PUNCT_RE = re.compile("|".join(re.escape(k) for k in sorted(_PUNCT_MAP, key=len, reverse=True)))
_PUNCT_CHARS = "".join(re.escape(p) for p in PUNCTUATION)
_LATIN_RUN_RE = re.compile(r"[A-Za-z][A-Za-z'\-]*(?:\s+[A-Za-z][A-Za-z'\-]*)*")
_NUM = r"(-?)(\d+(?:\.\d+)?)"
_SPACED_MINUS = "\ue002"  # "10 - 4" while the range fix runs

Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]


@functools.lru_cache(maxsize=1)
def _t2s():  # type: ignore[no-untyped-def]
    from opencc import OpenCC

    return OpenCC("t2s")


@functools.lru_cache(maxsize=1)
def _traditional_chars() -> frozenset[str]:
    """Characters that OpenCC's t2s tables convert; text without any of them is left alone (fast path)."""
    import importlib.resources

    table = importlib.resources.files("opencc").joinpath("dictionary/TSCharacters.txt").read_text(encoding="utf-8")
    return frozenset(line.split("\t", 1)[0] for line in table.splitlines() if line and "\t" in line)


def to_simplified(text: str) -> str:
    """Traditional -> simplified Chinese (no-op for text without traditional characters)."""
    if _traditional_chars().isdisjoint(text):
        return text
    return _t2s().convert(text)  # type: ignore[no-any-return]


def ascii_digits(text: str) -> str:
    """Any script's decimal digits -> 0-9, so the number rules only ever see ASCII digits."""
    if text.isascii():
        return text
    return re.sub(r"\d", lambda m: str(unicodedata.digit(m.group(), 0)), text)


# --- our fixes --------------------------------------------------------------------------------
def _currency(m: re.Match[str]) -> str:
    return nz.number(m.group(2)) + _CURRENCIES[m.group(1)]


def _range(m: re.Match[str]) -> str:
    return f"{nz.signed(m.group(1), m.group(2))}到{nz.signed(m.group(3), m.group(4))}"


# Years in brackets, "(1823-49)", "（1785—1850）": digit by digit, as years are read (1823年); before the
# original's dash deletion, which would glue them into one number.
_BRACKETED_YEARS_RE = re.compile(r"(?<=[(（])\s*(1\d{3}|20\d{2})\s*[-–—―~～至]+\s*(\d{2}|\d{4})\s*(?=[)）])")


def _bracketed_years(m: re.Match[str]) -> str:
    return f"{nz.digit_string(m.group(1))}到{nz.digit_string(m.group(2))}"


_OUR_FIXES: list[Rule] = [
    # thousands separators (the original splits sentences at every comma, 1,000,000 included)
    (re.compile(r"(?<![\d,])\d{1,3}(?:,\d{3})+(?![\d,])"), lambda m: m.group(0).replace(",", "")),
    (re.compile(r"([¥￥$€£])\s?(\d+(?:\.\d+)?)"), _currency),
    (re.compile(r"(\d+(?:\.\d+)?)\s?([¥￥$€£])"), lambda m: nz.number(m.group(1)) + _CURRENCIES[m.group(2)]),
    (re.compile(r"(?<!\d)(\d{4})([-/.])([1-9]|0[1-9]|1[0-2])\2([1-9]|0[1-9]|[12]\d|3[01])(?!\d)"),
     lambda m: f"{m.group(1)}年{int(m.group(3))}月{int(m.group(4))}日"),
    (re.compile(r"(?<!\d)(\d{4})[-~](?=\d{4}年)"), lambda m: nz.digit_string(m.group(1)) + "到"),  # 1999-2000年
    (re.compile(r"(?<!\d)400-?\d{3}-?\d{4}(?!\d)"), lambda m: nz.phone(m.group(0))),  # 400 numbers: no 减
    # two digits + 年 is a duration ("结婚10年了"), unless it is a year: 98年出生, 90年代, 98年5月, 在98年
    (re.compile(r"(?<![\d从于在是到])(\d{2})年(?![代月\d])(?!出生|生)"), lambda m: nz.cardinal(m.group(1)) + "年"),
    # a landline with its area code (the original reads the "-" as 减 first)
    (re.compile(r"(?<!\d)(0(?:10|2[1-3]|[3-9]\d{2})-[1-9]\d{6,7})(?!\d)"), lambda m: nz.phone(m.group(1))),
]
_LATE_FIXES: list[Rule] = [
    # "10-20人": a range, not a subtraction (spaced "10 - 4" stays arithmetic)
    (re.compile(r"(?<![\d.+\-×÷=:：])(-?)((?:[1-9]\d{0,4}|0)(?:\.\d+)?)-(-?)((?:[1-9]\d{0,4}|0)(?:\.\d+)?)"
                r"(?![\d.+\-×÷=:：])(?![^,，。;；!！?？]*=)"), _range),
    (re.compile(r"(?<!\d)(\d{3,})(?=" + _MORE_QUANTIFIERS + ")"), lambda m: nz.cardinal(m.group(1))),
]  # fmt: skip


# --- the original's steps ---------------------------------------------------------------------
def _date(m: re.Match[str]) -> str:
    out = nz.digit_string(m.group(1)) + "年"
    if m.group(2):
        out += nz.cardinal(m.group(2)) + "月"
    if m.group(3):
        out += nz.cardinal(m.group(3)) + m.group(4)
    return out


def _time_range(m: re.Match[str]) -> str:
    # The original reads the end's 30 minutes as 半 only when the start's minutes are 30 too
    # (9:00-17:30 = 九点至十七点三十分); we keep that, but never read another minute as 半.
    start_half = int(m.group(2)) == 30
    end = nz.clock(m.group(5), m.group(6), m.group(7), half=start_half)
    return nz.clock(m.group(1), m.group(2), m.group(3)) + "至" + end


def _temperature(m: re.Match[str]) -> str:
    return ("零下" if m.group(1) else "") + nz.number(m.group(2)) + ("摄氏度" if m.group(3) == "摄氏度" else "度")


def _asmd(m: re.Match[str]) -> str:
    return m.group(1) + {"+": "加", "-": "减", "×": "乘", "÷": "除", "=": "等于"}[m.group(2)] + m.group(3)


def _power(m: re.Match[str]) -> str:
    return "的" + m.group(0).translate(str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹ˣʸⁿ", "0123456789xyn")) + "次方"


def _quantity(m: re.Match[str]) -> str:
    value = nz.number(m.group(1))
    return ("两" if value == "二" else value) + ("多" if m.group(2) == "+" else m.group(2) or "") + m.group(3)


def _fraction(m: re.Match[str]) -> str:
    return ("负" if m.group(1) else "") + f"{nz.number(m.group(3))}分之{nz.number(m.group(2))}"


def _decimal(m: re.Match[str]) -> str:
    return nz.signed(m.group(1), m.group(2)) if m.group(2) else nz.number("." + m.group(3))


def _version(m: re.Match[str]) -> str:
    return "".join("点" if ch == "." else nz.cardinal(ch) for ch in m.group(0))


_TIME = r"([01]?\d|2[0-3])[:：]([0-5]\d)(?:[:：]([0-5]\d))?"
_OPERAND = r"(-?\d+(?:\.\d+)?[⁰¹²³⁴⁵⁶⁷⁸⁹ˣʸⁿ]*|\.\d+[⁰¹²³⁴⁵⁶⁷⁸⁹ˣʸⁿ]*|(?<![A-Za-z])[A-Za-z][⁰¹²³⁴⁵⁶⁷⁸⁹ˣʸⁿ]*(?![A-Za-z]))"
_ASMD_RE = re.compile(_OPERAND + r"([+\-×÷=])" + _OPERAND.replace("(?<![A-Za-z])", ""))
_ORIGINAL_STEPS: list[Rule] = [
    (re.compile(r"(\d{4}|\d{2})年(?:(0?[1-9]|1[0-2])月)?(?:(0?[1-9]|[12]\d|30|31)([日号]))?"), _date),
    (re.compile(r"(\d{4})([- /.])(0[1-9]|1[012])\2(0[1-9]|[12]\d|3[01])"),
     lambda m: f"{nz.digit_string(m.group(1))}年{nz.cardinal(m.group(3))}月{nz.cardinal(m.group(4))}日"),
    (re.compile(_TIME + r"(~|-|\ue002)" + _TIME), _time_range),
    (re.compile(_TIME), lambda m: nz.clock(m.group(1), m.group(2), m.group(3))),
    (re.compile(r"(-?\d+(?:\.\d+)?" + _RANGE_UNITS + r")~(-?\d+(?:\.\d+)?" + _RANGE_UNITS + ")"),
     lambda m: f"{m.group(1)}至{m.group(2)}"),
    (re.compile(r"(-?)(\d+(?:\.\d+)?)(°C|℃|度|摄氏度)"), _temperature),
    (_MEASURE_RE, lambda m: _MEASURES[m.group(1)]),
]  # fmt: skip
_NUMBER_STEPS: list[Rule] = [
    (re.compile(r"(-?)(\d+)/(\d+)"), _fraction),
    (re.compile(_NUM + "%"), lambda m: ("负" if m.group(1) else "") + "百分之" + nz.number(m.group(2))),
    (re.compile(r"(?<!\d)((?:\+?86 ?)?1(?:[38]\d|5[0-35-9]|7[678]|9[89])\d{8})(?!\d)"),
     lambda m: nz.phone(m.group(1), " ")),
    (re.compile(r"(?<!\d)((?:0(?:10|2[1-3]|[3-9]\d{2})-?)?[1-9]\d{6,7})(?!\d)(?!" + _QUANTIFIERS + ")"),
     lambda m: nz.phone(m.group(1))),  # our fix: "1000000元" is an amount, not a landline
    (re.compile(r"(400)(-)?\d{3}(-)?\d{4}"), lambda m: nz.phone(m.group(0))),
    (re.compile(r"(?<![\d+\-×÷=])" + _NUM + r"[-~]" + _NUM + r"(?![\d+\-×÷=])"), _range),
    (re.compile(r"(-)(\d+)"), lambda m: "负" + nz.number(m.group(2))),
    (re.compile(r"\d+(?:\.\d+){2,}"), _version),
    (re.compile(r"(-?)(\d+\.\d+)|\.(\d+)"), _decimal),
    (re.compile(r"(\d+)([多余几+])?(" + _QUANTIFIERS + ")"), _quantity),
    (re.compile(r"\d{3}\d*"), lambda m: nz.digit_string(m.group(0), alt_one=True)),
    (re.compile(r"(-?)(\d+)"), lambda m: nz.signed(m.group(1), m.group(2))),
]  # fmt: skip


def _numbers(text: str) -> str:
    for pattern, repl in _OUR_FIXES:
        text = pattern.sub(repl, text)
    for pattern, repl in _ORIGINAL_STEPS + _LATE_FIXES:
        text = pattern.sub(repl, text)
    text = text.replace(_SPACED_MINUS, "-")  # "10 - 4": arithmetic, left to the original's rule
    while _ASMD_RE.search(text):
        text = _ASMD_RE.sub(_asmd, text)
    text = re.sub("[⁰¹²³⁴⁵⁶⁷⁸⁹ˣʸⁿ]+", _power, text)
    for pattern, repl in _NUMBER_STEPS:
        text = pattern.sub(repl, text)
    return text


def _chinese_marks(text: str) -> str:
    """The original's last steps on the Chinese (non-Latin) parts: symbols to words, punctuation map."""
    text = "".join(_POST_MAP.get(ch, ch) for ch in text)
    text = re.sub(r"[-——《》【】<=>{}()（）#&@“”^_|\\]", "", text)
    text = text.replace("嗯", "恩").replace("呣", "母")
    text = _PUNCT_RE.sub(lambda m: _PUNCT_MAP[m.group(0)], text)
    return re.sub(r"[^\u4e00-\u9fa5" + _PUNCT_CHARS + "]+", "", text)


def _is_latin(ch: str) -> bool:
    return ch.isascii() and ch.isalpha()


def map_punctuation_zh(text: str) -> str:
    """Chinese marks and punctuation mapped as the original does; English words kept (English rules)."""
    from renderer.text.normalize_en import normalize_en

    out: list[str] = []
    pos = 0
    for m in _LATIN_RUN_RE.finditer(text):
        out.append(_chinese_marks(text[pos : m.start()]))
        # "AA-A" reads "A A- A" in English; a hyphen before a space would meet the next pass's space removal
        # and become an operator ("A减A"), so inside Chinese it is only the space it stands for.
        out.append(re.sub(r"-\s+", " ", normalize_en(m.group(0))).strip(" ,.!?…-"))
        pos = m.end()
    out.append(_chinese_marks(text[pos:]))
    joined = ""
    for part in out:
        if part and joined and _is_latin(joined[-1]) and _is_latin(part[0]):
            joined += " "  # two English runs that only a dropped mark separated stay two words
        joined += part
    joined = re.sub(f"([{_PUNCT_CHARS}])(?:[{_PUNCT_CHARS}])+", r"\1", joined)
    return joined.lstrip("".join(PUNCTUATION) + " ").strip()


def normalize_zh(text: str) -> str:
    """Normalise Chinese (possibly mixed with English words) text for G2P (see module docstring)."""
    text = _BRACKETED_YEARS_RE.sub(_bracketed_years, ascii_digits(to_simplified(text)))
    text = re.sub(r"[—―]+", "", text)  # the original deletes dashes before anything else: no pause
    # Spaces go (the original removes them all), except between two Latin words and in "10 - 4".
    text = re.sub(r"(?<=\d) +- +(?=\d)", _SPACED_MINUS, text)
    text = re.sub(r"(?<![A-Za-z'])\s+|\s+(?![A-Za-z'])", "", re.sub(r"\s+", " ", text))
    text = _numbers(text)
    return map_punctuation_zh(text)
