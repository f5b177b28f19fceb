"""Language dispatch for normalisation, the user lexicon, and the model-input guards."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from renderer.errors import TextError
from renderer.text.langsplit import split_languages
from renderer.text.normalize_en import normalize_en
from renderer.text.normalize_zh import normalize_zh
from renderer.text.symbols import PUNCTUATION, SYMBOL_TO_ID

SUPPORTED = ("zh", "en", "ja")  # "ja" only where pyopenjtalk is installed
# Marks after which GPT-SoVITS considers a text finished (its ``splits``), in their normalised forms.
_END_MARKS = frozenset({",", ".", "?", "!", "…", "~", ":", "—"})
_PUNCT_CHARS = "".join(re.escape(p) for p in PUNCTUATION)
_SPEAKABLE_RE = re.compile(r"[^\W_]")


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


def normalize(text: str, language: str, *, heading: bool = False) -> str:
    """Normalise ``text`` of a chunk whose main language is ``language`` (idempotent).

    Chinese text keeps embedded English words (read by the English G2P). English text keeps
    embedded CJK names, normalised with the Chinese rules.
    """
    check_language(language)
    # compatibility forms first (half-width kana, compatibility ideographs, full-width digits), so that
    # the script of every character is settled before the text is split by language
    text = unicodedata.normalize("NFKC", text)
    if language == "zh":
        return normalize_zh(text)
    spans = split_languages(text, language)
    if all(span.language == language for span in spans):
        return _normalize_span(text, language, heading)
    parts = [_normalize_span(s.text, s.language, heading) for s in spans]
    return " ".join(p for p in parts if p)


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
    first_clause = re.split(f"[{_PUNCT_CHARS}]", text, maxsplit=1)[0].strip()
    if text[0] not in _END_MARKS and len(first_clause) < 4:
        text = "." + text
    if text[-1] not in _END_MARKS:
        text += "."
    return text


@dataclass(frozen=True)
class Lexicon:
    """User pronunciations: ``word -> replacement text`` or ``word -> "/PH ON ES/"`` (v2 symbols).

    Replacements are applied to the raw text before normalisation (whole words for Latin script,
    plain substrings for CJK); phone entries are used by the G2P in place of its own result.
    """

    entries: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for word, value in self.entries.items():
            if not word.strip():
                raise TextError("lexicon: empty word")
            phones = self._phones_of(value)
            if phones is not None:
                bad = [p for p in phones if p not in SYMBOL_TO_ID]
                if not phones or bad:
                    raise TextError(f"lexicon entry {word!r}: unknown phone symbols {bad or value!r}")

    @staticmethod
    def _phones_of(value: str) -> list[str] | None:
        value = value.strip()
        if len(value) >= 2 and value.startswith("/") and value.endswith("/"):
            return value[1:-1].split()
        return None

    @property
    def phones(self) -> dict[str, list[str]]:
        out = {}
        for word, value in self.entries.items():
            ph = self._phones_of(value)
            if ph is not None:
                out[word.lower()] = ph
        return out

    def apply(self, text: str) -> str:
        for word, value in self.entries.items():
            if self._phones_of(value) is not None:
                continue
            if word.isascii():
                text = re.sub(rf"(?<![\w']){re.escape(word)}(?![\w'])", value, text, flags=re.IGNORECASE)
            else:
                text = text.replace(word, value)
        return text
