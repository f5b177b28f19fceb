"""Mandarin tone sandhi on jieba-segmented words.

The rules are the conventional ones of the PaddleSpeech frontend that GPT-SoVITS uses (so tones
match what the models were trained with): 不 and 一 sandhi, neutral tones (particles,
reduplication, fixed words), third-tone sandhi, and the word merges that make those rules see
whole words. ``finals`` are pypinyin FINALS_TONE3 strings with "5" for the neutral tone.
"""

from __future__ import annotations

import functools
import logging

import jieba
from pypinyin import Style, lazy_pinyin

from renderer.text.sandhi_words import (
    MUST_NEUTRAL_TONE_WORDS,
    MUST_NOT_NEUTRAL_TONE_WORDS,
    NEUTRAL_ENDINGS,
    SANDHI_PUNCT,
)

jieba.setLogLevel(logging.WARNING)  # no 'Building prefix dict' chatter on stderr

Seg = list[list[str]]  # [[word, pos], ...]


@functools.lru_cache(maxsize=200_000)
def word_finals(word: str) -> tuple[str, ...]:
    """pypinyin finals with tone number (5 = neutral) for each character of ``word``."""
    return tuple(lazy_pinyin(word, neutral_tone_with_five=True, style=Style.FINALS_TONE3))


def _retone(final: str, tone: str) -> str:
    return final[:-1] + tone


def _all_third(finals: list[str] | tuple[str, ...]) -> bool:
    return all(f[-1] == "3" for f in finals)


@functools.lru_cache(maxsize=50_000)
def split_word(word: str) -> tuple[str, str]:
    """Split a word into two parts around its shortest jieba search sub-word."""
    parts = sorted(jieba.cut_for_search(word), key=len)
    first = parts[0]
    if word.find(first) == 0:
        return first, word[len(first) :]
    return word[: -len(first)], first


def _neutral_sandhi(word: str, pos: str, finals: list[str]) -> list[str]:
    for j in range(1, len(word)):
        if word[j] == word[j - 1] and pos[:1] in {"n", "v", "a"} and word not in MUST_NOT_NEUTRAL_TONE_WORDS:
            finals[j] = _retone(finals[j], "5")
    ge = word.find("个")
    last = word[-1:]
    if last and last in NEUTRAL_ENDINGS:
        finals[-1] = _retone(finals[-1], "5")
    elif last and last in "的地得":
        finals[-1] = _retone(finals[-1], "5")
    elif len(word) == 1 and word in "了着过" and pos in {"ul", "uz", "ug"}:
        finals[-1] = _retone(finals[-1], "5")
    elif len(word) > 1 and last in "们子" and pos in {"r", "n"} and word not in MUST_NOT_NEUTRAL_TONE_WORDS:
        finals[-1] = _retone(finals[-1], "5")
    elif len(word) > 1 and last in "上下里" and pos in {"s", "l", "f"}:
        finals[-1] = _retone(finals[-1], "5")
    elif len(word) > 1 and last in "来去" and word[-2] in "上下进出回过起开":
        finals[-1] = _retone(finals[-1], "5")
    elif (ge >= 1 and (word[ge - 1].isnumeric() or word[ge - 1] in "几有两半多各整每做是")) or word == "个":
        finals[ge] = _retone(finals[ge], "5")
    elif word in MUST_NEUTRAL_TONE_WORDS or word[-2:] in MUST_NEUTRAL_TONE_WORDS:
        finals[-1] = _retone(finals[-1], "5")
    head, tail = split_word(word)
    parts = [finals[: len(head)], finals[len(head) :]]
    for i, sub in enumerate((head, tail)):
        if parts[i] and (sub in MUST_NEUTRAL_TONE_WORDS or sub[-2:] in MUST_NEUTRAL_TONE_WORDS):
            parts[i][-1] = _retone(parts[i][-1], "5")
    return parts[0] + parts[1]


def _bu_sandhi(word: str, finals: list[str]) -> list[str]:
    if len(word) == 3 and word[1] == "不":
        finals[1] = _retone(finals[1], "5")
        return finals
    for i, ch in enumerate(word[:-1]):
        if ch == "不" and finals[i + 1][-1] == "4":
            finals[i] = _retone(finals[i], "2")
    return finals


def _yi_sandhi(word: str, finals: list[str]) -> list[str]:
    if "一" in word and all(ch.isnumeric() for ch in word if ch != "一"):
        return finals  # a digit sequence such as 一零零
    if len(word) == 3 and word[1] == "一" and word[0] == word[-1]:
        finals[1] = _retone(finals[1], "5")  # 看一看
    elif word.startswith("第一"):
        finals[1] = _retone(finals[1], "1")
    else:
        for i, ch in enumerate(word[:-1]):
            if ch != "一":
                continue
            if finals[i + 1][-1] == "4":
                finals[i] = _retone(finals[i], "2")
            elif word[i + 1] not in SANDHI_PUNCT:
                finals[i] = _retone(finals[i], "4")
    return finals


def _three_sandhi(word: str, finals: list[str]) -> list[str]:
    if len(word) == 2 and _all_third(finals):
        finals[0] = _retone(finals[0], "2")
    elif len(word) == 3:
        head, _ = split_word(word)
        if _all_third(finals):
            if len(head) == 2:  # 蒙古/包
                finals[0] = _retone(finals[0], "2")
                finals[1] = _retone(finals[1], "2")
            elif len(head) == 1:  # 纸/老虎
                finals[1] = _retone(finals[1], "2")
        else:
            parts = [finals[: len(head)], finals[len(head) :]]
            for i, sub in enumerate(parts):
                if len(sub) == 2 and _all_third(sub):  # 所有/人
                    sub[0] = _retone(sub[0], "2")
                elif (
                    i == 1
                    and sub
                    and not _all_third(sub)
                    and sub[0][-1] == "3"
                    and parts[0]
                    and parts[0][-1][-1] == "3"
                ):
                    parts[0][-1] = _retone(parts[0][-1], "2")  # 好/喜欢
            finals = parts[0] + parts[1]
    elif len(word) == 4:  # idioms: two halves of two syllables
        halves = [finals[:2], finals[2:]]
        for sub in halves:
            if _all_third(sub):
                sub[0] = _retone(sub[0], "2")
        finals = halves[0] + halves[1]
    return finals


def modified_tone(word: str, pos: str, finals: list[str]) -> list[str]:
    """Apply 不, 一, neutral-tone and third-tone sandhi to one word's finals."""
    if len(finals) != len(word):
        return finals  # non-Han runs: nothing to do
    finals = _bu_sandhi(word, finals)
    finals = _yi_sandhi(word, finals)
    finals = _neutral_sandhi(word, pos, finals)
    return _three_sandhi(word, finals)


def _merge_bu(seg: Seg) -> Seg:
    out: Seg = []
    last = ""
    for word, pos in seg:
        if last == "不":
            word = last + word
        if word != "不":
            out.append([word, pos])
        last = word
    if last == "不":
        out.append([last, "d"])
    return out


def _merge_yi(seg: Seg) -> Seg:
    out: Seg = []
    for i, (word, pos) in enumerate(seg):
        if 0 < i < len(seg) - 1 and word == "一" and seg[i - 1][0] == seg[i + 1][0] and seg[i - 1][1] == "v":
            out[-1][0] = out[-1][0] + "一" + out[-1][0]  # 听 一 听 -> 听一听
        elif i >= 2 and seg[i - 1][0] == "一" and seg[i - 2][0] == word and pos == "v":
            continue
        else:
            out.append([word, pos])
    merged: Seg = []
    for word, pos in out:
        if merged and merged[-1][0] == "一":
            merged[-1][0] += word
        else:
            merged.append([word, pos])
    return merged


def _merge_third_tones(seg: Seg, whole_words: bool) -> Seg:
    out: Seg = []
    finals = [word_finals(w) for w, _ in seg]
    merged_last = [False] * len(seg)
    for i, (word, pos) in enumerate(seg):
        if whole_words:
            both = i > 0 and _all_third(finals[i - 1]) and _all_third(finals[i])
        else:
            both = i > 0 and finals[i - 1][-1][-1] == "3" and finals[i][0][-1] == "3"
        prev = seg[i - 1][0] if i > 0 else ""
        is_redup = len(prev) == 2 and prev[0] == prev[1]
        if both and not merged_last[i - 1] and not is_redup and len(prev) + len(word) <= 3:
            out[-1][0] += word
            merged_last[i] = True
        else:
            out.append([word, pos])
    return out


def _merge_er(seg: Seg) -> Seg:
    out: Seg = []
    for i, (word, pos) in enumerate(seg):
        if i > 0 and word == "儿" and seg[i - 1][0] != "#":
            out[-1][0] += word
        else:
            out.append([word, pos])
    return out


def _merge_reduplication(seg: Seg) -> Seg:
    out: Seg = []
    for word, pos in seg:
        if out and word == out[-1][0]:
            out[-1][0] += word
        else:
            out.append([word, pos])
    return out


def pre_merge(seg: list[tuple[str, str]]) -> Seg:
    """Merge jieba words so the sandhi rules see 不X, X一X, reduplications, third-tone pairs and X儿."""
    merged: Seg = _merge_bu([[w, p] for w, p in seg])
    merged = _merge_yi(merged)
    merged = _merge_reduplication(merged)
    merged = _merge_third_tones(merged, whole_words=True)
    merged = _merge_third_tones(merged, whole_words=False)
    return _merge_er(merged)
