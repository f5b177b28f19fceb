"""Chinese BERT features (chinese-roberta-wwm-ext-large layout) from a local folder.

GPT-SoVITS feeds the GPT the third-from-last hidden layer of this BERT, one 1024-wide vector per
character ([CLS]/[SEP] dropped), repeated once per phone of that character. Texts here are
normalised Chinese (Han characters and model punctuation), for which the original tokenizer
yields exactly one token per character; we look characters up in ``vocab.txt`` directly, which
gives the same ids and guarantees the one-to-one alignment.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from renderer.errors import TextError

BERT_DIM = 1024
MAX_TOKENS = 512


class BertFeatureExtractor:
    """Runs the BERT of a local folder (``config.json``, weights, ``vocab.txt``); never downloads."""

    def __init__(self, folder: str | Path, device: str = "cpu", batch_size: int = 16) -> None:
        self.folder = Path(folder)
        for name in ("config.json", "vocab.txt"):
            if not (self.folder / name).is_file():
                raise TextError(f"{self.folder}: not a BERT folder ({name} missing)")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModelForMaskedLM

        from renderer.models.hubert import quiet_transformers

        try:
            with quiet_transformers():
                model = AutoModelForMaskedLM.from_pretrained(str(self.folder), local_files_only=True)
        except Exception as exc:  # transformers raises many types (OSError, ValueError...)
            raise TextError(f"{self.folder}: cannot load BERT weights ({exc})") from exc
        self.model = model.eval().to(device)
        self.device = device
        self.batch_size = batch_size
        self._torch = torch
        vocab = (self.folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
        self.vocab = {tok: i for i, tok in enumerate(vocab)}
        self.unk_id = self.vocab.get("[UNK]", 100)
        self.cls_id = self.vocab.get("[CLS]", 101)
        self.sep_id = self.vocab.get("[SEP]", 102)
        self.pad_id = self.vocab.get("[PAD]", 0)
        hidden = int(getattr(self.model.config, "hidden_size", 0))
        if hidden != BERT_DIM:
            raise TextError(f"{self.folder}: BERT hidden size is {hidden}, the GPT needs {BERT_DIM}")

    def _ids(self, text: str) -> list[int]:
        return [self.vocab.get(ch, self.vocab.get(ch.lower(), self.unk_id)) for ch in text]

    def char_features(self, texts: list[str]) -> list[np.ndarray]:
        """float32 [len(text), 1024] per text: hidden_states[-3] without [CLS]/[SEP], batched."""
        pieces: list[tuple[int, int, str]] = []  # (text index, offset, piece) — long texts in 510-char windows
        for t, text in enumerate(texts):
            for off in range(0, max(len(text), 1), MAX_TOKENS - 2):
                if text[off : off + MAX_TOKENS - 2]:
                    pieces.append((t, off, text[off : off + MAX_TOKENS - 2]))
        out = [np.zeros((len(text), BERT_DIM), np.float32) for text in texts]
        order = sorted(range(len(pieces)), key=lambda i: len(pieces[i][2]))
        for start in range(0, len(order), self.batch_size):
            batch = [pieces[i] for i in order[start : start + self.batch_size]]
            feats = self._run([p[2] for p in batch])
            for (t, off, piece), f in zip(batch, feats, strict=True):
                out[t][off : off + len(piece)] = f
        return out

    def _run(self, texts: list[str]) -> list[np.ndarray]:
        torch = self._torch
        width = max(len(t) for t in texts) + 2
        ids = torch.full((len(texts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(texts), width), dtype=torch.long)
        for i, text in enumerate(texts):
            row = [self.cls_id, *self._ids(text), self.sep_id]
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        with torch.inference_mode():
            res = self.model(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                token_type_ids=torch.zeros_like(ids).to(self.device),
                output_hidden_states=True,
            )
        hidden = res.hidden_states[-3].float().cpu().numpy()
        return [hidden[i, 1 : 1 + len(text)] for i, text in enumerate(texts)]

    def phone_features(self, texts: list[str], word2phs: list[list[int]]) -> list[np.ndarray]:
        """float32 [1024, sum(word2ph)] per text: each character's vector repeated per phone."""
        feats = self.char_features(texts)
        out = []
        for text, w2p, f in zip(texts, word2phs, feats, strict=True):
            if len(w2p) != len(text):
                raise TextError(f"word2ph has {len(w2p)} entries for {len(text)} characters: {text!r}")
            out.append(np.repeat(f, np.asarray(w2p, dtype=np.int64), axis=0).T.copy())
        return out
