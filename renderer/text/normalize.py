"""Language dispatch for normalisation, invisible-character clean-up, and the model-input guards."""

from __future__ import annotations

import re
import unicodedata

from renderer.errors import TextError
from renderer.text.langsplit import KANA_RE, split_languages
from renderer.text.lexicon import Lexicon
from renderer.text.normalize_en import normalize_en
from renderer.text.normalize_zh import normalize_zh
from renderer.text.symbols import SYMBOL_TO_ID

SUPPORTED = ("zh", "en", "ja")  # "ja" only where pyopenjtalk is installed
# Marks after which GPT-SoVITS considers a text finished (its ``splits``), in their normalised forms.
_END_MARKS = frozenset({",", ".", "?", "!", "…", "~", ":", "—"})
# The marks at which the original looks for the first clause (its ``splits``): "-" is not one of them.
_SPLITS_RE = re.compile("[，。？！,.?!~:：—…]")
_SPEAKABLE_RE = re.compile(r"[^\W_]")
# Terminal escape sequences (colours, cursor moves, titles) are markup, never words: "\x1b[31mred".
_ANSI_RE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])|\x9b[0-?]*[ -/]*[@-~]")
PHONE_GROUP_RE = re.compile(r"(\{[^{}]*\})")  # "{HH AH0 L OW1}": phones written by the user lexicon
_ELLIPSIS = "\ue000"  # keeps "…" through NFKC (which would make it "...")


def check_language(language: str) -> None:
    """Raise TextError for languages the frontend cannot phonemise."""
    if language in ("zh", "en"):
        return
    if language == "ja":
        from renderer.text.g2p_ja import _openjtalk

        _openjtalk()  # raises TextError naming the missing package
        return
    raise TextError(f"language {language!r} is not supported by the text frontend (supported: zh, en, ja)")


def is_speakable(text: str) -> bool:
    """True when ``text`` has at least one letter, digit or CJK character (not only punctuation)."""
    return bool(_SPEAKABLE_RE.search(text))


def strip_invisible(text: str) -> str:
    """Drop what is never read aloud: terminal escape sequences, control characters (tabs and line
    breaks become spaces) and Unicode format characters (bidi overrides such as U+202E, zero-width
    marks, soft hyphens, BOM)."""
    text = _ANSI_RE.sub("", text)
    if text.isascii() and text.isprintable():
        return text
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat == "Cf" or (cat == "Cc" and ch not in "\t\n\r"):
            continue
        out.append(" " if ch in "\t\n\r" else ch)
    return "".join(out)


def normalize(text: str, language: str, *, heading: bool = False) -> str:
    """Normalise ``text`` of a chunk whose main language is ``language`` (idempotent).

    Chinese text keeps embedded English words (read by the English G2P). English text keeps
    embedded CJK names, normalised with the Chinese rules. ``{...}`` phone groups (from the user
    lexicon) pass through unchanged.
    """
    check_language(language)
    text = strip_invisible(text)
    # compatibility forms first (half-width kana, compatibility ideographs, full-width digits), so that
    # the script of every character is settled before the text is split by language
    text = unicodedata.normalize("NFKC", text.replace("…", _ELLIPSIS)).replace(_ELLIPSIS, "…")
    if "{" in text:
        # Only groups of known phones are phones; other braces are ordinary text (and dropped).
        parts = PHONE_GROUP_RE.split(text)
        merged = [parts[0]]
        for i in range(1, len(parts), 2):
            if is_phone_group(parts[i]):
                merged += [parts[i], parts[i + 1]]
            else:
                merged[-1] += parts[i] + parts[i + 1]
        done = [p if i % 2 else _normalize_text(p, language, heading) for i, p in enumerate(merged)]
        return re.sub(r"\s+", " ", " ".join(p for p in done if p)).strip()
    return _normalize_text(text, language, heading)


def is_phone_group(group: str) -> bool:
    """True for "{PH ON ES}" whose every phone is in the v2 symbol table."""
    phones = group[1:-1].split()
    return bool(phones) and all(p in SYMBOL_TO_ID for p in phones)


def _normalize_text(text: str, language: str, heading: bool) -> str:
    if language == "zh" and not KANA_RE.search(text):
        return normalize_zh(text)
    spans = split_languages(text, language)
    if all(span.language == language for span in spans):
        return _normalize_span(text, language, heading)
    out = ""
    for part in (_normalize_span(s.text, s.language, heading) for s in spans):
        if part and out and (_latin(out[-1]) or _latin(part[0])):
            out += " "  # a space only where an English word meets its neighbour
        out += part
    return out


def _latin(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def _normalize_span(text: str, language: str, heading: bool) -> str:
    if language == "en":
        return normalize_en(text, heading=heading)
    if language == "ja":
        from renderer.text.g2p_ja import available, normalize_ja

        if available():
            return normalize_ja(text)
    return normalize_zh(text)


def model_text(norm: str, language: str) -> str:
    """GPT-SoVITS's guards on one request text: a leading '.' before a very short first clause
    (the model otherwise swallows it) and a final '.' when the text does not end with a mark."""
    text = norm.strip()
    if not text:
        return text
    first_clause = _SPLITS_RE.split(text, maxsplit=1)[0].strip()
    if text[0] not in _END_MARKS and len(first_clause) < 4:
        text = "." + text
    if text[-1] not in _END_MARKS:
        text += "."
    return text


__all__ = ["Lexicon", "check_language", "is_speakable", "model_text", "normalize", "strip_invisible"]
