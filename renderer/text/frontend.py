"""TextFrontend: normalised text -> phones, phone ids, word2ph and BERT features for the GPT."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from renderer.errors import TextError
from renderer.text.bert import BERT_DIM, BertFeatureExtractor
from renderer.text.g2p_en import g2p_en
from renderer.text.langsplit import Span, split_languages
from renderer.text.lexicon import Lexicon
from renderer.text.normalize import PHONE_GROUP_RE, check_language, is_speakable, model_text, normalize
from renderer.text.symbols import PUNCTUATION, phones_to_ids

log = logging.getLogger("renderer.text")
_GROUP_MARK = "\ue001"  # stands for a phone group while the text is split by language
MIN_PHONES = 6  # GPT-SoVITS re-reads shorter texts with a leading "." (very short inputs make it ramble)


@dataclass(frozen=True)
class Segment:
    """One language run of a chunk's model text."""

    language: str
    text: str
    phones: tuple[str, ...]
    word2ph: tuple[int, ...]  # per character of ``text``; sums to len(phones)


@dataclass(frozen=True)
class Phonemes:
    phones: list[str]
    phone_ids: list[int]
    word2ph: list[int] | None  # per character of norm_text; None without Chinese (as upstream)
    norm_text: str  # the text the model reads (normalised + guards)
    language: str
    unknown: int  # phones that were not in the symbol table (mapped to UNK)
    g2p: str  # Chinese pinyin source "pypinyin" or "g2pw"; else "cmudict" (English) or "openjtalk" (Japanese)
    segments: tuple[Segment, ...] = ()


class TextFrontend:
    def __init__(
        self,
        bert_dir: str | Path | None = None,
        g2pw_model: str | Path | None = None,
        lexicon: dict[str, str] | Lexicon | None = None,
        device: str = "cpu",
    ) -> None:
        self.bert_dir = Path(bert_dir) if bert_dir else None
        self.device = device
        self.lexicon = lexicon if isinstance(lexicon, Lexicon) else Lexicon(dict(lexicon or {}))
        self._bert: BertFeatureExtractor | None = None
        self.g2pw = None
        if g2pw_model:
            from renderer.text.g2pw import G2PW

            vocab = self.bert_dir / "vocab.txt" if self.bert_dir else None
            self.g2pw = G2PW(g2pw_model, vocab_path=vocab)
        self.zh_g2p_name = "g2pw" if self.g2pw else "pypinyin"

    # -- phones ---------------------------------------------------------------------------------
    def phonemize(self, text: str, language: str, *, heading: bool = False) -> Phonemes:
        """Phones of one chunk; ``text`` may be raw or already normalised (normalising is idempotent).

        Lexicon replacements match the raw text and, once more, the normalised text (so an entry
        for "Dr." and one for "Doctor" both work).
        """
        check_language(language)
        norm = apply_lexicon(self.lexicon, text, language, heading=heading)
        if not is_speakable(norm):
            raise TextError(f"nothing to speak in {text!r} (punctuation only chunks are never sent to the model)")
        mtext = model_text(norm, language)
        segments = self._segments(mtext, language)
        if sum(len(s.phones) for s in segments) < MIN_PHONES and mtext[0] not in PUNCTUATION:
            mtext = "." + mtext
            segments = self._segments(mtext, language)
        phones = [p for s in segments for p in s.phones]
        if all(p in PUNCTUATION for p in phones):
            raise TextError(f"nothing to speak in {text!r}: no phones besides punctuation")
        ids, unknown = phones_to_ids(phones)
        if unknown:
            log.warning("%d unknown phone(s) mapped to UNK in %r", unknown, mtext)
        has_zh = any(s.language == "zh" for s in segments)
        word2ph = [w for s in segments for w in s.word2ph] if has_zh else None
        g2p = self.zh_g2p_name if has_zh else "openjtalk" if any(s.language == "ja" for s in segments) else "cmudict"
        return Phonemes(
            phones, ids, word2ph, "".join(s.text for s in segments), language, unknown, g2p, tuple(segments)
        )

    def _segments(self, mtext: str, language: str) -> list[Segment]:
        if "{" not in mtext:
            return self._language_segments(mtext, language)
        # Phone groups ("{PH ON ES}", from the user lexicon) are neutral for the language split:
        # mask them with a placeholder, split, then put them back into their spans.
        groups = PHONE_GROUP_RE.findall(mtext)
        masked = PHONE_GROUP_RE.sub(_GROUP_MARK, mtext)
        return self._language_segments(masked, language, groups=iter(groups))

    def _language_segments(self, mtext: str, language: str, groups: Iterator[str] | None = None) -> list[Segment]:
        spans = split_languages(mtext, language)
        if groups is not None:
            spans = [Span(s.language, re.sub(_GROUP_MARK, lambda _m: next(groups), s.text)) for s in spans]
        # Neutral text (punctuation) before the first span belongs to it; merge same-language runs.
        out: list[Segment] = []
        for span in spans:
            if span.language == "en":
                lang, phones = "en", self._en_phones(span.text)
                w2p = _first_char_word2ph(span.text, len(phones))
            elif span.language == "ja":
                lang, phones = "ja", self._ja_phones(span.text)
                w2p = _first_char_word2ph(span.text, len(phones))
            else:
                lang, (phones, w2p) = "zh", self._zh_phones(span.text)
            out.append(Segment(lang, span.text, tuple(phones), tuple(w2p)))
        return out

    def _ja_phones(self, text: str) -> list[str]:
        from renderer.text.g2p_ja import available, g2p_ja

        if not available():
            log.warning("no Japanese G2P installed (pyopenjtalk): %r is skipped", text)
            return []
        return g2p_ja(text)

    def _en_phones(self, text: str) -> list[str]:
        phones = g2p_en(text)
        if len(phones) < 4:
            phones = [","] + phones  # as GPT-SoVITS's cleaner does for short English runs
        return phones

    def _zh_phones(self, text: str) -> tuple[list[str], list[int]]:
        from renderer.text.g2p_zh import g2p_zh  # jieba and pypinyin load only when Chinese shows up

        if "{" not in text:
            return g2p_zh(text, self.g2pw)
        phones: list[str] = []
        word2ph: list[int] = []
        for i, piece in enumerate(PHONE_GROUP_RE.split(text)):
            if i % 2:  # a phone group: its phones sit on its first character
                group = piece[1:-1].split()
                phones += group
                word2ph += _first_char_word2ph(piece, len(group))
            elif piece:
                p, w = g2p_zh(piece, self.g2pw)
                phones += p
                word2ph += w
        return phones, word2ph

    # -- BERT -------------------------------------------------------------------------------------
    @property
    def bert(self) -> BertFeatureExtractor:
        if self._bert is None:
            if self.bert_dir is None:
                raise TextError("Chinese text needs BERT features: give the chinese-roberta-wwm-ext-large folder")
            self._bert = BertFeatureExtractor(self.bert_dir, device=self.device)
        return self._bert

    def bert_features(self, items: list[Phonemes]) -> list[np.ndarray]:
        """float32 [1024, n_phones] per item: BERT for Chinese segments, zeros elsewhere (batched)."""
        jobs = [(i, j) for i, item in enumerate(items) for j, s in enumerate(item.segments) if s.language == "zh"]
        zh_feats: dict[tuple[int, int], np.ndarray] = {}
        if jobs:
            texts = [items[i].segments[j].text for i, j in jobs]
            w2ps = [list(items[i].segments[j].word2ph) for i, j in jobs]
            for key, feat in zip(jobs, self.bert.phone_features(texts, w2ps), strict=True):
                zh_feats[key] = feat
        out = []
        for i, item in enumerate(items):
            parts = [
                zh_feats[(i, j)] if (i, j) in zh_feats else np.zeros((BERT_DIM, len(s.phones)), np.float32)
                for j, s in enumerate(item.segments)
            ]
            feat = np.concatenate(parts, axis=1) if parts else np.zeros((BERT_DIM, len(item.phones)), np.float32)
            if feat.shape[1] != len(item.phone_ids):
                raise TextError(f"BERT features cover {feat.shape[1]} phones, expected {len(item.phone_ids)}")
            out.append(feat.astype(np.float32, copy=False))
        return out


def apply_lexicon(lexicon: Lexicon, text: str, language: str, *, heading: bool = False) -> str:
    """Normalised ``text`` with the lexicon applied to the raw text and once more to the normalised
    text (so an entry for "Dr." and one for "Doctor" both work)."""
    norm = normalize(lexicon.apply(text), language, heading=heading)
    if lexicon.entries:
        norm = normalize(lexicon.apply(norm), language, heading=heading)
    return norm


def _first_char_word2ph(text: str, n_phones: int) -> list[int]:
    """English/Japanese runs have no per-character alignment: all phones sit on the first character."""
    if not text:
        return []
    return [n_phones] + [0] * (len(text) - 1)
