"""Deterministic Chinese text normalisation.

Numbers, dates, times, percentages, fractions, ranges, temperatures, phone numbers and units are
written out in characters (with ``cn2an`` for plain numbers), traditional characters become
simplified ones (OpenCC ``t2s``), and punctuation is mapped to the model's set the way GPT-SoVITS
does (``，：；、·/`` -> ``,``, ``。`` -> ``.``, ``！`` -> ``!``, ``？`` -> ``?``, ``—`` -> ``-``,
``~ ～ ...`` -> ``…``). English words inside Chinese text are kept for the English G2P.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from renderer.text.symbols import PUNCTUATION

_DIGITS = "零一二三四五六七八九"
_PHONE_DIGITS = "零幺二三四五六七八九"  # "1" is read "yao" in phone numbers
_MEASURE_WORDS = "个只本条件位张次岁种辆台部把块头匹双对杯瓶碗家间所封首名人"
_UNITS = {
    "km/h": "千米每小时",
    "km": "千米",
    "kg": "千克",
    "cm": "厘米",
    "mm": "毫米",
    "ml": "毫升",
    "m": "米",
    "g": "克",
    "l": "升",
    "gb": "吉字节",
    "mb": "兆字节",
}
_PUNCT_MAP = {
    "：": ",", "；": ",", "，": ",", ":": ",", ";": ",", "。": ".", "！": "!", "？": "?", "\n": ".",
    "·": ",", "、": ",", "...": "…", "$": ".", "/": ",", "—": "-", "–": "-", "~": "…", "～": "…",
}  # fmt: skip
_PUNCT_RE = re.compile("|".join(re.escape(k) for k in sorted(_PUNCT_MAP, key=len, reverse=True)))
_PUNCT_CHARS = "".join(re.escape(p) for p in PUNCTUATION)
_DROP_RE = re.compile(r"[^\u4e00-\u9fa5A-Za-z' " + _PUNCT_CHARS + "]+")
_PUNCT_RUN_RE = re.compile(f"([{_PUNCT_CHARS}])(?:\\s*[{_PUNCT_CHARS}])+")
_FULLWIDTH = {i: i - 0xFEE0 for i in range(0xFF01, 0xFF5F) if chr(i - 0xFEE0).isalnum() or chr(i - 0xFEE0) in "%+-.$"}
_NUM = r"\d+(?:\.\d+)?"


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
    return _t2s().convert(text)


def ascii_digits(text: str) -> str:
    """Any script's decimal digits -> 0-9, so the number rules (and cn2an) only ever see ASCII digits."""
    if text.isascii():
        return text
    return re.sub(r"\d", lambda m: str(unicodedata.digit(m.group(), 0)), text)


def digits_zh(s: str, phone: bool = False) -> str:
    table = _PHONE_DIGITS if phone else _DIGITS
    return "".join(table[int(ch)] for ch in s if ch.isdigit())


def number_zh(s: str) -> str:
    """A numeral in characters: integers and decimals through cn2an; long or 0-led integers digit by digit."""
    s = s.replace(",", "")
    neg = s.startswith("-")
    s = s.lstrip("-")
    whole, _, frac = s.partition(".")
    if len(whole) > 12 or (len(whole) > 1 and whole.startswith("0")):
        words = digits_zh(whole)
    else:
        import cn2an  # imported on first use: it is slow to import and only Chinese needs it

        words = cn2an.an2cn(whole or "0")
    if frac:
        words += "点" + digits_zh(frac)
    return ("负" if neg else "") + words


def _date(m: re.Match[str]) -> str:
    y, mo, d = m.group(1), m.group(2), m.group(3)
    out = digits_zh(y) + "年" + number_zh(str(int(mo))) + "月"
    return out + (number_zh(str(int(d))) + "日" if d else "")


def _time(m: re.Match[str]) -> str:
    h, mi, sec = int(m.group(1)), int(m.group(2)), m.group(3)
    out = number_zh(str(h)) + "点"
    if mi:
        out += ("零" if mi < 10 else "") + number_zh(str(mi)) + "分"
    if sec and int(sec):
        out += number_zh(str(int(sec))) + "秒"
    return out


def _quantity(m: re.Match[str]) -> str:
    value, word = m.group(1), m.group(2)
    return ("两" if value == "2" else number_zh(value)) + word


def _signed(sign: str, word: str) -> str:
    return word if sign else ""


def _unit(m: re.Match[str]) -> str:
    return number_zh(m.group(1)) + _UNITS[m.group(2).lower()]


_UNIT_RE = "|".join(re.escape(u) for u in _UNITS)
_RULES: list[tuple[re.Pattern[str], object]] = [
    (re.compile(r"(\d{1,3}(?:,\d{3})+)"), lambda m: m.group(1).replace(",", "")),
    (re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)"), _date),
    # Years and year ranges in brackets, "(1823-49)", "（1785—1850）": read digit by digit like 1823年
    (re.compile(r"(?<=[(（])\s*(1\d{3}|20\d{2})\s*[-–—~～至]\s*(\d{2}|\d{4})\s*(?=[)）])"),
     lambda m: f"{digits_zh(m.group(1))}到{digits_zh(m.group(2))}"),
    (re.compile(r"(\d{4})年(?:(\d{1,2})月(?:(\d{1,2})[日号])?)?"),
     lambda m: digits_zh(m.group(1)) + "年" + (number_zh(m.group(2)) + "月" if m.group(2) else "")
     + (number_zh(m.group(3)) + "日" if m.group(3) else "")),
    (re.compile(r"(?<!\d)(\d{1,2})[:：](\d{2})(?:[:：](\d{2}))?(?!\d)"), _time),
    (re.compile(r"(?<!\d)(?:\+?86[-\s]?)?(1[3-9]\d{9})(?!\d)"), lambda m: digits_zh(m.group(1), phone=True)),
    (re.compile(r"(?<!\d)(0\d{2,3})-(\d{7,8})(?!\d)"), lambda m: digits_zh(m.group(1) + m.group(2), phone=True)),
    (re.compile(r"(-?)(" + _NUM + r")\s?(?:°C|℃|摄氏度)"),
     lambda m: _signed(m.group(1), "零下") + number_zh(m.group(2)) + "度"),
    (re.compile(r"(-?)(" + _NUM + r")\s?%"), lambda m: _signed(m.group(1), "负") + "百分之" + number_zh(m.group(2))),
    (re.compile(r"(\d+)/(\d+)"), lambda m: number_zh(m.group(2)) + "分之" + number_zh(m.group(1))),
    (re.compile(r"(" + _NUM + r")\s?[~～\-–]\s?(" + _NUM + r")"),
     lambda m: f"{number_zh(m.group(1))}到{number_zh(m.group(2))}"),
    (re.compile(r"(" + _NUM + r")\s?(" + _UNIT_RE + r")(?![A-Za-z])", re.IGNORECASE), _unit),
    (re.compile(r"(\d+)([" + _MEASURE_WORDS + "])"), _quantity),
    (re.compile(r"(?<![\w.])-(?=\d)"), "负"),
    (re.compile(_NUM), lambda m: number_zh(m.group(0))),
]  # fmt: skip


def map_punctuation_zh(text: str) -> str:
    """GPT-SoVITS's Chinese punctuation mapping, keeping English words and the spaces between them."""
    text = text.replace("嗯", "恩").replace("呣", "母")
    text = _PUNCT_RE.sub(lambda m: _PUNCT_MAP[m.group(0)], text)
    text = _DROP_RE.sub(" ", text)
    text = re.sub(r"(?<![A-Za-z])'|'(?![A-Za-z])", " ", text)  # apostrophes only inside English words
    # Spaces only matter between two Latin words.
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"(?<![A-Za-z'])\s|\s(?![A-Za-z'])", "", text)
    text = _PUNCT_RUN_RE.sub(r"\1", text)
    return text.lstrip("".join(PUNCTUATION) + " ").strip()


def normalize_zh(text: str) -> str:
    """Normalise Chinese (possibly mixed with English words) text for G2P."""
    text = ascii_digits(text.translate(_FULLWIDTH))
    text = re.sub("[\u00ad\u200b-\u200f\u2060-\u2064\ufeff]", "", text)
    text = to_simplified(text)
    for pattern, repl in _RULES:
        text = pattern.sub(repl, text)  # type: ignore[call-overload]
    return map_punctuation_zh(text)
