"""English text normalisation: the original GPT-SoVITS steps, after our fixes for its plain mistakes.

The voices learned from text normalised by the original frontend (``english.text_normalize``):
``; :`` become commas, straight double quotes and ’ become apostrophes (read as a short pause),
then, in this order, ordinals of list numbers, spaced arithmetic ("10 - 4" = ten minus four),
negative numbers, thousands separators, units glued to numbers (20min, 1.5L, 2tbsp, 30s), £ and
$ amounts on either side, decimals, fractions, 1st/2nd, and plain numbers (1001-2999 in pairs,
"twelve thirty-four"); accents and every character outside ``A-Za-z'.,?!-`` are dropped, and a
capital letter inside a word starts a new word, so "iOS" is read "i O S" and "FBI" "F B I".
Runs of punctuation collapse to their first mark.

Before those steps, :func:`_our_fixes` rewrites what the original reads plainly wrong (each is
listed in DEVIATIONS.md): title abbreviations (Dr. = Doctor, not "Drive"), "$1.5 million", a.m./p.m., clock
times, phone numbers, ISO dates, decades, version numbers, digit ranges, units with a space and
common metric units, "&", "No. 5", Roman numerals and all-caps words in headings; "3. "
stays the number three and a period (the original makes it "third," anywhere, "in 2024. Then"
included). "…" is kept here and dropped by the G2P (the
original drops it, but a text ending in it must not get a "." added).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from renderer.text import en_dict
from renderer.text import numbers_en as num
from renderer.text.normalize_zh import ascii_digits

_MONTHS = "January February March April May June July August September October November December".split()
HEADING_WORDS = ("chapter", "part", "book", "volume", "act", "scene", "section", "canto", "letter", "stave")

# --- the original's steps -------------------------------------------------------------------
_REP_MAP = {";": ",", ":": ",", "：": ",", "，": ",", "；": ",", '"': "'", "’": "'", "。": ".", "！": "!", "？": "?"}
_REP_RE = re.compile("|".join(re.escape(k) for k in _REP_MAP))
_ORIGINAL_UNITS = {
    "m": ("meter", "meters"),
    "km": ("kilometer", "kilometers"),
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "ft": ("feet", "feet"),
    "L": ("liter", "liters"),
    "tbsp": ("tablespoon", "tablespoons"),
    "tsp": ("teaspoon", "teaspoons"),
    "h": ("hour", "hours"),
    "min": ("minute", "minutes"),
    "s": ("second", "seconds"),
    "°C": ("degree celsius", "degrees celsius"),
    "°F": ("degree fahrenheit", "degrees fahrenheit"),
}
_ASMD_OPERAND = r"(-?\d+(?:\.\d+)?|\.\d+|[A-Za-z])"
_ASMD_RE = re.compile(_ASMD_OPERAND + r"\s+([+\-×÷=])\s+" + _ASMD_OPERAND)
_ASMD_WORDS = {"+": " plus ", "-": " minus ", "×": " times ", "÷": " divided by ", "=": " Equals "}
_MEASURE_RE = re.compile(r"\b([0-9]+(\.[0-9]+)?)(m|km|km/h|ft|L|tbsp|tsp|h|min|s|°C|°F)\b")
_FILTER_RE = re.compile(r"[^ A-Za-z'.,?!\-…éÉ]")  # é survives only in "résumé" (see _strip_accents)
_CONSECUTIVE_RE = re.compile(r"([!?…,.\-\s])([!?…,.\-])+")


def _money(amount: str, one: str, many: str, sub_one: str, sub_many: str) -> str:
    parts = amount.split(".")
    if len(parts) > 2:
        return f"{amount} {many}"
    whole = int(parts[0].replace(",", "")) if parts[0].replace(",", "") else 0
    sub = parts[1].replace(",", "") if len(parts) > 1 else ""  # "$.,1": a comma is no digit (never crash)
    cents = int(sub.ljust(2, "0")[:2]) if sub else 0
    if whole and cents:
        return f"{whole} {one if whole == 1 else many} and {cents} {sub_one if cents == 1 else sub_many}"
    if whole:
        return f"{whole} {one if whole == 1 else many}"
    if cents:
        return f"{cents} {sub_one if cents == 1 else sub_many}"
    return f"zero {many}"


def _measure(m: re.Match[str]) -> str:
    one, many = _ORIGINAL_UNITS[m.group(3)]
    single = m.group(2) is None and int(m.group(1)) == 1
    return f"{m.group(1)} {one if single else many}"


def _decimal(m: re.Match[str]) -> str:
    whole, _, frac = m.group(1).partition(".")
    return whole + " point " + " ".join(frac.strip())


_ORIGINAL_STEPS: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    (re.compile(r"(?:^|\s+)(-)(\d+)"), r" negative \2"),
    (re.compile(r"([0-9][0-9,]+[0-9])"), lambda m: m.group(1).replace(",", "")),
    (_MEASURE_RE, _measure),
    (re.compile(r"£([0-9.,]*[0-9]+)"), lambda m: _money(m.group(1), "pound", "pounds", "penny", "pence")),
    (re.compile(r"([0-9.,]*[0-9]+)£"), lambda m: _money(m.group(1), "pound", "pounds", "penny", "pence")),
    (re.compile(r"\$([0-9.,]*[0-9]+)"), lambda m: _money(m.group(1), "dollar", "dollars", "cent", "cents")),
    (re.compile(r"([0-9.,]*[0-9]+)\$"), lambda m: _money(m.group(1), "dollar", "dollars", "cent", "cents")),
    (re.compile(r"([0-9]+\.[0-9]+)"), _decimal),  # the original also took "3. 5" (a sentence end)
    (re.compile(r"([0-9]+)/([0-9]+)"), lambda m: num.fraction(int(m.group(1)), int(m.group(2)))),
    (re.compile(r"([0-9]+)(st|nd|rd|th)"), lambda m: num.ordinal(int(m.group(1)))),
    (re.compile(r"[0-9]+"), lambda m: num.year_style(int(m.group(0)))),
]


def _strip_accents(text: str) -> str:
    # "résumé" keeps its accents: the G2P reads the accented word as the noun.
    def strip(m: re.Match[str]) -> str:
        word = m.group(0)
        if re.fullmatch(r"r[eé]sum[eé]s?", word, re.IGNORECASE) and not word.isascii():
            return word
        return "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")

    return text if text.isascii() else re.sub(r"[^\W\d_]+", strip, text)


def _original_steps(text: str) -> str:
    text = _REP_RE.sub(lambda m: _REP_MAP[m.group(0)], text)
    while _ASMD_RE.search(text):
        text = _ASMD_RE.sub(lambda m: m.group(1) + _ASMD_WORDS[m.group(2)] + m.group(3), text)
    for pattern, repl in _ORIGINAL_STEPS:
        text = pattern.sub(repl, text)  # type: ignore[arg-type]
    text = _strip_accents(text)
    text = text.replace("%", " percent")
    text = _FILTER_RE.sub("", text)
    text = re.sub(r"(?i)i\.e\.", "that is", text)
    text = re.sub(r"(?i)e\.g\.", "for example", text)
    text = re.sub(r"(?<!^)(?<!\s)([A-Z])", r" \1", text)
    return _CONSECUTIVE_RE.sub(r"\1", text)


# --- our fixes (DEVIATIONS.md) --------------------------------------------------------------
_TITLES = {
    "mr": "Mr", "mrs": "Mrs", "ms": "Ms", "prof": "Professor", "capt": "Captain", "col": "Colonel", "gen": "General",
    "lt": "Lieutenant", "sgt": "Sergeant", "rev": "Reverend", "hon": "Honorable", "gov": "Governor",
    "sen": "Senator", "jr": "Junior", "sr": "Senior", "mt": "Mount", "vs": "versus", "messrs": "Messers",
    # first names abbreviated in 18th/19th-century print ("Wm. Lloyd Garrison")
    "wm": "William", "chas": "Charles", "thos": "Thomas", "jas": "James", "geo": "George", "benj": "Benjamin",
    "robt": "Robert", "saml": "Samuel", "jno": "John", "edw": "Edward", "richd": "Richard",
}  # fmt: skip
# A title glued to a capital ("Mr.Smith", "ASt.") is where the original's capital split puts a space later:
# matched there too, so that normalising twice gives the same text.
_GLUED = r"(?:\b|(?<=[A-Za-z0-9])(?-i:(?=[A-Z])))"
_TITLE_RE = re.compile(_GLUED + r"(" + "|".join(sorted(_TITLES, key=len, reverse=True))
                       + r")\.(?=[\s,;:!?)]|(?-i:[A-Z]))", re.IGNORECASE)
_ROAD_RE = re.compile(_GLUED + r"(Dr|St)\.(?=(\s+[\"“(]?\w)?)")
_SENTENCE_START_RE = re.compile(r"\s+(The|A|An|He|She|It|I|We|They|You|This|That|There|But|And|So|Then|His|Her|My)\b")
_UNITS = {
    "kg": ("kilogram", "kilograms"), "cm": ("centimeter", "centimeters"), "mm": ("millimeter", "millimeters"),
    "mg": ("milligram", "milligrams"), "ml": ("milliliter", "milliliters"), "lb": ("pound", "pounds"),
    "lbs": ("pounds", "pounds"), "oz": ("ounce", "ounces"), "mph": ("mile per hour", "miles per hour"),
    "kph": ("kilometer per hour", "kilometers per hour"), "tbsp": ("tablespoon", "tablespoons"),
    "tsp": ("teaspoon", "teaspoons"), "km": ("kilometer", "kilometers"), "min": ("minute", "minutes"),
    "km/h": ("kilometer per hour", "kilometers per hour"), "°C": ("degree celsius", "degrees celsius"),
    "°F": ("degree fahrenheit", "degrees fahrenheit"), "ft": ("feet", "feet"),
}  # fmt: skip
_UNIT_RE = re.compile(
    r"(?<![\w.])(\d+(?:\.\d+)?)(\s?)(" + "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True)) + r")\b"
)
_AMPM_RE = re.compile(r"(?<=\d)\s*([AaPp])\.?\s?[Mm]\b(\.?)")
_TIME_RE = re.compile(r"\b([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?\b")
_PHONE_RE = re.compile(r"(?<![\w.-])(?:\((\d{3})\)\s?|(\d{3})[-.])?(\d{3})-(\d{4})(?![\w-])")
_ISO_DATE_RE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_DECADE_RE = re.compile(r"(?<![\w.])(?:'|’)?((?:1[0-9]|20)?\d0)'?s\b")
_VERSION_RE = re.compile(r"\b\d+(?:\.\d+){2,}\b")
_RANGE_RE = re.compile(r"(?<![\w.,-])(\d{1,4})(?:-|\s?–\s?)(\d{1,4})(?![\w-]|\.\d)")  # "10 - 4" is arithmetic
_NUMBER_SIGN_RE = re.compile(r"\bNo\.\s?(?=\d)", re.IGNORECASE)
_SCALED_MONEY_RE = re.compile(r"([$£€])(\d+(?:\.\d+)?)\s+(thousand|million|billion|trillion)\b")
_HEADING_ROMAN_RE = re.compile(r"\b(" + "|".join(HEADING_WORDS) + r")\s+([IVXLCDM]+)\b", re.IGNORECASE)


def _road(m: re.Match[str]) -> str:
    # "Dr. Jones", "St. Paul" are titles; "Baker St. The house", "Mulholland Dr. is" are roads.
    rest = m.string[m.end() :]
    nxt = re.match(r"\s+[\"“(]?(\w)", rest)
    title = bool(nxt) and nxt.group(1).isupper() and not _SENTENCE_START_RE.match(rest)  # type: ignore[union-attr]
    if m.group(1) == "Dr":
        return "Doctor" if title else "Drive."
    return "Saint" if title else "Street."


def _am_pm(m: re.Match[str]) -> str:
    # "a.m." is read as letter names; its period also ends a sentence when one follows (or the text ends)
    ends = bool(m.group(2)) and re.match(r"\s+[A-Z\"“]|\s*$", m.string[m.end() :]) is not None
    return (" A M" if m.group(1) in "Aa" else " P M") + ("." if ends else "")


def _time(m: re.Match[str]) -> str:
    hour, minute, second = int(m.group(1)), int(m.group(2)), m.group(3)
    if minute == 0:
        words = f"{num.cardinal(hour)} o'clock"
    else:
        words = f"{num.cardinal(hour)} {num.year_style(hour * 100 + minute).split(' ', 1)[1]}" if hour >= 10 else (
            f"{num.cardinal(hour)} {'oh ' if minute < 10 else ''}{num.cardinal(minute)}"
        )
    if second and int(second):
        words += f" and {num.cardinal(int(second))} seconds"
    return words


def _phone(m: re.Match[str]) -> str:
    groups = [g for g in m.groups() if g]
    return ", ".join(" ".join("oh" if d == "0" else num.digits(d) for d in g) for g in groups)


def _iso_date(m: re.Match[str]) -> str:
    year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return m.group(0)
    return f"{_MONTHS[month - 1]} {num.ordinal(day)}, {year}"


def _decade(m: re.Match[str]) -> str:
    value = m.group(1)
    before = m.string[: m.start()].rstrip().rsplit(" ", 1)[-1].lower()
    if len(value) == 2 and not m.group(0).startswith(("'", "’")) and before not in (
        "the", "his", "her", "their", "my", "your", "our", "early", "mid", "late", "in",
    ):  # fmt: skip
        return m.group(0)  # "30s" alone is thirty seconds, as the original reads it
    words = num.year_style(int(value)) if len(value) == 4 else num.cardinal(int(value))
    head, _, last = words.rpartition(" ")
    plural = last[:-1] + "ies" if last.endswith("y") else last + "s"
    return (head + " " if head else "") + plural


def _unit(m: re.Match[str]) -> str:
    unit = m.group(3)
    if not m.group(2) and unit in _ORIGINAL_UNITS:
        return m.group(0)  # glued to the number: the original's own rule reads it
    one, many = _UNITS[unit]
    return f"{m.group(1)} {one if m.group(1) == '1' else many}"


def _heading_caps(text: str) -> str:
    """All-caps words of a heading are words, not letters to spell ("CHAPTER ONE"); short ones only
    when the whole heading is in capitals, Roman numerals never (the heading rule reads them)."""
    shouted = not re.search("[a-z]", text)

    def word(m: re.Match[str]) -> str:
        w = m.group(0)
        if num.roman_to_int(w) or w.lower() not in en_dict.words() or not (shouted or len(w) >= 4):
            return w
        return w.capitalize()

    return re.sub(r"\b[A-Z]{2,}\b", word, text)


def _scaled_money(m: re.Match[str]) -> str:
    unit = {"$": "dollars", "£": "pounds", "€": "euros"}[m.group(1)]
    return f"{m.group(2)} {m.group(3)} {unit}"


def _headings(text: str, heading: bool) -> str:
    def chapter(m: re.Match[str]) -> str:
        value = num.roman_to_int(m.group(2))
        if value is None or (m.group(2) == "I" and not heading and not m.group(1)[0].isupper()):
            return m.group(0)
        return f"{m.group(1)} {num.cardinal(value)}"

    text = _HEADING_ROMAN_RE.sub(chapter, text)
    if heading:
        m = re.fullmatch(r"\s*([IVXLCDM]+)(?:([.:])\s*(.*))?", text, re.DOTALL)
        value = num.roman_to_int(m.group(1)) if m else None
        if m and value is not None:
            text = f"{num.cardinal(value)}." + (" " + m.group(3) if m.group(3) else "")
    return text


def _our_fixes(text: str, heading: bool) -> str:
    if heading:
        text = _heading_caps(text)
    text = _SCALED_MONEY_RE.sub(_scaled_money, text)
    text = _headings(text, heading)
    text = _ROAD_RE.sub(_road, text)
    text = _TITLE_RE.sub(lambda m: _TITLES[m.group(1).lower()], text)
    text = _NUMBER_SIGN_RE.sub("number ", text)
    text = _AMPM_RE.sub(_am_pm, text)
    text = _ISO_DATE_RE.sub(_iso_date, text)
    text = _TIME_RE.sub(_time, text)
    text = _PHONE_RE.sub(_phone, text)
    text = _DECADE_RE.sub(_decade, text)
    text = _VERSION_RE.sub(lambda m: m.group(0).replace(".", " point "), text)
    text = _UNIT_RE.sub(_unit, text)
    text = _RANGE_RE.sub(r"\1 to \2", text)
    text = re.sub(r"\s*&\s*", " and ", text)
    text = text.replace("...", ".").replace("—", " ").replace("–", " ").replace("“", "").replace("”", "")
    return text.replace("‘", "")


def normalize_en(text: str, heading: bool = False) -> str:
    """Normalise English text for G2P (see module docstring)."""
    text = unicodedata.normalize("NFKC", text.replace("…", "\ue000")).replace("\ue000", "…")
    text = ascii_digits(text.replace("\u00a0", " "))
    text = _our_fixes(text, heading)
    text = _original_steps(text)
    return re.sub(r"\s+", " ", text).strip()
