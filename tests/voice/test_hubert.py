"""HuBERT encoder on a random chinese-hubert-base-shaped folder; the random BERT folder helper."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from renderer.errors import VoiceError
from renderer.models.hubert import (
    SSL_DIM,
    UPSTREAM_PAD_SAMPLES,
    HubertEncoder,
    hubert_frame_count,
    prompt_waveform,
)
from renderer.models.random_helpers import bert_vocab, write_random_bert_folder, write_random_hubert_folder


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a connection fails the test: loading must be local-only."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def hubert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_hubert_folder(tmp_path_factory.mktemp("hubert") / "chinese-hubert-base", seed=3)


@pytest.fixture(scope="module")
def encoder(hubert_dir: Path) -> HubertEncoder:
    return HubertEncoder(hubert_dir)


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_bert_folder(tmp_path_factory.mktemp("bert") / "chinese-roberta-wwm-ext-large", seed=5)


def test_loads_offline_and_yields_50hz_768_features(hubert_dir: Path, no_network: None) -> None:
    encoder = HubertEncoder(hubert_dir)
    rng = np.random.default_rng(0)
    for n_samples in (16000, 16000 * 3 + UPSTREAM_PAD_SAMPLES, 12345):
        feats = encoder.features((0.1 * rng.standard_normal(n_samples)).astype(np.float32))
        # Conv front end: receptive field 400 samples, hop 320 (50 Hz at 16 kHz).
        expected_frames = (n_samples - 400) // 320 + 1
        assert feats.shape == (1, SSL_DIM, expected_frames)
        assert hubert_frame_count(n_samples) == expected_frames
        assert feats.dtype == torch.float32 and torch.isfinite(feats).all()
    assert hubert_frame_count(16000 * 10) == 499  # 10 s → ~50 frames per second


def test_features_are_the_raw_model_call_transposed(encoder: HubertEncoder) -> None:
    wav = (0.2 * np.sin(np.arange(8000) / 7.0)).astype(np.float32)
    feats = encoder.features(wav)
    with torch.inference_mode():
        direct = encoder.model(torch.from_numpy(wav)[None]).last_hidden_state.transpose(1, 2)
    torch.testing.assert_close(feats, direct, rtol=0, atol=0)
    # Deterministic: eval mode, no dropout / masking.
    torch.testing.assert_close(encoder.features(wav), feats, rtol=0, atol=0)
    other = encoder.features(np.roll(wav, 123))
    assert not torch.allclose(other, feats)
    assert not feats.is_inference() and not feats.requires_grad


def test_prompt_waveform_appends_upstream_zeros() -> None:
    wav = np.ones(100, np.float32)
    padded = prompt_waveform(wav)
    assert padded.shape == (100 + 9600,) and padded.dtype == np.float32
    assert padded[:100].sum() == 100 and not padded[100:].any()


def test_folder_problems_are_voice_errors(tmp_path: Path, hubert_dir: Path) -> None:
    with pytest.raises(VoiceError, match="not found"):
        HubertEncoder(tmp_path / "absent")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VoiceError, match="config.json"):
        HubertEncoder(empty)

    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    shutil.copy(hubert_dir / "config.json", no_weights / "config.json")
    with pytest.raises(VoiceError, match="no HuBERT weights"):
        HubertEncoder(no_weights)

    wrong_kind = tmp_path / "bert_like"
    wrong_kind.mkdir()
    (wrong_kind / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 768}))
    with pytest.raises(VoiceError, match="'bert'"):
        HubertEncoder(wrong_kind)

    wrong_width = tmp_path / "wide"
    shutil.copytree(hubert_dir, wrong_width)
    config = json.loads((wrong_width / "config.json").read_text())
    config["hidden_size"] = 1024
    (wrong_width / "config.json").write_text(json.dumps(config))
    with pytest.raises(VoiceError, match="768"):
        HubertEncoder(wrong_width)

    corrupt = tmp_path / "corrupt"
    shutil.copytree(hubert_dir, corrupt)
    (corrupt / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(VoiceError, match="cannot load HuBERT weights"):
        HubertEncoder(corrupt)


def test_too_short_input(encoder: HubertEncoder) -> None:
    with pytest.raises(VoiceError, match="too short"):
        encoder.features(np.zeros(399, np.float32))


def test_random_bert_folder_is_a_1024_wide_masked_lm(bert_dir: Path, no_network: None) -> None:
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(bert_dir), local_files_only=True)
    model = AutoModelForMaskedLM.from_pretrained(str(bert_dir), local_files_only=True).eval()
    assert type(model).__name__ == "BertForMaskedLM"
    text = "你好，世界。我们今天去北京！"
    encoded = tokenizer(text, return_tensors="pt")
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])
    # One token per character, none unknown, framed by [CLS]/[SEP] as GPT-SoVITS expects (res[1:-1]).
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert tokens[1:-1] == list(text)
    with torch.inference_mode():
        out = model(**encoded, output_hidden_states=True)
    hidden = out.hidden_states[-3]
    assert hidden.shape == (1, len(text) + 2, 1024)
    assert not torch.equal(out.hidden_states[-3], out.hidden_states[0])  # a transformer layer, not embeddings
    latin = tokenizer.convert_ids_to_tokens(tokenizer("Hello 2024")["input_ids"])
    assert "[UNK]" not in latin


def test_bert_vocab_is_unique_and_covers_common_hanzi() -> None:
    vocab = bert_vocab(extra_chars="龘")
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert len(vocab) == len(set(vocab))
    for char in "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年":
        assert char in vocab
    assert "龘" in vocab


def test_legacy_pytorch_model_bin_with_weight_norm_pairs_loads(tmp_path: Path, hubert_dir: Path,
                                                               encoder: HubertEncoder, no_network: None) -> None:
    """The real chinese-hubert-base ships pytorch_model.bin with weight_g/weight_v names for the pos-conv."""
    from safetensors.torch import load_file

    state = load_file(str(hubert_dir / "model.safetensors"))
    renamed = {
        k.replace("parametrizations.weight.original0", "weight_g").replace("parametrizations.weight.original1",
                                                                              "weight_v"): v
        for k, v in state.items()
    }
    assert any(k.endswith("weight_g") for k in renamed)
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    shutil.copy(hubert_dir / "config.json", legacy / "config.json")
    torch.save(renamed, legacy / "pytorch_model.bin")
    wav = (0.1 * np.cos(np.arange(6000) / 5.0)).astype(np.float32)
    torch.testing.assert_close(HubertEncoder(legacy).features(wav), encoder.features(wav), rtol=0, atol=0)

    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(hubert_dir / "config.json", partial / "config.json")
    torch.save({k: v for k, v in renamed.items() if not k.startswith("encoder.layers.0.")},
               partial / "pytorch_model.bin")
    with pytest.raises(VoiceError, match="lack"):
        HubertEncoder(partial)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_features_match_cpu(hubert_dir: Path, encoder: HubertEncoder) -> None:
    wav = (0.1 * np.sin(np.arange(16000) / 9.0)).astype(np.float32)
    gpu = HubertEncoder(hubert_dir, device="cuda").features(wav)
    assert gpu.device.type == "cpu"
    torch.testing.assert_close(gpu, encoder.features(wav), atol=1e-3, rtol=1e-3)


def test_config_without_model_type_but_hubert_architecture_loads(tmp_path: Path, hubert_dir: Path,
                                                                 encoder: HubertEncoder) -> None:
    folder = tmp_path / "old_config"
    shutil.copytree(hubert_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config.pop("model_type")
    assert config["architectures"] == ["HubertModel"]
    (folder / "config.json").write_text(json.dumps(config))
    wav = np.linspace(-0.2, 0.2, 4000, dtype=np.float32)
    torch.testing.assert_close(HubertEncoder(folder).features(wav), encoder.features(wav), rtol=0, atol=0)
