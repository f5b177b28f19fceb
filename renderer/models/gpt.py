"""GPT text-to-semantic model (GPT-SoVITS ``Text2SemanticDecoder``), checkpoint compatible.

A post-norm transformer over ``[text side ; semantic side]``:

* text side: ``E_text[phones] + bert_proj(bert^T) + alpha_text * PE[0..Lx-1]`` (no sqrt(d) scaling);
* semantic side: ``E_audio[tokens] + alpha_audio * PE[0..Ly-1]`` (positions restart at 0);
* layers: ``h = LN1(h + MHA(h))``, ``h = LN2(h + W2 relu(W1 h + b1) + b2)``, eps 1e-5;
* logits: ``ar_predict_layer(h[last])`` over 1025 classes (1024 = EOS).

``Text2SemanticModel.state_dict()`` keys equal the checkpoint's names without the ``model.`` prefix,
so ``load_state_dict(ckpt.weights, strict=True)`` loads a real file. :class:`GPTConfig` is the one
config and :func:`load_gpt` the one loader; the engine runs this model through
:class:`renderer.engine.batched_gpt.BatchedGPT`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor, nn

from renderer.checkpoints import GPTCheckpoint, load_gpt_checkpoint
from renderer.errors import CheckpointError

#: Width of the BERT features fed to ``bert_proj``.
BERT_DIM = 1024
#: Rows of the sine position table (longest text or semantic side).
MAX_POSITIONS = 4096


@dataclass(frozen=True)
class GPTConfig:
    """Sizes of the text-to-semantic transformer (from ``config['model']`` of the checkpoint)."""

    vocab_size: int = 1025
    phoneme_vocab_size: int = 732
    d_model: int = 512
    n_head: int = 16
    n_layer: int = 24
    eos: int = 1024

    def __post_init__(self) -> None:
        if self.d_model % self.n_head:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_head {self.n_head}")

    @property
    def ffn(self) -> int:
        """Feed-forward width: always 4 * d_model upstream (``linear_units`` is ignored)."""
        return 4 * self.d_model

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    @classmethod
    def from_model_config(cls, model: dict[str, Any]) -> GPTConfig:
        d_model = int(model["embedding_dim"])
        hidden = int(model.get("hidden_dim", d_model))
        if hidden != d_model:
            raise ValueError(f"hidden_dim {hidden} must equal embedding_dim {d_model}")
        return cls(
            vocab_size=int(model.get("vocab_size", 1025)),
            phoneme_vocab_size=int(model.get("phoneme_vocab_size", 732)),
            d_model=d_model,
            n_head=int(model["head"]),
            n_layer=int(model["n_layer"]),
            eos=int(model.get("EOS", 1024)),
        )

    @classmethod
    def from_checkpoint(cls, ckpt: GPTCheckpoint) -> GPTConfig:
        try:
            return cls.from_model_config(ckpt.model_config)
        except (KeyError, ValueError, TypeError) as exc:
            raise CheckpointError(ckpt.path, f"has an unusable GPT config: {exc}") from None


def sine_table(n_positions: int, d_model: int) -> Tensor:
    """Sinusoid table ``[n_positions, d_model]`` computed exactly like upstream (float32 math)."""
    position = torch.arange(0, n_positions, dtype=torch.float32).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * -(math.log(10000.0) / d_model))
    table = torch.zeros(n_positions, d_model)
    table[:, 0::2] = torch.sin(position * div_term)
    table[:, 1::2] = torch.cos(position * div_term)
    return table


class _WordEmbedding(nn.Module):
    def __init__(self, n: int, d: int) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(n, d)


class _Alpha(nn.Module):
    """Learned scalar on the sine positions (``ar_*_position.alpha``)."""

    def __init__(self) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1))


class _SelfAttention(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d, d))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d))
        self.out_proj = nn.Linear(d, d)


class GPTLayer(nn.Module):
    """One post-norm transformer layer's weights: ``h = LN1(h + MHA(h))``, ``h = LN2(h + W2 relu(W1 h))``."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.self_attn = _SelfAttention(cfg.d_model)
        self.linear1 = nn.Linear(cfg.d_model, cfg.ffn)
        self.linear2 = nn.Linear(cfg.ffn, cfg.d_model)
        self.norm1 = nn.LayerNorm(cfg.d_model, eps=1e-5)
        self.norm2 = nn.LayerNorm(cfg.d_model, eps=1e-5)


class _Stack(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(GPTLayer(cfg) for _ in range(cfg.n_layer))


class Text2SemanticModel(nn.Module):
    """The GPT of GPT-SoVITS v2 (inference only; dropout is inactive): its weights and sine table.

    How it runs is elsewhere: the engine's batched prefill and one-token step with a KV cache
    (:mod:`renderer.engine.batched_gpt`); the test suite's single-sequence upstream reference
    (``tests/oracles``).
    """

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.bert_proj = nn.Linear(BERT_DIM, cfg.d_model)
        self.ar_text_embedding = _WordEmbedding(cfg.phoneme_vocab_size, cfg.d_model)
        self.ar_text_position = _Alpha()
        self.ar_audio_embedding = _WordEmbedding(cfg.vocab_size, cfg.d_model)
        self.ar_audio_position = _Alpha()
        self.h = _Stack(cfg)
        self.ar_predict_layer = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.pe: Tensor
        self.register_buffer("pe", sine_table(MAX_POSITIONS, cfg.d_model), persistent=False)

    @property
    def layers(self) -> list[GPTLayer]:
        return [cast(GPTLayer, layer) for layer in self.h.layers]

    def linear_weights(self) -> list[Tensor]:
        """The weight of every linear layer (what :meth:`cast_linears` casts)."""
        weights = [self.bert_proj.weight, self.ar_predict_layer.weight]
        for layer in self.layers:
            weights += [layer.self_attn.in_proj_weight, layer.self_attn.out_proj.weight,
                        layer.linear1.weight, layer.linear2.weight]
        return weights

    def cast_linears(self, dtype: torch.dtype) -> Text2SemanticModel:
        """Store every linear layer's weights and biases in ``dtype`` (e.g. bfloat16); norms and embeddings
        stay float32."""
        for module in [self.bert_proj, self.ar_predict_layer]:
            module.to(dtype)
        for layer in self.layers:
            attn = layer.self_attn
            attn.in_proj_weight.data = attn.in_proj_weight.data.to(dtype)
            attn.in_proj_bias.data = attn.in_proj_bias.data.to(dtype)
            for module in (attn.out_proj, layer.linear1, layer.linear2):
                module.to(dtype)
        return self

    @property
    def weight_dtype(self) -> torch.dtype:
        return self.ar_predict_layer.weight.dtype


def load_gpt(path: str | Path) -> tuple[Text2SemanticModel, GPTConfig, GPTCheckpoint]:
    """Load a GPT ``.ckpt`` into a float32 eval-mode model (strict key match): the one place a GPT file
    is parsed; every problem is a CheckpointError naming the file."""
    ckpt = load_gpt_checkpoint(path)
    cfg = GPTConfig.from_checkpoint(ckpt)
    model = Text2SemanticModel(cfg)
    expected = model.state_dict()
    for name, tensor in ckpt.weights.items():
        if name in expected and tuple(expected[name].shape) != tuple(tensor.shape):
            raise CheckpointError(
                ckpt.path, f"tensor 'model.{name}' has shape {list(tensor.shape)}, "
                f"expected {list(expected[name].shape)} for the config in the file")
    missing, unexpected = model.load_state_dict(ckpt.weights, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            ckpt.path, f"does not match the GPT layout: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}")
    return model.float().eval(), cfg, ckpt
