"""Chinese readings of numbers, dates, times, phone numbers, temperatures and ranges.

These follow the rules of the normaliser the original GPT-SoVITS frontend uses (PaddleSpeech's
``zh_normalization``): integers by 十/百/千/万/亿 with 零 for gaps and 十 for 一十 at the start,
decimals digit by digit (a trailing zero is kept, 3.20 = 三点二零), years digit by digit,
months and days as numbers, minutes of 30 as 半, phone numbers digit by digit with 1 read 幺,
negative temperatures 零下. Each function takes the matched digits as written.
"""

from __future__ import annotations

import re

DIGITS = "零一二三四五六七八九"
_UNITS = ((8, "亿"), (4, "万"), (3, "千"), (2, "百"), (1, "十"))


def _value(digits: str, use_zero: bool = True) -> list[str]:
    stripped = digits.lstrip("0")
    if not stripped:
        return []
    if len(stripped) == 1:
        if use_zero and len(stripped) < len(digits):
            return [DIGITS[0], DIGITS[int(stripped)]]
        return [DIGITS[int(stripped)]]
    power, unit = next((p, u) for p, u in _UNITS if p < len(stripped))
    return _value(digits[:-power]) + [unit] + _value(digits[-power:])


def cardinal(digits: str) -> str:
    """"1200" -> 一千二百, "1005" -> 一千零五, "12" -> 十二, "0" -> 零."""
    digits = digits.lstrip("0")
    if not digits:
        return DIGITS[0]
    symbols = _value(digits)
    if len(symbols) >= 2 and symbols[0] == DIGITS[1] and symbols[1] == "十":
        symbols = symbols[1:]
    return "".join(symbols)


def digit_string(digits: str, alt_one: bool = False) -> str:
    """"110" -> 一一零 (or 幺幺零 with ``alt_one``, as in phone and room numbers)."""
    out = "".join(DIGITS[int(d)] for d in digits if d.isdigit())
    return out.replace("一", "幺") if alt_one else out


def number(text: str) -> str:
    """A written number ("12", "3.14", "3.20", ".5") -> characters; decimals keep a final zero."""
    whole, _, frac = text.partition(".")
    out = cardinal(whole) if whole else ""
    frac = frac.rstrip("0") + "0" if frac.endswith("0") else frac
    if frac:
        out = (out or DIGITS[0]) + "点" + digit_string(frac)
    return out


def time_part(digits: str) -> str:
    """Minutes and seconds: "05" -> 零五, "30" -> 三十."""
    out = number(digits.lstrip("0") or "0")
    return DIGITS[0] + out if digits.startswith("0") else out


def clock(hour: str, minute: str, second: str | None, half: bool = True) -> str:
    """9, 30 -> 九点半; 10, 05 -> 十点零五分; 17, 00 -> 十七点."""
    out = number(hour) + "点"
    if minute.lstrip("0"):
        out += "半" if half and int(minute) == 30 else time_part(minute) + "分"
    if second and second.lstrip("0"):
        out += time_part(second) + "秒"
    return out


def phone(text: str, separators: str = "-") -> str:
    """Digit groups read one by one (1 = 幺), groups joined by a comma."""
    groups = [g for g in re.split(f"[{re.escape(separators)}]", text.strip("+")) if g]
    return "，".join(digit_string(g, alt_one=True) for g in groups)


def signed(sign: str, text: str, word: str = "负") -> str:
    return (word if sign else "") + number(text)
