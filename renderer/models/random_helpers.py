"""Random stand-ins for the pretrained helpers a GPT-SoVITS install ships, for tests and demos.

* :func:`write_random_bert_folder`: a tiny ``BertForMaskedLM`` folder shaped like
  ``chinese-roberta-wwm-ext-large`` where it matters (hidden size 1024, a BERT WordPiece vocab with one
  token per CJK character).
* :func:`write_random_hubert_folder`: a tiny ``HubertModel`` folder shaped like ``chinese-hubert-base``
  where it matters (hidden size 768, the 7-layer conv front end with 320x downsampling → 50 Hz).
* :func:`write_random_sv_checkpoint`: an ERes2NetV2 state dict in the key layout of
  ``pretrained_eres2netv2w24s4ep4.ckpt``.

Weights are random: outputs have the right shapes and are deterministic per seed, nothing more.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from pathlib import Path

import torch

from renderer.models.eres2net import ERes2NetV2, ERes2NetV2Config
from renderer.models.hubert import quiet_transformers

__all__ = [
    "write_random_bert_folder",
    "write_random_hubert_folder",
    "write_random_sv_checkpoint",
    "TINY_SV_CONFIG",
    "bert_vocab",
]

#: Scaled-down ERes2NetV2: same tensor names and the same 20480-wide forward3 output
#: (8 * m_channels * expansion * 10 rows = 8 * 4 * 64 * 10); narrower Res2Net groups and a
#: smaller embedding head. layer3_ds (1024 → 2048, 3x3) cannot shrink without changing the output.
TINY_SV_CONFIG = ERes2NetV2Config(m_channels=4, expansion=64, base_width=16, scale=4, embedding_size=8)

_SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_CJK_PUNCTUATION = "，。！？；：、“”‘’（）《》【】…—～·「」『』"


def _gb2312_level1_hanzi() -> list[str]:
    """The 3755 'level 1' (most frequent) simplified characters of GB 2312, rows 16-55."""
    chars = []
    for row in range(0xB0, 0xD8):
        for col in range(0xA1, 0xFF):
            try:
                chars.append(bytes([row, col]).decode("gb2312"))
            except UnicodeDecodeError:
                continue  # row 55 ends early
    return chars


def bert_vocab(extra_chars: str = "") -> list[str]:
    """WordPiece vocab: specials, ASCII, CJK punctuation, common hanzi, ``##`` letters/digits, extras."""
    tokens = list(_SPECIAL_TOKENS)
    tokens += [chr(c) for c in range(0x21, 0x7F) if not chr(c).isupper()]  # the tokenizer lower-cases
    tokens += list(_CJK_PUNCTUATION)
    tokens += _gb2312_level1_hanzi()
    tokens += [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    tokens += list(extra_chars)
    seen: set[str] = set()
    return [t for t in tokens if not (t in seen or seen.add(t))]  # type: ignore[func-returns-value]


def _perturb_constants(model: torch.nn.Module, generator: torch.Generator) -> None:
    """Give LayerNorm/BatchNorm gains and biases small random offsets so no tensor is constant."""
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point() or tensor.numel() < 2 or float(tensor.std()) > 0:
                continue
            noise = torch.randn(tensor.shape, generator=generator)
            if name.endswith("running_var"):
                tensor.copy_(1.0 + 0.1 * noise.abs())
            else:
                base = float(tensor.flatten()[0])
                tensor.copy_(base + (0.1 * abs(base) if base else 0.05) * noise)


def write_random_bert_folder(dir: str | Path, seed: int = 0, extra_chars: str = "") -> Path:
    """Write config.json + model.safetensors + vocab.txt (+ tokenizer config) of a tiny 1024-wide BERT."""
    from transformers import BertConfig, BertForMaskedLM

    folder = Path(dir)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = bert_vocab(extra_chars)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer_config = {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "tokenize_chinese_chars": True,
                        "model_max_length": 512, "unk_token": "[UNK]", "sep_token": "[SEP]",
                        "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"}
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2), encoding="utf-8")
    special = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
               "mask_token": "[MASK]"}
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2), encoding="utf-8")
    # GPT-SoVITS reads hidden_states[-3]: three layers make that a transformer layer, not the embeddings.
    config = BertConfig(vocab_size=len(vocab), hidden_size=1024, num_hidden_layers=3, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=512, type_vocab_size=2,
                        pad_token_id=0, architectures=["BertForMaskedLM"])
    torch.manual_seed(seed)
    model = BertForMaskedLM(config).eval()
    _perturb_constants(model, torch.Generator().manual_seed(seed + 1))
    with quiet_transformers():
        model.save_pretrained(str(folder), safe_serialization=True)
    return folder


def write_random_hubert_folder(dir: str | Path, seed: int = 0) -> Path:
    """Write config.json + model.safetensors of a tiny HubertModel: 768 wide, base conv geometry, 1 layer."""
    from transformers import HubertConfig, HubertModel

    folder = Path(dir)
    folder.mkdir(parents=True, exist_ok=True)
    config = HubertConfig(
        hidden_size=768, num_hidden_layers=1, num_attention_heads=12, intermediate_size=64,
        conv_dim=(32,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2),
        conv_bias=False, feat_extract_norm="group", do_stable_layer_norm=False,
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=16, architectures=["HubertModel"],
    )
    torch.manual_seed(seed)
    model = HubertModel(config).eval()
    _perturb_constants(model, torch.Generator().manual_seed(seed + 1))
    with quiet_transformers():
        model.save_pretrained(str(folder), safe_serialization=True)
    # The real folder ships one too; upstream's inference path does not apply it.
    preprocessor = {"do_normalize": True, "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1,
                    "padding_side": "right", "padding_value": 0, "return_attention_mask": False,
                    "sampling_rate": 16000}
    (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2), encoding="utf-8")
    return folder


def write_random_sv_checkpoint(path: str | Path, seed: int = 0, size: str = "tiny") -> Path:
    """Write a random ERes2NetV2 state dict (``torch.save`` of an OrderedDict, like the real file).

    ``size="full"``: the real w24/s4/e4 sizes (53.6 M parameters, float32, ~215 MB).
    ``size="tiny"``: :data:`TINY_SV_CONFIG`, same keys and 20480-wide output, stored in float16 (~50 MB).
    """
    if size not in ("tiny", "full"):
        raise ValueError(f"size must be 'tiny' or 'full', got {size!r}")
    cfg = ERes2NetV2Config() if size == "full" else TINY_SV_CONFIG
    torch.manual_seed(seed)
    model = ERes2NetV2(cfg).eval()
    _perturb_constants(model, torch.Generator().manual_seed(seed + 1))
    dtype = torch.float32 if size == "full" else torch.float16
    state = OrderedDict(
        (name, tensor.to(dtype) if tensor.is_floating_point() else tensor.clone())
        for name, tensor in model.state_dict().items()
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, str(tmp))
    os.replace(tmp, path)  # an interrupted write never leaves a file that looks finished
    return path
