"""Chinese G2P: jieba words -> pinyin (pypinyin phrases or G2PW) -> tone sandhi -> v2 phones.

Each Han character becomes two phones (an initial and a toned final, the zero initial written
``AA``/``EE``/``OO``/``y``/``w``) and each punctuation mark one phone; ``word2ph`` counts the
phones of every character of the input.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable

import jieba
import jieba.posseg as psg
from pypinyin import Style, lazy_pinyin
from pypinyin.constants import PHRASES_DICT
from pypinyin.contrib.tone_convert import to_finals_tone3, to_initials

from renderer.text import tone_sandhi
from renderer.text.sandhi_words import MUST_ERHUA, NOT_ERHUA
from renderer.text.symbols import PUNCTUATION

jieba.setLogLevel(logging.WARNING)  # no 'Building prefix dict' chatter on stderr

_ZERO_INITIAL = {"a": "AA", "e": "EE", "o": "OO"}
_Y_FINALS = {"a": "a", "an": "En", "ang": "ang", "ao": "ao", "e": "E", "i": "i", "in": "in", "ing": "ing", "o": "o",
             "ong": "ong", "ou": "ou", "u": "v", "v": "v", "uan": "van", "van": "van", "ue": "ve", "ve": "ve",
             "un": "vn", "vn": "vn"}  # fmt: skip
_RETROFLEX = ("zh", "ch", "sh", "r")
_SPECIAL_SYLLABLES = {"n": ("EE", "en"), "ng": ("EE", "eng"), "m": ("m", "u"), "hm": ("h", "en"), "hng": ("h", "eng")}
_PUNCT = frozenset(PUNCTUATION)
_SENTENCE_SPLIT_RE = re.compile("(?<=[" + "".join(re.escape(p) for p in PUNCTUATION) + r"])")

# Returns TONE3 pinyin (neutral tone "5") for every character of a sentence.
SentencePinyin = Callable[[str], list[str]]


@functools.lru_cache(maxsize=4096)
def pinyin_to_phones(pinyin: str) -> tuple[str, str] | None:
    """Toneless pinyin syllable (``"zhi"``, ``"yuan"``, ``"lv"``) -> (initial, final) v2 symbols."""
    if pinyin in _SPECIAL_SYLLABLES:
        return _SPECIAL_SYLLABLES[pinyin]
    if pinyin[:1] in _ZERO_INITIAL:
        return _ZERO_INITIAL[pinyin[0]], pinyin
    if pinyin.startswith("y"):
        final = _Y_FINALS.get(pinyin[1:])
        return ("y", final) if final else None
    if pinyin.startswith("w"):
        return "w", pinyin[1:] or "u"
    initial = pinyin[:2] if pinyin[:2] in ("zh", "ch", "sh") else pinyin[:1]
    final = pinyin[len(initial) :]
    if not final or not initial.isalpha():
        return None
    if final == "i" and initial in _RETROFLEX:
        final = "ir"
    elif final == "i" and initial in ("z", "c", "s"):
        final = "i0"
    elif initial in ("j", "q", "x") and final[0] in "uv":
        final = "v" + final[1:]
        final = {"vn": "vn", "van": "van", "ve": "ve", "v": "v"}.get(final, final)
    return initial, final


def _syllable(initial: str, final_tone3: str) -> list[str]:
    """pypinyin strict initial + FINALS_TONE3 -> two v2 phones (UNK pair when not a Mandarin syllable)."""
    tone = final_tone3[-1] if final_tone3[-1:] in "12345" and final_tone3 else "5"
    final = final_tone3[:-1] if final_tone3[-1:].isdigit() else final_tone3
    if initial:
        final = {"uei": "ui", "iou": "iu", "uen": "un"}.get(final, final)
        pinyin = initial + final
    else:
        whole = {"ing": "ying", "i": "yi", "in": "yin", "u": "wu"}.get(final)
        if whole is None:
            first = {"v": "yu", "i": "y", "u": "w"}.get(final[:1], final[:1])
            whole = first + final[1:]
        pinyin = whole
    pair = pinyin_to_phones(pinyin)
    if pair is None:
        return ["UNK", "UNK"]
    return [pair[0], pair[1] + tone]


@functools.lru_cache(maxsize=200_000)
def _word_initials_finals(word: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    initials = lazy_pinyin(word, neutral_tone_with_five=True, style=Style.INITIALS)
    finals = tone_sandhi.word_finals(word)
    return tuple(initials), finals


def _erhua(initials: list[str], finals: list[str], word: str, pos: str) -> tuple[list[str], list[str]]:
    """儿 after a syllable takes that syllable's tone (it keeps its own two phones)."""
    if finals and word[-1:] == "儿" and finals[-1] == "er1":
        finals[-1] = "er2"
    if word not in MUST_ERHUA and (word in NOT_ERHUA or pos in {"a", "j", "nr"}):
        return initials, finals
    if len(finals) != len(word) or len(word) < 2:
        return initials, finals
    if word[-1] == "儿" and finals[-1] in {"er2", "er5"} and word[-2:] not in NOT_ERHUA:
        finals[-1] = "er" + finals[-2][-1]
    return initials, finals


def _from_pinyin(word: str, pinyins: list[str]) -> tuple[list[str], list[str]]:
    initials, finals = [], []
    for py in pinyins:
        if py and py[0].isalpha():
            initials.append(to_initials(py, strict=True))
            finals.append(to_finals_tone3(py, strict=True, neutral_tone_with_five=True))
        else:
            initials.append(py)
            finals.append(py)
    return initials, finals


def _segment_phones(seg: str, sentence_pinyin: SentencePinyin | None) -> tuple[list[str], list[int]]:
    phones: list[str] = []
    word2ph: list[int] = []
    words = tone_sandhi.pre_merge([(w.word, w.flag) for w in psg.lcut(seg)])
    pinyins = sentence_pinyin(seg) if sentence_pinyin else None
    offset = 0
    for word, pos in words:
        if pinyins is not None:
            word_pinyins = pinyins[offset : offset + len(word)]
            if len(word) > 1 and word in PHRASES_DICT:  # dictionary phrases override the model
                word_pinyins = lazy_pinyin(word, style=Style.TONE3, neutral_tone_with_five=True)
            initials, finals = _from_pinyin(word, word_pinyins)
        else:
            ini, fin = _word_initials_finals(word)
            initials, finals = list(ini), list(fin)
        offset += len(word)
        finals = tone_sandhi.modified_tone(word, pos, finals)
        initials, finals = _erhua(initials, finals, word, pos)
        for c, v in zip(initials, finals, strict=False):
            if c == v:  # punctuation (pypinyin returns non-Han text unchanged)
                for ch in c:
                    if ch.isspace():
                        word2ph.append(0)  # spaces next to embedded English words are silent
                        continue
                    phones.append(ch if ch in _PUNCT else "UNK")
                    word2ph.append(1)
            else:
                phones += _syllable(c, v)
                word2ph.append(2)
    return phones, word2ph


def g2p_zh(text: str, sentence_pinyin: SentencePinyin | None = None) -> tuple[list[str], list[int]]:
    """Phones and per-character phone counts for normalised Chinese text (Han + model punctuation).

    ``sentence_pinyin`` (e.g. a G2PW model) replaces pypinyin's per-word lookup for polyphones.
    Characters other than Han and punctuation must have been removed by the normaliser; any left
    become ``UNK`` so that ``word2ph`` still has one entry per character.
    """
    phones: list[str] = []
    word2ph: list[int] = []
    for seg in _SENTENCE_SPLIT_RE.split(text):
        if seg.strip():
            p, w = _segment_phones(seg, sentence_pinyin)
            phones += p
            word2ph += w
        else:
            word2ph += [0] * len(seg)
    return phones, word2ph
