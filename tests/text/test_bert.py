from pathlib import Path

import numpy as np
import pytest
import torch

from renderer.errors import TextError
from renderer.text import TextFrontend
from renderer.text.bert import BertFeatureExtractor


@pytest.fixture(scope="module")
def frontend(tiny_bert_dir: Path) -> TextFrontend:
    return TextFrontend(bert_dir=tiny_bert_dir)


def _upstream_style(folder: Path, text: str, word2ph: list[int]) -> np.ndarray:
    """The original recipe: tokenizer -> BertForMaskedLM -> hidden_states[-3][1:-1] -> repeat per word2ph -> .T"""
    from transformers import AutoModelForMaskedLM, BertTokenizer

    tok = BertTokenizer(str(folder / "vocab.txt"))
    model = AutoModelForMaskedLM.from_pretrained(str(folder), local_files_only=True).eval()
    inputs = tok(text, return_tensors="pt")
    with torch.no_grad():
        res = model(**inputs, output_hidden_states=True)
    hidden = torch.cat(res["hidden_states"][-3:-2], -1)[0][1:-1]
    assert hidden.shape[0] == len(text)
    feats = [hidden[i].repeat(n, 1) for i, n in enumerate(word2ph)]
    return torch.cat(feats, dim=0).T.numpy()


def test_features_match_the_original_recipe(frontend: TextFrontend, tiny_bert_dir: Path) -> None:
    ph = frontend.phonemize("你好世界，今天天气很不错。", "zh")
    (feat,) = frontend.bert_features([ph])
    assert feat.shape == (1024, len(ph.phone_ids)) and feat.dtype == np.float32
    zh = ph.segments[0]
    expected = _upstream_style(tiny_bert_dir, zh.text, list(zh.word2ph))
    np.testing.assert_allclose(feat, expected, atol=1e-5)
    # a character's vector repeats across its phones
    np.testing.assert_array_equal(feat[:, 0], feat[:, 1])
    assert not np.array_equal(feat[:, 1], feat[:, 2])


def test_batched_equals_one_by_one_and_english_is_zero(frontend: TextFrontend) -> None:
    items = [
        frontend.phonemize("你好。", "zh"),
        frontend.phonemize("A sentence in English.", "en"),
        frontend.phonemize("我们一起看这个小孩儿的花，他说是中国人。", "zh"),
        frontend.phonemize("我用iPhone拍照，效果很好。", "zh"),
    ]
    batched = frontend.bert_features(items)
    for item, feat in zip(items, batched, strict=True):
        (single,) = frontend.bert_features([item])
        np.testing.assert_allclose(feat, single, atol=1e-5)
        assert feat.shape == (1024, len(item.phone_ids))
    assert not batched[1].any()
    mixed = items[3]
    start = sum(len(s.phones) for s in mixed.segments[:1])
    en_len = len(mixed.segments[1].phones)
    assert mixed.segments[1].language == "en"
    assert not batched[3][:, start : start + en_len].any() and batched[3][:, :start].any()


def test_bad_folders_are_reported(tmp_path: Path) -> None:
    with pytest.raises(TextError, match="not a BERT folder"):
        BertFeatureExtractor(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "vocab.txt").write_text("[PAD]\n")
    with pytest.raises(TextError, match="cannot load"):
        BertFeatureExtractor(tmp_path)
