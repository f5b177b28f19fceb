"""Offline language detection and splitting of mixed text, decided per span by script.

No model is needed: Latin words are English, kana runs Japanese, Hangul Korean. Han characters
are decided per run, not per chunk: a Han run touching kana is Japanese ("東京タワー"), except
for its part up to the last character that only Chinese writes (们, 这, 说, 了 ... see
``ZH_ONLY``: "去了東京タワー" = 去了 + 東京タワー); a Han run with such a character is Chinese;
any other Han run follows the chunk's CJK language. So "我们 today 去了東京タワー" is
zh "我们 ", en "today ", zh "去了", ja "東京タワー".

Digits, spaces and punctuation are neutral: they join the span before them (or the first span
when the text starts with them), so "iPhone 15" stays English and "2024年" Chinese.
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
KANA_RE = re.compile(f"[{_KANA}]")
_CLASS_RE = re.compile(f"(?P<han>[{_HAN}]+)|(?P<kana>[{_KANA}]+)|(?P<hangul>[{_HANGUL}]+)|(?P<latin>[{_LATIN}]+)")
# Characters that simplified Chinese writes and Japanese does not (particles and common simplified forms
# whose Japanese form differs); chosen so that none is a Japanese shinjitai.
ZH_ONLY = frozenset("了们这说吗呢吧么还给让对时个谁啥咱俩东车门见长发经过进应该现问题听话买卖头飞鸟鱼龙")


@dataclass(frozen=True)
class Span:
    """A run of text in one language."""

    language: str
    text: str


def _cjk_default(default: str) -> str:
    return default if default in CJK_LANGUAGES else "zh"


def _runs(text: str, default: str) -> list[tuple[str, int, int]]:
    """(language, start, end) for each script run; Han runs decided by their neighbours."""
    matches = list(_CLASS_RE.finditer(text))
    runs: list[tuple[str, int, int]] = []
    for k, m in enumerate(matches):
        kind = m.lastgroup
        if kind == "latin":
            runs.append(("en", m.start(), m.end()))
        elif kind == "kana":
            runs.append(("ja", m.start(), m.end()))
        elif kind == "hangul":
            runs.append(("ko", m.start(), m.end()))
        else:
            before = matches[k - 1] if k else None
            after = matches[k + 1] if k + 1 < len(matches) else None
            runs += _han_runs(m, before, after, default)
    return runs


def _han_runs(m: re.Match[str], before: re.Match[str] | None, after: re.Match[str] | None, default: str) -> list:
    start, end, run = m.start(), m.end(), m.group()
    kana_before = before is not None and before.lastgroup == "kana" and before.end() == start
    kana_after = after is not None and after.lastgroup == "kana" and after.start() == end
    if kana_after and not kana_before:
        cut = max((i + 1 for i, ch in enumerate(run) if ch in ZH_ONLY), default=0)
        return ([("zh", start, start + cut)] if cut else []) + ([("ja", start + cut, end)] if cut < len(run) else [])
    if kana_before and not kana_after:
        cut = next((i for i, ch in enumerate(run) if ch in ZH_ONLY), len(run))
        return ([("ja", start, start + cut)] if cut else []) + ([("zh", start + cut, end)] if cut < len(run) else [])
    if kana_before and kana_after:
        return [("ja", start, end)]
    if any(ch in ZH_ONLY for ch in run):
        return [("zh", start, end)]
    return [(_cjk_default(default), start, end)]


def split_languages(text: str, default: str) -> list[Span]:
    """Split ``text`` into consecutive language spans whose texts concatenate to ``text``."""
    spans: list[list[str]] = []  # [language, text]
    pos = 0
    for lang, start, end in _runs(text, default):
        neutral = text[pos:start]
        if spans:
            spans[-1][1] += neutral
            if spans[-1][0] == lang:
                spans[-1][1] += text[start:end]
            else:
                spans.append([lang, text[start:end]])
        else:
            spans.append([lang, neutral + text[start:end]])
        pos = end
    tail = text[pos:]
    if spans:
        spans[-1][1] += tail
    elif tail:
        spans.append([default, tail])
    return [Span(lang, t) for lang, t in spans]


def detect_language(text: str, default: str) -> str:
    """The dominant language of ``text``; ``default`` when the text has no letters.

    Two CJK characters weigh as much as one English word (a ratio of typical syllables), so
    "他说 OK" is Chinese and "Mr. Wang (王先生) arrived" is English. Among CJK languages the
    default keeps the chunk when it has at least a third of the CJK characters (a Chinese book's
    sentence naming 東京タワー stays Chinese; its spans are still read per language).
    """
    weights: dict[str, float] = {}
    for lang, start, end in _runs(text, default):
        size = 1.0 if lang == "en" else (end - start) / 2
        weights[lang] = weights.get(lang, 0.0) + size
    if not weights:
        return default
    cjk = sum(w for lang, w in weights.items() if lang != "en")
    if cjk == 0 or cjk < weights.get("en", 0.0):
        return "en"
    if weights.get(_cjk_default(default), 0.0) * 3 >= cjk:
        return _cjk_default(default)
    return max((lang for lang in weights if lang != "en"), key=lambda lang: weights[lang])
