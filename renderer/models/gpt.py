"""GPT text-to-semantic model (GPT-SoVITS ``Text2SemanticDecoder``), checkpoint compatible.

A post-norm transformer over ``[text side ; semantic side]``:

* text side: ``E_text[phones] + bert_proj(bert^T) + alpha_text * PE[0..Lx-1]`` (no sqrt(d) scaling);
* semantic side: ``E_audio[tokens] + alpha_audio * PE[0..Ly-1]`` (positions restart at 0);
* layers: ``h = LN1(h + MHA(h))``, ``h = LN2(h + W2 relu(W1 h + b1) + b2)``, eps 1e-5;
* logits: ``ar_predict_layer(h[last])`` over 1025 classes (1024 = EOS).

``Text2SemanticModel.state_dict()`` keys equal the checkpoint's names without the ``model.`` prefix,
so ``load_state_dict(ckpt.weights, strict=True)`` loads a real file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from renderer.checkpoints import GPTCheckpoint, load_gpt_checkpoint
from renderer.errors import CheckpointError

#: Width of the BERT features fed to ``bert_proj``.
BERT_DIM = 1024


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
    """One post-norm transformer layer with an explicit K/V cache interface."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.self_attn = _SelfAttention(cfg.d_model)
        self.linear1 = nn.Linear(cfg.d_model, cfg.ffn)
        self.linear2 = nn.Linear(cfg.ffn, cfg.d_model)
        self.norm1 = nn.LayerNorm(cfg.d_model, eps=1e-5)
        self.norm2 = nn.LayerNorm(cfg.d_model, eps=1e-5)

    def qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x [B,T,d] -> q, k, v each [B,H,T,hd] (heads are contiguous slices)."""
        b, t, _ = x.shape
        q, k, v = F.linear(x, self.self_attn.in_proj_weight, self.self_attn.in_proj_bias).chunk(3, dim=-1)
        shape = (b, t, self.cfg.n_head, self.cfg.head_dim)
        return q.view(shape).transpose(1, 2), k.view(shape).transpose(1, 2), v.view(shape).transpose(1, 2)

    def finish(self, x: Tensor, q: Tensor, k: Tensor, v: Tensor, allowed: Tensor | None) -> Tensor:
        """Attention of q over (k, v) then the residual/FFN part.

        x [B,T,d]; q [B,H,T,hd]; k, v [B,H,S,hd]; allowed: bool [B|1,1|H,T,S] (True = may attend) or None.
        """
        b, t, d = x.shape
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        attn = attn.transpose(1, 2).reshape(b, t, d)
        x = self.norm1(x + self.self_attn.out_proj(attn))
        return self.norm2(x + self.linear2(F.relu(self.linear1(x))))


class _Stack(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(GPTLayer(cfg) for _ in range(cfg.n_layer))


class Text2SemanticModel(nn.Module):
    """The GPT of GPT-SoVITS v2 (inference only; dropout is inactive)."""

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
        self.register_buffer("pe", sine_table(4096, cfg.d_model), persistent=False)

    @property
    def layers(self) -> list[GPTLayer]:
        return [cast(GPTLayer, layer) for layer in self.h.layers]

    def positions(self, start: int, length: int) -> Tensor:
        """Sine rows ``[length, d]`` for positions start..start+length-1 (extends the table if needed)."""
        end = start + length
        if end > self.pe.shape[0]:
            self.pe = sine_table(max(end, 2 * self.pe.shape[0]), self.cfg.d_model).to(self.pe.device)
        return self.pe[start:end]

    def embed_text(self, phone_ids: Tensor, bert: Tensor) -> Tensor:
        """phone_ids [B,L] int64, bert [B,1024,L] -> text side [B,L,d] (positions 0..L-1)."""
        x = self.ar_text_embedding.word_embeddings(phone_ids)
        x = x + self.bert_proj(bert.transpose(1, 2))
        return x + self.ar_text_position.alpha * self.positions(0, x.shape[1])

    def embed_semantic(self, tokens: Tensor, start: int | Tensor = 0) -> Tensor:
        """tokens [B,T] -> [B,T,d] with positions start..start+T-1 (start: int or int64 [B])."""
        y = self.ar_audio_embedding.word_embeddings(tokens)
        alpha = self.ar_audio_position.alpha
        if isinstance(start, Tensor):
            idx = start.view(-1, 1) + torch.arange(tokens.shape[1], device=tokens.device).view(1, -1)
            self.positions(0, int(idx.max()) + 1)
            return y + alpha * self.pe[idx]
        return y + alpha * self.positions(start, tokens.shape[1])

    def logits(self, h_last: Tensor) -> Tensor:
        """h_last [B,d] -> logits [B,1025]."""
        return self.ar_predict_layer(h_last)

    def forward_full(self, xy: Tensor, allowed: Tensor | None) -> tuple[Tensor, list[tuple[Tensor, Tensor]]]:
        """Run all layers on xy [B,T,d]; returns hidden [B,T,d] and per-layer (k, v) [B,H,T,hd]."""
        cache = []
        h = xy
        for layer in self.layers:
            q, k, v = layer.qkv(h)
            cache.append((k, v))
            h = layer.finish(h, q, k, v, allowed)
        return h, cache

    def forward_step(self, x: Tensor, cache: list[tuple[Tensor, Tensor]],
                     allowed: Tensor | None = None) -> tuple[Tensor, list[tuple[Tensor, Tensor]]]:
        """One new position per row: x [B,1,d]; cache grown by concatenation (reference path only)."""
        new_cache = []
        h = x
        for layer, (k_old, v_old) in zip(self.layers, cache, strict=True):
            q, k, v = layer.qkv(h)
            k = torch.cat([k_old, k], dim=2)
            v = torch.cat([v_old, v], dim=2)
            new_cache.append((k, v))
            h = layer.finish(h, q, k, v, allowed)
        return h, new_cache


def load_gpt(path: str | Path) -> tuple[Text2SemanticModel, GPTConfig, GPTCheckpoint]:
    """Load a GPT ``.ckpt`` into a float32 eval-mode model (strict key match)."""
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
