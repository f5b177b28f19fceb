"""Upstream's single-sequence GPT forward pass over the weights of :class:`Text2SemanticModel`.

The plain formulation (``F.linear``, ``scaled_dot_product_attention`` over a cache grown by concatenation)
that the engine's batched prefill and step (:mod:`renderer.engine.batched_gpt`) are compared against.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from renderer.models.gpt import GPTLayer, Text2SemanticModel, sine_table

KVCache = list[tuple[Tensor, Tensor]]


def positions(model: Text2SemanticModel, start: int, length: int) -> Tensor:
    """Sine rows ``[length, d]`` for positions start..start+length-1 (extends the model's table if needed)."""
    end = start + length
    if end > model.pe.shape[0]:
        model.pe = sine_table(max(end, 2 * model.pe.shape[0]), model.cfg.d_model).to(model.pe.device)
    return model.pe[start:end]


def embed_text(model: Text2SemanticModel, phone_ids: Tensor, bert: Tensor) -> Tensor:
    """phone_ids [B,L] int64, bert [B,1024,L] -> text side [B,L,d] (positions 0..L-1)."""
    x = model.ar_text_embedding.word_embeddings(phone_ids)
    x = x + model.bert_proj(bert.transpose(1, 2))
    return x + model.ar_text_position.alpha * positions(model, 0, x.shape[1])


def embed_semantic(model: Text2SemanticModel, tokens: Tensor, start: int | Tensor = 0) -> Tensor:
    """tokens [B,T] -> [B,T,d] with positions start..start+T-1 (start: int or int64 [B])."""
    y = model.ar_audio_embedding.word_embeddings(tokens)
    alpha = model.ar_audio_position.alpha
    if isinstance(start, Tensor):
        idx = start.view(-1, 1) + torch.arange(tokens.shape[1], device=tokens.device).view(1, -1)
        positions(model, 0, int(idx.max()) + 1)
        return y + alpha * model.pe[idx]
    return y + alpha * positions(model, start, tokens.shape[1])


def logits(model: Text2SemanticModel, h_last: Tensor) -> Tensor:
    """h_last [B,d] -> logits [B,1025]."""
    return model.ar_predict_layer(h_last)


def qkv(layer: GPTLayer, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """x [B,T,d] -> q, k, v each [B,H,T,hd] (heads are contiguous slices)."""
    b, t, _ = x.shape
    q, k, v = F.linear(x, layer.self_attn.in_proj_weight, layer.self_attn.in_proj_bias).chunk(3, dim=-1)
    shape = (b, t, layer.cfg.n_head, layer.cfg.head_dim)
    return q.view(shape).transpose(1, 2), k.view(shape).transpose(1, 2), v.view(shape).transpose(1, 2)


def finish(layer: GPTLayer, x: Tensor, q: Tensor, k: Tensor, v: Tensor, allowed: Tensor | None) -> Tensor:
    """Attention of q over (k, v) then the residual/FFN part.

    x [B,T,d]; q [B,H,T,hd]; k, v [B,H,S,hd]; allowed: bool [B|1,1|H,T,S] (True = may attend) or None.
    """
    b, t, d = x.shape
    attn = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    attn = attn.transpose(1, 2).reshape(b, t, d)
    x = layer.norm1(x + layer.self_attn.out_proj(attn))
    return layer.norm2(x + layer.linear2(F.relu(layer.linear1(x))))


def forward_full(model: Text2SemanticModel, xy: Tensor, allowed: Tensor | None) -> tuple[Tensor, KVCache]:
    """Run all layers on xy [B,T,d]; returns hidden [B,T,d] and per-layer (k, v) [B,H,T,hd]."""
    cache = []
    h = xy
    for layer in model.layers:
        q, k, v = qkv(layer, h)
        cache.append((k, v))
        h = finish(layer, h, q, k, v, allowed)
    return h, cache


def forward_step(model: Text2SemanticModel, x: Tensor, cache: KVCache,
                 allowed: Tensor | None = None) -> tuple[Tensor, KVCache]:
    """One new position per row: x [B,1,d]; the cache grows by concatenation."""
    new_cache = []
    h = x
    for layer, (k_old, v_old) in zip(model.layers, cache, strict=True):
        q, k, v = qkv(layer, h)
        k = torch.cat([k_old, k], dim=2)
        v = torch.cat([v_old, v], dim=2)
        new_cache.append((k, v))
        h = finish(layer, h, q, k, v, allowed)
    return h, new_cache
