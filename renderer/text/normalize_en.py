"""Deterministic English text normalisation: numbers, money, dates, times, units, abbreviations.

The output keeps letter case (the G2P uses it to spell acronyms) and only the punctuation the
model has symbols for (``, . ! ? … -``) plus apostrophes inside words. Applying it twice gives the
same text as applying it once.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from renderer.text import numbers_en as num
from renderer.text.normalize_zh import ascii_digits

_NUM = r"\d+(?:,\d{3})*(?:\.\d+)?"
_SCALE = r"(?:\s(thousand|million|billion|trillion))?"

_CURRENCIES = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "€": ("euro", "euros", "cent", "cents"),
    "¥": ("yen", "yen", "sen", "sen"),
}
_UNITS = {
    "km": ("kilometer", "kilometers"),
    "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"),
    "m": ("meter", "meters"),
    "kg": ("kilogram", "kilograms"),
    "mg": ("milligram", "milligrams"),
    "g": ("gram", "grams"),
    "lb": ("pound", "pounds"),
    "lbs": ("pounds", "pounds"),
    "oz": ("ounce", "ounces"),
    "ft": ("foot", "feet"),
    "mi": ("mile", "miles"),
    "mph": ("mile per hour", "miles per hour"),
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "kph": ("kilometer per hour", "kilometers per hour"),
    "ml": ("milliliter", "milliliters"),
    "kb": ("kilobyte", "kilobytes"),
    "mb": ("megabyte", "megabytes"),
    "gb": ("gigabyte", "gigabytes"),
    "tb": ("terabyte", "terabytes"),
    "hz": ("hertz", "hertz"),
    "khz": ("kilohertz", "kilohertz"),
    "mhz": ("megahertz", "megahertz"),
    "ghz": ("gigahertz", "gigahertz"),
    "kw": ("kilowatt", "kilowatts"),
    "°c": ("degree Celsius", "degrees Celsius"),
    "°f": ("degree Fahrenheit", "degrees Fahrenheit"),
    "°": ("degree", "degrees"),
}
# Abbreviations always expanded (titles before names, Latin phrases, months...).
_ABBREVIATIONS = {
    "mr": "Mister",
    "messrs": "Messers",
    "mme": "Madame",
    "mlle": "Mademoiselle",
    "esq": "Esquire",
    "mrs": "Missus",
    "ms": "Miz",
    "prof": "Professor",
    "capt": "Captain",
    "col": "Colonel",
    "gen": "General",
    "lt": "Lieutenant",
    "sgt": "Sergeant",
    "rev": "Reverend",
    "hon": "Honorable",
    "gov": "Governor",
    "sen": "Senator",
    "jr": "Junior",
    "sr": "Senior",
    "mt": "Mount",
    "ft": "Fort",
    "vs": "versus",
    "etc": "et cetera",
    "approx": "approximately",
    "dept": "department",
    "inc": "Incorporated",
    "ltd": "Limited",
    "co": "Company",
    "corp": "Corporation",
    "ave": "Avenue",
    "blvd": "Boulevard",
    "jan": "January",
    "feb": "February",
    "aug": "August",
    "sept": "September",
    "oct": "October",
    "nov": "November",
    "dec": "December",
    # First names abbreviated in 18th/19th-century print ("Wm. Lloyd Garrison")
    "wm": "William",
    "chas": "Charles",
    "thos": "Thomas",
    "jas": "James",
    "geo": "George",
    "benj": "Benjamin",
    "robt": "Robert",
    "saml": "Samuel",
    "jno": "John",
    "edw": "Edward",
    "richd": "Richard",
}
_LATIN = {"e.g.": "for example", "i.e.": "that is", "a.m.": "AM", "p.m.": "PM", "cf.": "compare", "viz.": "namely"}
HEADING_WORDS = ("chapter", "part", "book", "volume", "act", "scene", "section", "canto", "letter", "stave")

_INVISIBLE_RE = re.compile("[\u00ad\u200b-\u200f\u2060-\u2064\ufeff]")  # soft hyphen, zero-width marks
_QUOTES_RE = re.compile('["“”„‟«»‹›]')
_SINGLE_QUOTE_RE = re.compile(r"(?:(?<![A-Za-z])['‘’]|['‘’](?![A-Za-z]))")
_DASH_RE = re.compile(r"\s*(?:—|–|―|--+)\s*")
_BRACKET_RE = re.compile(r"\s*[()\[\]{}]\s*")
_PUNCT_RUN_RE = re.compile(r"([,.!?…-])(?:\s*[,.!?…-])+")
_SPACE_BEFORE_PUNCT_RE = re.compile(r"\s+([,.!?…])")
_LEADING_PUNCT_RE = re.compile(r"^[\s,.!?-]+")


def _money(m: re.Match[str]) -> str:
    one, many, sub_one, sub_many = _CURRENCIES[m.group(1)]
    amount, scale = m.group(2), m.group(3)
    if scale:
        return f"{num.number(amount)} {scale} {many}"
    whole, _, frac = amount.replace(",", "").partition(".")
    units = int(whole or 0)
    words = f"{num.cardinal(units)} {one if units == 1 else many}"
    if frac and len(frac) == 2 and int(frac):
        cents = int(frac)
        sub = sub_one if cents == 1 else sub_many
        words = f"{words} and {num.cardinal(cents)} {sub}" if units else f"{num.cardinal(cents)} {sub}"
    elif frac and len(frac) != 2:
        words = f"{num.decimal(amount.replace(',', ''))} {many}"
    return words


def _time(m: re.Match[str]) -> str:
    hour, minute, second, suffix = int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)
    words = num.cardinal(hour)
    if minute == 0 and not suffix and not second:
        words += " o'clock"
    elif minute:
        words += " " + (f"oh {num.cardinal(minute)}" if minute < 10 else num.cardinal(minute))
    if second:
        words += f" and {num.cardinal(int(second))} seconds"
    if suffix:
        words += " " + ("AM" if suffix[0].lower() == "a" else "PM")
    return words


def _unit(m: re.Match[str]) -> str:
    value = m.group(1)
    one, many = _UNITS[m.group(2).lower()]
    return f"{num.number(value)} {one if value == '1' else many}"


def _decade(digits_text: str) -> str:
    """ "1990" -> "nineteen nineties", "60" -> "sixties", "1900" -> "nineteen hundreds"."""
    value = int(digits_text)
    words = (num.year(value) if value >= 1000 else num.cardinal(value)).split()
    last = words[-1]
    words[-1] = last[:-1] + "ies" if last.endswith("y") else last + "s"
    return " ".join(words)


def _iso_date(m: re.Match[str]) -> str:
    year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return m.group(0)
    return f"{_MONTHS[month - 1]} {num.ordinal(day)}, {num.year(year)}"


def _phone_number(m: re.Match[str]) -> str:
    groups = [g for g in m.groups() if g]
    return ", ".join(num.digits(g) for g in groups)


def _fraction(m: re.Match[str]) -> str:
    top, bottom = int(m.group(1)), int(m.group(2))
    if bottom == 2:
        return "one half" if top == 1 else f"{num.cardinal(top)} halves"
    if bottom == 4:
        return "one quarter" if top == 1 else f"{num.cardinal(top)} quarters"
    name = num.ordinal(bottom)
    return f"{num.cardinal(top)} {name if top == 1 else name + 's'}"


def _plain_number(m: re.Match[str]) -> str:
    text = m.group(0)
    plain = text.replace(",", "")
    if "." not in plain and "," not in text and len(plain) == 4 and 1100 <= int(plain) <= 2099:
        return num.year(int(plain))
    return num.number(text)


_SENTENCE_FINAL_ABBREVIATIONS = frozenset(
    {"etc", "inc", "ltd", "co", "corp", "jr", "sr", "esq", "approx", "dept", "st", "dr"}
)
_SENTENCE_STARTERS_RE = re.compile(
    r"\s+(The|A|An|He|She|It|I|We|They|You|This|That|There|These|Those|But|And|So|Then|In|On|At|His|Her|My)\b"
)
_MONTHS = "January February March April May June July August September October November December".split()


def _abbreviation(m: re.Match[str]) -> str:
    low = m.group(1).lower()
    rest = m.string[m.end() :]
    nxt = re.match(r"\s+([\"“(]?\w)", rest)
    capital_next = bool(nxt) and nxt.group(1)[-1].isupper()  # type: ignore[union-attr]
    if low in ("st", "dr"):
        # "St. Paul", "Dr. Jones" are titles; "Baker St. The house", "Mulholland Dr. is" are roads.
        # Only the next word decides, so a chunk boundary before "Dr." cannot change the reading.
        title = capital_next and not (nxt and _SENTENCE_STARTERS_RE.match(rest))
        full = {"st": ("Saint", "Street"), "dr": ("Doctor", "Drive")}[low][0 if title else 1]
    elif low == "no":
        if not re.match(r"\s*\d", rest):
            return m.group(0)
        full = "number"
    else:
        full = _ABBREVIATIONS[low]
    # The abbreviation's period may also end the sentence ("..., etc. The next").
    first_alnum = re.search(r"[^\W_]", rest)
    final = (first_alnum is None or not first_alnum.group().islower()) and full not in ("Saint", "Doctor")
    final = final and rest.lstrip()[:1] not in tuple(",;:!?…")  # "etc.," : the comma takes over
    ends = low in _SENTENCE_FINAL_ABBREVIATIONS and final
    return full + ("." if ends else "")


_ABBR_NAMES = sorted(set(_ABBREVIATIONS) | {"st", "dr", "no"}, key=len, reverse=True)
_ABBR_RE = re.compile(r"\b(" + "|".join(_ABBR_NAMES) + r")\.", re.IGNORECASE)
_LATIN_RE = re.compile("|".join(re.escape(k) for k in _LATIN), re.IGNORECASE)
_HEADING_ROMAN_RE = re.compile(r"\b(" + "|".join(HEADING_WORDS) + r")\s+([IVXLCDM]+)\b", re.IGNORECASE)

_RULES: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    (re.compile(r"(?<![\w.])-(?=\d)"), "minus "),
    (re.compile(r"([$£€¥])\s?(" + _NUM + ")" + _SCALE), _money),
    (re.compile(r"\b(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s?([AaPp])\.?[Mm]\.?(?![A-Za-z]))?"), _time),
    (re.compile(r"(" + _NUM + r")\s?%"), lambda m: num.number(m.group(1)) + " percent"),
    (re.compile(r"(?<![\w.])(?:'|’)?((?:1[1-9]|20)?\d0)s\b"), lambda m: _decade(m.group(1))),
    (re.compile(r"(?<![\w.-])(?:\((\d{3})\)\s?|(\d{3})-)(\d{3})-(\d{4})(?![\w-])"), _phone_number),
    (re.compile(r"\b(\d+)(?:st|nd|rd|th)\b", re.IGNORECASE), lambda m: num.ordinal(int(m.group(1)))),
    (re.compile(r"\b(\d+)/(\d+)\b"), _fraction),
    (
        re.compile(
            r"("
            + _NUM
            + r")\s?(km/h|°[CF]|°|"
            + "|".join(k for k in _UNITS if k[0] != "°" and k != "km/h")
            + r")(?![A-Za-z0-9])",
            re.IGNORECASE,
        ),
        _unit,
    ),
    (re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b"), _iso_date),
    (re.compile(r"(?<![\w.])(\d+)\s?[–-]\s?(\d+)(?![\w-]|\.\d)"), r"\1 to \2"),
    (
        re.compile(r"\b(" + "|".join(_MONTHS) + r")\s+(\d{1,2})\b(?![.:,]\d)"),
        lambda m: f"{m.group(1)} {num.ordinal(int(m.group(2)))}" if 1 <= int(m.group(2)) <= 31 else m.group(0),
    ),
    (re.compile(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])"), " "),  # "CC0", "MP3", "4K"
    (re.compile(r"(?<![\w.])\.(\d+)"), lambda m: "point " + num.digits(m.group(1))),
    (re.compile(r"\d+(?:\.\d+){2,}"), lambda m: " point ".join(num.number(p) for p in m.group(0).split("."))),
    (re.compile(r"(?<![\w.])" + _NUM + r"(?!\.\d)"), _plain_number),
    (re.compile(r"\s*&\s*"), " and "),
    (re.compile(r"\s*\+\s*"), " plus "),
    (re.compile(r"\s*=\s*"), " equals "),
    (re.compile(r"@"), " at "),
    (re.compile(r"#(?=\d)"), "number "),
]


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
            text = num.cardinal(value) + "." + (" " + m.group(3) if m.group(3) else "")
    return text


def map_punctuation(text: str) -> str:
    """Map typographic punctuation to the model's set and tidy spacing."""
    text = text.replace("...", "…").replace(". . .", "…").replace("。", ". ").replace("、", ", ")
    text = re.sub("[「」『』《》〈〉【】〔〕]", " ", text)
    text = _QUOTES_RE.sub(" ", text)
    text = _SINGLE_QUOTE_RE.sub(" ", text)
    text = text.replace("’", "'").replace("‘", "'")
    text = _DASH_RE.sub(", ", text)
    text = _BRACKET_RE.sub(", ", text)
    text = re.sub(r"[;:]", ",", text)
    text = re.sub(r"[*_~|<>^`\\/]", " ", text)
    text = re.sub(r"\s+", " ", text)
    text = _SPACE_BEFORE_PUNCT_RE.sub(r"\1", text)
    text = _PUNCT_RUN_RE.sub(r"\1", text)
    text = _LEADING_PUNCT_RE.sub("", text)
    return re.sub(r"([,.!?…])(?=[A-Za-z])", r"\1 ", text).strip()


def _strip_accents(text: str) -> str:
    if text.isascii():
        return text
    out = []
    for ch in text:
        if ord(ch) < 0x250 and unicodedata.category(ch).startswith("L"):
            out.append(unicodedata.normalize("NFKD", ch)[0])
        else:
            out.append(ch)
    return "".join(out)


def _latin(m: re.Match[str]) -> str:
    full = _LATIN[m.group(0).lower()]
    rest = m.string[m.end() :]
    # "at 4 p.m. Then..." : the abbreviation's period also ended the sentence
    ends = full in ("AM", "PM") and (not rest.strip() or re.match(r"\s+[A-Z\"“]", rest) is not None)
    return " " + full + ("." if ends else "") + " "


def normalize_en(text: str, heading: bool = False) -> str:
    """Normalise English text for G2P (see module docstring)."""
    text = _strip_accents(ascii_digits(unicodedata.normalize("NFKC", text).replace("\u00a0", " ")))
    text = re.sub(r"[*_~|<>^`\\]", " ", text)  # separators: "_0" must read like " 0"
    text = _INVISIBLE_RE.sub("", text)
    text = _headings(text, heading)
    text = _LATIN_RE.sub(_latin, text)
    text = _ABBR_RE.sub(_abbreviation, text)
    for pattern, repl in _RULES:
        text = pattern.sub(repl, text)
    return map_punctuation(text)
