"""Japanese G2P with the prosody marks GPT-SoVITS v2 expects (optional: needs ``pyopenjtalk``).

OpenJTalk's full-context labels give phones plus accent information; the marks follow the
ESPnet/r9y9 scheme the original uses: ``[`` pitch rise, ``]`` pitch fall, ``#`` accent-phrase
border (not in the v2 table: the original turns it into ``UNK``, and so do we, on purpose),
``_`` pause; the sentence start/end marks are dropped. Unvoiced vowels are read as voiced.
Works fully offline with ``pyopenjtalk-plus``, whose wheel ships the OpenJTalk dictionary.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from renderer.errors import TextError

_JA_CHARS = "A-Za-z0-9\u3005\u3040-\u30ff\u4e00-\u9fff\uff11-\uff19\uff21-\uff3a\uff41-\uff5a\uff66-\uff9d"
_RUN_RE = re.compile(f"([{_JA_CHARS}]+)")
_MARKS = {"：": ",", "；": ",", "，": ",", "。": ".", "！": "!", "？": "?", "\n": ".", "·": ",", "、": ",", "...": "…"}
_PUNCT_MAP_RE = re.compile("|".join(re.escape(k) for k in sorted(_MARKS, key=len, reverse=True)))


@functools.lru_cache(maxsize=1)
def _openjtalk() -> Any:
    try:
        import pyopenjtalk
    except ImportError as exc:
        raise TextError(
            "Japanese text needs the optional package pyopenjtalk-plus (its wheel ships the OpenJTalk "
            "dictionary, so nothing is downloaded): pip install pyopenjtalk-plus"
        ) from exc
    return pyopenjtalk


def available() -> bool:
    """True when Japanese G2P can run on this installation."""
    try:
        _openjtalk()
    except TextError:
        return False
    return True


def normalize_ja(text: str) -> str:
    """Map Japanese punctuation to the model's set and collapse runs of it (the original's only step)."""
    text = _PUNCT_MAP_RE.sub(lambda m: _MARKS[m.group(0)], text.replace("％", "パーセント"))
    text = re.sub(r"([,.!?…-])(?:\s*[,.!?…-])+", r"\1", text)
    return re.sub(r"\s+", " ", text).lstrip(" ,.!?…-").rstrip()


def _feature(pattern: str, label: str) -> int:
    m = re.search(pattern, label)
    return int(m.group(1)) if m else -50


def prosody_phones(text: str) -> list[str]:
    """Phones with prosody marks for one run of Japanese text (start/end marks removed)."""
    jtalk = _openjtalk()
    labels = jtalk.make_label(jtalk.run_frontend(text))
    phones: list[str] = []
    for n, label in enumerate(labels):
        m = re.search(r"-(.*?)\+", label)
        p3 = m.group(1) if m else "xx"
        if p3 in "AEIOU":
            p3 = p3.lower()  # unvoiced vowels read as voiced
        if p3 == "sil":
            continue  # sentence start/end: the original drops these marks
        if p3 == "pau":
            phones.append("_")
            continue
        phones.append(p3)
        a1 = _feature(r"/A:([0-9\-]+)\+", label)
        a2 = _feature(r"\+(\d+)\+", label)
        a3 = _feature(r"\+(\d+)/", label)
        f1 = _feature(r"/F:(\d+)_", label)
        a2_next = _feature(r"\+(\d+)\+", labels[n + 1]) if n + 1 < len(labels) else -50
        if a3 == 1 and a2_next == 1 and p3 in "aeiouAEIOUNcl":
            phones.append("UNK")  # accent phrase border "#", which the v2 table lacks
        elif a1 == 0 and a2_next == a2 + 1 and a2 != f1:
            phones.append("]")
        elif a2 == 1 and a2_next == 2:
            phones.append("[")
    return phones


def g2p_ja(text: str) -> list[str]:
    """Phones for normalised Japanese text: runs of Japanese through OpenJTalk, marks kept."""
    phones: list[str] = []
    for i, piece in enumerate(_RUN_RE.split(text.lower())):
        if not piece:
            continue
        if i % 2:
            phones += prosody_phones(piece)
        else:
            phones += [ch for ch in piece if not ch.isspace()]
    return phones
