"""Offline language detection and splitting of mixed text by script.

No model is needed: Chinese, Japanese and Korean are told apart from Latin-script text by their
Unicode blocks (kana means Japanese, Hangul means Korean, other Han characters follow the book's
CJK language). Digits, spaces and punctuation are neutral: they join the span before them (or the
first span when the text starts with them), so "iPhone 15" stays English and "2024年" Chinese.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CJK_LANGUAGES = frozenset({"zh", "ja", "ko", "yue"})
SUPPORTED_LANGUAGES = frozenset({"zh", "en", "ja", "ko", "yue"})

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_KANA = "\u3040-\u30ff\u31f0-\u31ff"
_HANGUL = "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af"
_LATIN = "A-Za-z\u00c0-\u024f"
HAN_RE = re.compile(f"[{_HAN}]")
_CLASS_RE = re.compile(f"(?P<han>[{_HAN}]+)|(?P<kana>[{_KANA}]+)|(?P<hangul>[{_HANGUL}]+)|(?P<latin>[{_LATIN}]+)")


@dataclass(frozen=True)
class Span:
    """A run of text in one language."""

    language: str
    text: str


def _script_counts(text: str) -> dict[str, int]:
    counts = {"han": 0, "kana": 0, "hangul": 0, "latin_words": 0}
    for m in _CLASS_RE.finditer(text):
        kind = m.lastgroup or ""
        if kind == "latin":
            counts["latin_words"] += 1
        else:
            counts[kind] += len(m.group())
    return counts


def _cjk_language(default: str, kana: bool = False, hangul: bool = False) -> str:
    if kana:
        return "ja"
    if hangul:
        return "ko"
    return default if default in CJK_LANGUAGES else "zh"


def detect_language(text: str, default: str) -> str:
    """The dominant language of ``text``; ``default`` when the text has no letters.

    Two CJK characters weigh as much as one English word (a ratio of typical syllables), so
    "他说 OK" is Chinese and "Mr. Wang (王先生) arrived" is English.
    """
    c = _script_counts(text)
    cjk = c["han"] + c["kana"] + c["hangul"]
    if cjk == 0 and c["latin_words"] == 0:
        return default
    if cjk > 0 and cjk / 2 >= c["latin_words"]:
        if c["kana"] > 0:
            return "ja"
        if c["hangul"] > c["han"]:
            return "ko"
        return _cjk_language(default)
    return "en"


def split_languages(text: str, default: str) -> list[Span]:
    """Split ``text`` into consecutive language spans whose texts concatenate to ``text``."""
    spans: list[list[str]] = []  # [language, text]
    pending = ""
    pos = 0
    has_kana = bool(re.search(f"[{_KANA}]", text))
    for m in _CLASS_RE.finditer(text):
        neutral = text[pos : m.start()]
        kind = m.lastgroup
        if kind == "latin":
            lang = "en"
        else:
            lang = _cjk_language(default, kana=has_kana or kind == "kana", hangul=kind == "hangul")
        if spans:
            spans[-1][1] += neutral
        else:
            pending += neutral
        if spans and spans[-1][0] == lang:
            spans[-1][1] += m.group()
        else:
            spans.append([lang, pending + m.group()])
            pending = ""
        pos = m.end()
    tail = text[pos:]
    if spans:
        spans[-1][1] += tail
    elif pending + tail:
        spans.append([default, pending + tail])
    return [Span(lang, t) for lang, t in spans]
