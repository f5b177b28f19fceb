"""Text tests run offline: the network is blocked and the HF hub is told to stay offline."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ",", ".", "!", "?", "…", "-"] + list(
    "你好世界我们一起看这个小孩儿的花今天气很不错他说是中国人用拍照效果"
)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network access is blocked in the text tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


def write_tiny_bert(folder: Path, seed: int = 0) -> Path:
    """A random BertForMaskedLM with the real hidden width (1024) but 2 small layers and a tiny vocab."""
    import torch
    from transformers import BertConfig, BertForMaskedLM

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    config = BertConfig(
        vocab_size=len(TINY_VOCAB),
        hidden_size=1024,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    torch.manual_seed(seed)
    BertForMaskedLM(config).eval().save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_bert(tmp_path_factory.mktemp("bert") / "chinese-roberta-tiny")
