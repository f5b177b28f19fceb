"""English number words: cardinals, ordinals, years, decimals, digit strings.

Words are joined with spaces, never hyphens: a hyphen is a pause symbol ("-") in the model's
phone set, and "twenty one" is read the same as "twenty-one".
"""

from __future__ import annotations

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (10**3, "thousand"))
_ORDINAL_IRREGULAR = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
MAX_CARDINAL = 10**15 - 1


def _below_thousand(n: int) -> list[str]:
    words: list[str] = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        words += [_ONES[hundreds], "hundred"]
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        words.append(_TENS[tens])
        if ones:
            words.append(_ONES[ones])
    elif rest or not words:
        words.append(_ONES[rest])
    return words


def cardinal(n: int) -> str:
    """``1234`` -> "one thousand two hundred thirty four" (negative numbers get "minus")."""
    if n < 0:
        return "minus " + cardinal(-n)
    if n > MAX_CARDINAL:
        return digits(str(n))
    if n < 1000:
        return " ".join(_below_thousand(n))
    words: list[str] = []
    for value, name in _SCALES:
        count, n = divmod(n, value)
        if count:
            words += _below_thousand(count) + [name]
    if n:
        words += _below_thousand(n)
    return " ".join(words)


def ordinal_word(word: str) -> str:
    """The ordinal of a single number word ("twenty" -> "twentieth")."""
    if word in _ORDINAL_IRREGULAR:
        return _ORDINAL_IRREGULAR[word]
    if word.endswith("y"):
        return word[:-1] + "ieth"
    return word + "th"


def ordinal(n: int) -> str:
    """``21`` -> "twenty first"."""
    words = cardinal(n).split()
    words[-1] = ordinal_word(words[-1])
    return " ".join(words)


def digits(s: str) -> str:
    """Read a digit string one digit at a time ("007" -> "zero zero seven")."""
    return " ".join(_ONES[int(ch)] for ch in s if ch.isdigit())


def year(n: int) -> str:
    """Read a year the way people say it: 1984 -> "nineteen eighty four", 2005 -> "two thousand five"."""
    if 2000 <= n <= 2009 or n % 1000 == 0 or n < 1000 or n > 9999:
        return cardinal(n)
    high, low = divmod(n, 100)
    if low == 0:
        return cardinal(high) + " hundred"
    if low < 10:
        return cardinal(high) + " oh " + _ONES[low]
    return cardinal(high) + " " + cardinal(low)


def decimal(text: str) -> str:
    """``"3.14"`` -> "three point one four"; integer part read as a cardinal."""
    whole, _, frac = text.partition(".")
    head = cardinal(int(whole.replace(",", ""))) if whole else "zero"
    if not frac:
        return head
    return head + " point " + digits(frac)


def number(text: str) -> str:
    """Read a numeral as written: "1,234" -> cardinal; "007" -> digits; "2.5" -> decimal."""
    plain = text.replace(",", "")
    if "." in plain:
        return decimal(plain)
    if len(plain) > 1 and plain.startswith("0"):
        return digits(plain)
    return cardinal(int(plain))


def roman_to_int(s: str) -> int | None:
    """Value of a Roman numeral (I..MMMM), or None when ``s`` is not a well-formed numeral."""
    values = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
    s = s.upper()
    if not s or any(ch not in values for ch in s):
        return None
    total = 0
    for i, ch in enumerate(s):
        v = values[ch]
        if i + 1 < len(s) and values[s[i + 1]] > v:
            total -= v
        else:
            total += v
    return total if total > 0 and _to_roman(total) == s else None


def _to_roman(n: int) -> str:
    table: tuple[tuple[int, str], ...] = ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"))
    table += ((50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"))
    out = ""
    for value, sym in table:
        while n >= value:
            out += sym
            n -= value
    return out
