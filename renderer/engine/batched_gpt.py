"""The GPT run in batches with a pre-allocated KV cache: prefill + one-token step.

:class:`BatchedGPT` runs the one GPT model, :class:`renderer.models.gpt.Text2SemanticModel` (loaded by
:func:`renderer.models.gpt.load_gpt`, sized by :class:`renderer.models.gpt.GPTConfig`): a post-norm
transformer, contiguous heads, no sqrt(d) embedding scale, sine positions scaled by a learned ``alpha``.

Row layout. Each row is packed: text positions ``[0, Lx_i)`` then prompt semantic positions
``[Lx_i, Lx_i + Ly)`` then generated tokens, so a row's valid cache length is a single number and the
unused cache positions are masked by ``arange(cap) >= cache_len``. Text positions use sine positions
``0..Lx_i-1``; semantic positions restart at 0 (upstream).

Caches (one pair per layer, so each is bound as its own contiguous buffer by ONNX Runtime):
    key:   [B, H, hd, cap]   (stored transposed: the step's q @ K is a plain MatMul, no transpose copy)
    value: [B, H, cap, hd]
The step never concatenates onto the cache: scores over the cache and over the new key are computed
separately and merged in one softmax; the caller writes the new K/V at ``cache_len`` in place.

Both entry points return only the top-K candidates of the *penalised* logits (repetition penalty via a
per-row presence mask, EOS masked while ``eos_block``), plus their log-sum-exp (needed for exact top-p).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from renderer.engine import packed_linear
from renderer.engine.step_attention import step_attention
from renderer.models.gpt import GPTConfig, GPTLayer, Text2SemanticModel, load_gpt


def lin(x: Tensor, weight: Tensor, bias: Tensor | None, relu: bool = False,
        keep_weight_dtype: bool = False) -> Tensor:
    """``F.linear`` that also runs reduced-precision weights (activations cast to the weight's dtype for
    the product and the result back, so LayerNorm, softmax and residuals stay float32; not cast back
    with ``keep_weight_dtype``), on prepacked oneDNN weights in CPU inference once
    :meth:`BatchedGPT.pack_linears` ran (see packed_linear)."""
    return packed_linear.linear(x, weight, bias, relu, keep_weight_dtype)


def _prefill_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor, scale: float) -> Tensor:
    """softmax(q k^T * scale, masked) v: q/k/v [b,H,T,hd], mask [b,1,T,T] bool.

    Eager runs use torch's fused attention (no [b,H,T,T] score tensor in memory: prefill 1.5x faster
    at 17 rows x 240 positions on 2 CPU threads, BENCHMARKS.md); tracing and ONNX export keep the plain
    formulation, which every exporter handles. No row is fully masked (every position sees its text)."""
    if not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    scores = torch.matmul(q, k.transpose(2, 3)) * scale
    scores = scores.masked_fill(~mask, float("-inf"))
    return torch.matmul(torch.softmax(scores, dim=-1), v)


def _ffn_block(layer: GPTLayer, x: Tensor) -> Tensor:
    """Post-norm feed-forward half of ``layer``: LN2(x + W2 relu(W1 x))."""
    # the hidden layer only feeds linear2: it stays in the weights' dtype (exact, see packed_linear)
    hidden = lin(x, layer.linear1.weight, layer.linear1.bias, relu=True, keep_weight_dtype=True)
    return layer.norm2(x + lin(hidden, layer.linear2.weight, layer.linear2.bias).to(x.dtype))


class BatchedGPT(nn.Module):
    """Batched ``prefill`` and ``step`` over a :class:`Text2SemanticModel`; see the module docstring for layouts."""

    def __init__(self, model: Text2SemanticModel, top_k_out: int = 64) -> None:
        super().__init__()
        self.model = model
        self.config: GPTConfig = model.cfg
        self.top_k_out = top_k_out
        #: decode-step attention kernel (renderer.engine.step_attention.MODES; EngineTuning.attention)
        self.attention = "auto"

    @classmethod
    def from_checkpoint(cls, path: str | Path, top_k_out: int = 64) -> BatchedGPT:
        """Load a GPT ``.ckpt`` (upstream format) through :func:`load_gpt` (float32, eval mode)."""
        model, _cfg, _ckpt = load_gpt(path)
        return cls(model, top_k_out=top_k_out).eval()

    def linear_weights(self) -> list[Tensor]:
        """The weight of every linear layer (what :meth:`cast_linears` casts and :meth:`pack_linears` packs)."""
        return self.model.linear_weights()

    def pack_linears(self) -> int:
        """Prepack the linear weights for oneDNN (CPU inference; one extra copy of them in memory).
        Returns how many were packed (0 where this torch build cannot pack)."""
        return packed_linear.pack_weights(self.linear_weights())

    def cast_linears(self, dtype: torch.dtype) -> BatchedGPT:
        """Store every linear layer's weights in ``dtype`` (e.g. bfloat16); norms/embeddings stay float32.
        Packed copies are dropped (pack again after casting)."""
        packed_linear.unpack_weights(self.linear_weights())
        self.model.cast_linears(dtype)
        return self

    @property
    def weight_dtype(self) -> torch.dtype:
        return self.model.weight_dtype

    # ----------------------------------------------------------------------------------- pieces
    def layers(self) -> list[GPTLayer]:
        """The transformer layers, typed."""
        return self.model.layers

    def _heads(self, x: Tensor) -> Tensor:
        """[B, T, d] -> [B, H, T, hd] (heads are contiguous slices)."""
        b, t, _ = x.shape
        return x.view(b, t, self.config.n_head, self.config.head_dim).transpose(1, 2)

    def _merge(self, x: Tensor) -> Tensor:
        """[B, H, T, hd] -> [B, T, d]."""
        b, _, t, _ = x.shape
        return x.transpose(1, 2).reshape(b, t, self.config.d_model)

    def _candidates(self, logits: Tensor, presence: Tensor, penalty: Tensor,
                    eos_block: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Penalise, mask EOS and keep the top-K.

        logits [B, V], presence [B, V] (1.0 where the token occurs in prompt + generated), penalty [B],
        eos_block [B] (1.0 = EOS not allowed yet). Returns values [B, K], indices [B, K] int64, lse [B].
        """
        rp = penalty.unsqueeze(1)
        penalised = torch.where(logits < 0, logits * rp, logits / rp)
        x = torch.where(presence > 0.5, penalised, logits)
        eos_col = torch.arange(x.shape[1], device=x.device) == self.config.eos
        blocked = eos_col.unsqueeze(0) & (eos_block.unsqueeze(1) > 0.5)
        x = x.masked_fill(blocked, float("-inf"))
        lse = torch.logsumexp(x, dim=-1)
        values, indices = torch.topk(x, min(self.top_k_out, x.shape[1]), dim=-1)
        return values, indices, lse

    # ----------------------------------------------------------------------------------- prefill
    def embed_prefill(self, phone_ids: Tensor, bert: Tensor, text_lens: Tensor, prompt: Tensor) -> Tensor:
        """Packed transformer input [b, X+Y, d]: per row text (Lx_i), then the Y prompt tokens, then padding."""
        b, x_max = phone_ids.shape
        y_len = prompt.shape[1]
        m = self.model
        text = m.ar_text_embedding.word_embeddings(phone_ids) + lin(bert.transpose(1, 2), m.bert_proj.weight,
                                                                    m.bert_proj.bias)
        text = text + self.model.ar_text_position.alpha * self.model.pe[:x_max].unsqueeze(0)
        sem = self.model.ar_audio_embedding.word_embeddings(prompt)
        sem = sem + self.model.ar_audio_position.alpha * self.model.pe[:y_len].unsqueeze(0)
        both = torch.cat([text, sem], dim=1)  # [b, X+Y, d]; packing below moves semantic next to text
        t = torch.arange(x_max + y_len, device=phone_ids.device).unsqueeze(0)  # [1, T]
        lx = text_lens.unsqueeze(1)
        src = torch.where(t < lx, t, x_max + t - lx)
        src = torch.clamp(src, max=x_max + y_len - 1)
        return torch.gather(both, 1, src.unsqueeze(2).expand(b, x_max + y_len, self.config.d_model))

    def prefill_mask(self, text_lens: Tensor, total: int, y_len: int) -> Tensor:
        """Boolean [b, 1, T, T] (True = may attend): text sees text; semantic sees text + causal semantic."""
        t = torch.arange(total, device=text_lens.device)
        q = t.view(1, total, 1)
        k = t.view(1, 1, total)
        lx = text_lens.view(-1, 1, 1)
        valid = k < lx + y_len
        allowed = (k < lx) | ((q >= lx) & (k <= q) & valid)
        return allowed.unsqueeze(1)

    def prefill(self, phone_ids: Tensor, bert: Tensor, text_lens: Tensor, prompt: Tensor, presence: Tensor,
                penalty: Tensor, eos_block: Tensor, return_logits: bool = False,
                store: Callable[[int, Tensor, Tensor], None] | None = None
                ) -> tuple[Tensor, Tensor, Tensor, list[Tensor], list[Tensor], Tensor | None]:
        """First pass over b rows.

        phone_ids [b, X] int64 (row i valid for text_lens[i] entries), bert [b, 1024, X] float32,
        text_lens [b] int64, prompt [b, Y] int64 (Y may be 0), presence [b, V], penalty [b], eos_block [b].
        Returns (values [b,K], indices [b,K], lse [b], keys per layer [b,H,hd,T], values per layer
        [b,H,T,hd], raw logits [b,V] or None); T = X + Y, valid length of row i = text_lens[i] + Y.
        ``store(layer, keys [b,H,hd,T] (a transposed view), values [b,H,T,hd])`` takes each layer's K/V as
        soon as it exists, and the returned lists stay empty: an in-place cache then never holds all
        layers twice (8 rows x 260 positions are 200 MB in fp32).
        """
        y_len = prompt.shape[1]
        h = self.embed_prefill(phone_ids, bert, text_lens, prompt)
        total = h.shape[1]
        mask = self.prefill_mask(text_lens, total, y_len)
        scale = 1.0 / math.sqrt(self.config.head_dim)
        keys: list[Tensor] = []
        values: list[Tensor] = []
        for i, layer in enumerate(self.layers()):
            attn = layer.self_attn
            q, k, v = lin(h, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
            q, k, v = self._heads(q), self._heads(k), self._heads(v)
            out = self._merge(_prefill_attention(q, k, v, mask, scale))
            h = layer.norm1(h + lin(out, attn.out_proj.weight, attn.out_proj.bias))
            h = _ffn_block(layer, h)
            if store is not None:
                store(i, k.transpose(2, 3), v)
            else:
                keys.append(k.transpose(2, 3).contiguous())  # [b, H, hd, T]
                values.append(v.contiguous())
        last = (text_lens + y_len - 1).view(-1, 1, 1).expand(-1, 1, self.config.d_model)
        logits = lin(torch.gather(h, 1, last).squeeze(1), self.model.ar_predict_layer.weight, None)
        vals, idx, lse = self._candidates(logits, presence, penalty, eos_block)
        return vals, idx, lse, keys, values, (logits if return_logits else None)

    # ----------------------------------------------------------------------------------- step
    def step(self, tokens: Tensor, positions: Tensor, cache_lens: Tensor, presence: Tensor, penalty: Tensor,
             eos_block: Tensor, past_keys: list[Tensor], past_values: list[Tensor], return_logits: bool = False,
             store_new: bool = False) -> tuple[Tensor, Tensor, Tensor, list[Tensor], list[Tensor], Tensor | None]:
        """One token for every slot.

        tokens [B] int64 (last token of each row), positions [B] int64 (semantic sine position of that
        token = Ly + step), cache_lens [B] int64 (valid cache entries; the new K/V go there),
        past_keys[l] [B,H,hd,cap], past_values[l] [B,H,cap,hd]. Returns (values [B,K], indices [B,K],
        lse [B], new keys per layer [B,H,hd], new values per layer [B,H,hd], raw logits or None).
        ``store_new`` also writes the new keys/values into the caches at ``cache_lens`` (the in-place cache
        of the torch backend; exported graphs return them instead).
        """
        x = self.model.ar_audio_embedding.word_embeddings(tokens)
        x = (x + self.model.ar_audio_position.alpha * self.model.pe[positions]).unsqueeze(1)  # [B, 1, d]
        cap = past_keys[0].shape[3]
        dead = torch.arange(cap, device=tokens.device).view(1, 1, 1, cap) >= cache_lens.view(-1, 1, 1, 1)
        # additive mask, built once per step and shared by every layer
        mask = torch.zeros(dead.shape, dtype=x.dtype, device=x.device).masked_fill(dead, float("-inf"))
        scale = 1.0 / math.sqrt(self.config.head_dim)
        new_keys: list[Tensor] = []
        new_values: list[Tensor] = []
        for i, layer in enumerate(self.layers()):
            attn = layer.self_attn
            q, k, v = lin(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
            q, k, v = self._heads(q), self._heads(k), self._heads(v)  # [B, H, 1, hd]
            # cache + new token in one softmax; a fused CPU kernel where available (see step_attention)
            out = step_attention(q, k, v, past_keys[i], past_values[i], cache_lens, mask, scale,
                                 store=store_new, kernel=self.attention)  # [B, H, 1, hd]
            x = layer.norm1(x + lin(self._merge(out), attn.out_proj.weight, attn.out_proj.bias))
            x = _ffn_block(layer, x)
            new_keys.append(k.squeeze(2))
            new_values.append(v.squeeze(2))
        logits = lin(x.squeeze(1), self.model.ar_predict_layer.weight, None)
        vals, idx, lse = self._candidates(logits, presence, penalty, eos_block)
        return vals, idx, lse, new_keys, new_values, (logits if return_logits else None)
