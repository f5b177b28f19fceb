"""English number words in the form the original GPT-SoVITS frontend produces them.

The original reads numbers through the ``inflect`` package, so the voices learned inflect's
forms: tens and units joined by a hyphen ("thirty-four", looked up as one dictionary word when the
dictionary has it), a comma between thousands groups ("one thousand, two hundred thirty-four",
read as a pause), no "and" for cardinals but "and" inside ordinals ("one hundred and first"),
and numbers from 1001 to 2999 read in pairs like years ("twelve thirty-four"). This module
writes those forms itself (inflect takes seconds to import); ``tests/text`` compares them with
the rules above.
"""

from __future__ import annotations

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ("", "thousand", "million", "billion", "trillion")
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


def _tens(n: int) -> str:
    """0..99 -> "zero" .. "ninety-nine" (hyphenated like inflect)."""
    if n < 20:
        return _ONES[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")


def _hundreds(n: int, andword: str) -> str:
    """1..999; ``andword`` joins the hundreds and the rest ("" for cardinals, "and" in ordinals)."""
    hundreds, rest = divmod(n, 100)
    if not hundreds:
        return _tens(rest)
    head = f"{_ONES[hundreds]} hundred"
    if not rest:
        return head
    return f"{head} {andword} {_tens(rest)}" if andword else f"{head} {_tens(rest)}"


def cardinal(n: int, andword: str = "") -> str:
    """``1234`` -> "one thousand, two hundred thirty-four"; ``1066`` -> "one thousand sixty-six".

    Groups of three digits are joined with ", ", except a last group below 100, which follows
    with ``andword`` (inflect's rule). Beyond 10**15 - 1 the digits are read one by one.
    """
    if n < 0:
        return "minus " + cardinal(-n, andword)
    if n > MAX_CARDINAL:
        return digits(str(n))
    if n < 1000:
        return _hundreds(n, andword)
    groups: list[int] = []
    while n:
        n, group = divmod(n, 1000)
        groups.append(group)
    parts: list[str] = []
    for scale in range(len(groups) - 1, -1, -1):
        value = groups[scale]
        if not value:
            continue
        words = _hundreds(value, andword) + (f" {_SCALES[scale]}" if scale else "")
        if parts and scale == 0 and value < 100:
            parts[-1] += f" {andword} {words}" if andword else f" {words}"
        else:
            parts.append(words)
    return ", ".join(parts)


def ordinal_words(words: str) -> str:
    """The ordinal of number words: "twenty-three" -> "twenty-third", "one hundred" -> "one hundredth"."""
    head, sep, last = words.rpartition(" ")
    stem, hyphen, unit = last.rpartition("-")
    if unit in _ORDINAL_IRREGULAR:
        unit = _ORDINAL_IRREGULAR[unit]
    elif unit.endswith("y"):
        unit = unit[:-1] + "ieth"
    else:
        unit += "th"
    return head + sep + stem + hyphen + unit


def ordinal(n: int) -> str:
    """``101`` -> "one hundred and first" (inflect reads ordinals with "and")."""
    return ordinal_words(cardinal(n, andword="and"))


def ordinal_suffix(n: int) -> str:
    """``21`` -> "21st" (the digits with their English ordinal suffix)."""
    if n % 100 in (11, 12, 13):
        return f"{n}th"
    return f"{n}" + {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def digits(s: str) -> str:
    """Read a digit string one digit at a time ("007" -> "zero zero seven")."""
    return " ".join(_ONES[int(ch)] for ch in s if ch.isdigit())


def _pair(n: int) -> str:
    """A two-digit group of a year-style reading: 5 -> "oh five", 0 -> "oh oh"."""
    if n < 10:
        return f"oh {_ONES[n]}" if n else "oh oh"
    return _tens(n)


def year_style(n: int) -> str:
    """How the original reads a bare integer: 1001-2999 in pairs ("twelve thirty-four", "nineteen
    hundred", "two thousand five"), everything else as a cardinal."""
    if not 1000 < n < 3000:
        return cardinal(n)
    if n == 2000:
        return "two thousand"
    if 2000 < n < 2010:
        return "two thousand " + _tens(n % 100)
    high, low = divmod(n, 100)
    if low == 0:
        return _tens(high) + " hundred"
    return f"{_tens(high)} {_pair(low)}"


def fraction(numerator: int, denominator: int) -> str:
    """``3/4`` -> "three fourths", ``1/2`` -> "one half", ``6/1`` -> "six" (the original's rules)."""
    top = cardinal(numerator, andword="and")  # the original calls inflect with its default "and" here
    if denominator == 2:
        return f"{top} {'half' if numerator == 1 else 'halves'}"
    if denominator == 1:
        return top
    bottom = ordinal_words(cardinal(denominator, andword="and"))
    return f"{top} {bottom}{'s' if numerator > 1 else ''}"


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
