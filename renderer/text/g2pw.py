"""G2PW polyphone disambiguation from a local ONNX model folder (the ``G2PWModel`` layout).

The folder holds ``g2pW.onnx``, ``POLYPHONIC_CHARS.txt`` / ``MONOPHONIC_CHARS.txt`` (char TAB
bopomofo), ``bopomofo_to_pinyin_wo_tune_dict.json`` and optionally ``config.py`` (only the flags
``use_mask`` and ``use_char_phoneme`` are read, as text, never executed). The tokenizer is the
Chinese BERT vocabulary (``vocab.txt`` of the BERT folder or of the model folder). Each
polyphonic character is one query row: the whole sentence as BERT input, the character's id and
position, and a mask of the readings that character can have; the model scores all readings.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from pypinyin import Style, lazy_pinyin

from renderer.errors import TextError

# Characters the original frontend leaves to pypinyin + sandhi rules even though G2PW knows them.
_NOT_POLYPHONIC = frozenset("一不和咋嗲剖差攢倒難奔勁拗肖瘙誒泊听噢")
_NOT_MONOPHONIC = frozenset("似攢")
_MAX_TOKENS = 512


def _read_pairs(path: Path) -> list[tuple[str, str]]:
    pairs = []
    for line in path.read_text(encoding="utf-8").strip().splitlines():
        char, _, reading = line.partition("\t")
        pairs.append((char, reading.strip()))
    return pairs


def _config_flag(folder: Path, name: str, default: bool) -> bool:
    path = folder / "config.py"
    if not path.is_file():
        return default
    m = re.search(rf"^\s*{name}\s*=\s*(True|False)", path.read_text(encoding="utf-8"), re.MULTILINE)
    return default if m is None else m.group(1) == "True"


def _chars(text: str):  # type: ignore[no-untyped-def]
    """pypinyin ``errors`` handler: keep non-Han text as one item per character (alignment)."""
    return list(text)


class G2PW:
    """Callable: sentence -> TONE3 pinyin per character (neutral tone "5"; non-Han chars unchanged)."""

    def __init__(self, model_dir: str | Path, vocab_path: str | Path | None = None, threads: int = 1) -> None:
        folder = Path(model_dir)
        needed = ("g2pW.onnx", "POLYPHONIC_CHARS.txt", "MONOPHONIC_CHARS.txt", "bopomofo_to_pinyin_wo_tune_dict.json")
        missing = [n for n in needed if not (folder / n).is_file()]
        if missing:
            raise TextError(f"{folder}: not a G2PW model folder (missing {', '.join(missing)})")
        vocab_file = Path(vocab_path) if vocab_path else folder / "vocab.txt"
        if not vocab_file.is_file():
            raise TextError(f"G2PW needs the Chinese BERT vocab.txt (looked for {vocab_file})")
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(folder / "g2pW.onnx"), opts, providers=["CPUExecutionProvider"])
        self.vocab = {t: i for i, t in enumerate(vocab_file.read_text(encoding="utf-8").splitlines())}
        self.use_mask = _config_flag(folder, "use_mask", True)
        use_char_phoneme = _config_flag(folder, "use_char_phoneme", False)
        poly = _read_pairs(folder / "POLYPHONIC_CHARS.txt")
        if use_char_phoneme:
            self.labels = sorted({f"{c} {p}" for c, p in poly})
            self.char_labels = self._index(poly, lambda c, p: f"{c} {p}")
        else:
            self.labels = sorted({p for _, p in poly})
            self.char_labels = self._index(poly, lambda c, p: p)
        self.chars = sorted(self.char_labels)
        self.polyphonic = set(self.chars) - _NOT_POLYPHONIC
        self.monophonic = {c: p for c, p in _read_pairs(folder / "MONOPHONIC_CHARS.txt") if c not in _NOT_MONOPHONIC}
        self.bopomofo_to_pinyin: dict[str, str] = json.loads(
            (folder / "bopomofo_to_pinyin_wo_tune_dict.json").read_text(encoding="utf-8")
        )

    def _index(self, poly: list[tuple[str, str]], key) -> dict[str, list[int]]:  # type: ignore[no-untyped-def]
        pos = {label: i for i, label in enumerate(self.labels)}
        out: dict[str, list[int]] = {}
        for c, p in poly:
            out.setdefault(c, []).append(pos[key(c, p)])
        return out

    def _to_pinyin(self, label: str) -> str | None:
        bopomofo = label.split(" ")[-1]
        tone = bopomofo[-1]
        base = self.bopomofo_to_pinyin.get(bopomofo[:-1])
        return base + tone if base and tone in "12345" else None

    def __call__(self, sentence: str) -> list[str]:
        # pypinyin (phrase-aware) for everything G2PW is not asked about; one item per character
        result = lazy_pinyin(sentence, style=Style.TONE3, neutral_tone_with_five=True, errors=_chars)
        queries = [i for i, ch in enumerate(sentence) if ch in self.polyphonic]
        for i, ch in enumerate(sentence):
            if ch not in self.polyphonic and ch in self.monophonic:
                result[i] = self._to_pinyin(self.monophonic[ch]) or result[i]
        if not queries:
            return result
        probs = self.session.run(None, self._inputs(sentence, queries))[0]
        for q, row in zip(queries, np.asarray(probs), strict=True):
            pinyin = self._to_pinyin(self.labels[int(np.argmax(row))])
            if pinyin:
                result[q] = pinyin
        return result

    def _inputs(self, sentence: str, queries: list[int]) -> dict[str, np.ndarray]:
        text = sentence.lower()
        rows = []
        for q in queries:
            start = max(0, min(q - (_MAX_TOKENS - 2) // 2, len(text) - (_MAX_TOKENS - 2)))
            window = text[start : start + _MAX_TOKENS - 2]
            ids = [self.vocab.get("[CLS]", 101)] + [self.vocab.get(c, self.vocab.get("[UNK]", 100)) for c in window]
            ids.append(self.vocab.get("[SEP]", 102))
            char = text[q]
            mask = [0.0] * len(self.labels)
            for idx in self.char_labels[char] if self.use_mask else range(len(self.labels)):
                mask[idx] = 1.0
            rows.append((ids, mask, self.chars.index(char), q - start + 1))
        width = max(len(r[0]) for r in rows)
        input_ids = np.zeros((len(rows), width), np.int64)
        attention = np.zeros((len(rows), width), np.int64)
        for i, r in enumerate(rows):
            input_ids[i, : len(r[0])] = r[0]
            attention[i, : len(r[0])] = 1
        return {
            "input_ids": input_ids,
            "token_type_ids": np.zeros_like(input_ids),
            "attention_mask": attention,
            "phoneme_mask": np.asarray([r[1] for r in rows], np.float32),
            "char_ids": np.asarray([r[2] for r in rows], np.int64),
            "position_ids": np.asarray([r[3] for r in rows], np.int64),
        }
