"""Batched text-to-semantic GPT with a pre-allocated KV cache (prefill + one-token step).

Checkpoint-compatible with upstream GPT-SoVITS v2 ``Text2SemanticDecoder`` (post-norm transformer,
contiguous heads, no sqrt(d) embedding scale, sine positions scaled by a learned ``alpha``). Parameter
names equal the checkpoint's names (``model.`` prefix stripped), so ``load_state_dict`` takes them as-is.

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
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from renderer.checkpoints import load_gpt_checkpoint
from renderer.engine import packed_linear
from renderer.engine.step_attention import step_attention
from renderer.errors import CheckpointError

# Module shells that give the checkpoint's key names (ar_*_embedding.word_embeddings, ar_*_position.alpha,
# self_attn.in_proj_*): shared with the reference model so both load the same files the same way.
from renderer.models.gpt import _Alpha as _Position
from renderer.models.gpt import _SelfAttention
from renderer.models.gpt import _WordEmbedding as _Embedding

#: Longest supported position (text or semantic side).
MAX_POSITIONS = 4096


@dataclass(frozen=True)
class GPTDims:
    """Sizes of a v2 GPT, read from the checkpoint's ``config['model']``."""

    d_model: int
    n_head: int
    n_layer: int
    vocab_size: int = 1025
    phoneme_vocab_size: int = 732
    eos: int = 1024
    bert_dim: int = 1024

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    @classmethod
    def from_config(cls, model_config: dict) -> GPTDims:
        d = int(model_config["embedding_dim"])
        if int(model_config.get("hidden_dim", d)) != d:
            raise CheckpointError("<gpt>", "hidden_dim must equal embedding_dim")
        return cls(d_model=d, n_head=int(model_config["head"]), n_layer=int(model_config["n_layer"]),
                   vocab_size=int(model_config.get("vocab_size", 1025)),
                   phoneme_vocab_size=int(model_config.get("phoneme_vocab_size", 732)),
                   eos=int(model_config.get("EOS", 1024)))


def sine_table(n_positions: int, d_model: int) -> Tensor:
    """Upstream's sinusoid table in float32: [n_positions, d_model]."""
    pe = torch.zeros(n_positions, d_model)
    position = torch.arange(0, n_positions, dtype=torch.float32).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * -(math.log(10000.0) / d_model))
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe


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


class _Layer(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.self_attn = _SelfAttention(d)
        self.linear1 = nn.Linear(d, 4 * d)
        self.linear2 = nn.Linear(4 * d, d)
        self.norm1 = nn.LayerNorm(d, eps=1e-5)
        self.norm2 = nn.LayerNorm(d, eps=1e-5)

    def ffn_block(self, x: Tensor) -> Tensor:
        """Post-norm feed-forward half: LN2(x + W2 relu(W1 x))."""
        # the hidden layer only feeds linear2: it stays in the weights' dtype (exact, see packed_linear)
        hidden = lin(x, self.linear1.weight, self.linear1.bias, relu=True, keep_weight_dtype=True)
        return self.norm2(x + lin(hidden, self.linear2.weight, self.linear2.bias).to(x.dtype))


class _Stack(nn.Module):
    def __init__(self, d: int, n_layer: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(_Layer(d) for _ in range(n_layer))


class BatchedGPT(nn.Module):
    """The GPT's weights plus batched ``prefill`` and ``step``; see the module docstring for layouts."""

    pe: Tensor

    def __init__(self, dims: GPTDims, top_k_out: int = 64) -> None:
        super().__init__()
        self.dims = dims
        self.top_k_out = top_k_out
        #: decode-step attention kernel (renderer.engine.step_attention.MODES; EngineTuning.attention)
        self.attention = "auto"
        d = dims.d_model
        self.bert_proj = nn.Linear(dims.bert_dim, d)
        self.ar_text_embedding = _Embedding(dims.phoneme_vocab_size, d)
        self.ar_text_position = _Position()
        self.ar_audio_embedding = _Embedding(dims.vocab_size, d)
        self.ar_audio_position = _Position()
        self.h = _Stack(d, dims.n_layer)
        self.ar_predict_layer = nn.Linear(d, dims.vocab_size, bias=False)
        self.register_buffer("pe", sine_table(MAX_POSITIONS, d), persistent=False)

    @classmethod
    def from_checkpoint(cls, path: str | Path, top_k_out: int = 64) -> BatchedGPT:
        """Load a GPT ``.ckpt`` (upstream format) into an eval-mode float32 model."""
        ckpt = load_gpt_checkpoint(path)
        model = cls(GPTDims.from_config(ckpt.model_config), top_k_out=top_k_out)
        missing, unexpected = model.load_state_dict(ckpt.weights, strict=False)
        if missing or unexpected:
            problem = f"GPT weights do not match (missing {missing[:3]}, unexpected {unexpected[:3]})"
            raise CheckpointError(path, problem)
        return model.eval()

    def linear_weights(self) -> list[Tensor]:
        """The weight of every linear layer (what :meth:`cast_linears` casts and :meth:`pack_linears` packs)."""
        weights = [self.bert_proj.weight, self.ar_predict_layer.weight]
        for layer in self.layers():
            weights += [layer.self_attn.in_proj_weight, layer.self_attn.out_proj.weight,
                        layer.linear1.weight, layer.linear2.weight]
        return weights

    def pack_linears(self) -> int:
        """Prepack the linear weights for oneDNN (CPU inference; one extra copy of them in memory).
        Returns how many were packed (0 where this torch build cannot pack)."""
        return packed_linear.pack_weights(self.linear_weights())

    def cast_linears(self, dtype: torch.dtype) -> BatchedGPT:
        """Store every linear layer's weights in ``dtype`` (e.g. bfloat16); norms/embeddings stay float32.
        Packed copies are dropped (pack again after casting)."""
        packed_linear.unpack_weights(self.linear_weights())
        for module in [self.bert_proj, self.ar_predict_layer]:
            module.to(dtype)
        for layer in self.layers():
            attn = layer.self_attn
            attn.in_proj_weight.data = attn.in_proj_weight.data.to(dtype)
            attn.in_proj_bias.data = attn.in_proj_bias.data.to(dtype)
            for module in (attn.out_proj, layer.linear1, layer.linear2):
                module.to(dtype)
        return self

    @property
    def weight_dtype(self) -> torch.dtype:
        return self.ar_predict_layer.weight.dtype

    # ----------------------------------------------------------------------------------- pieces
    def layers(self) -> list[_Layer]:
        """The transformer layers, typed."""
        return [layer for layer in self.h.layers if isinstance(layer, _Layer)]

    def _heads(self, x: Tensor) -> Tensor:
        """[B, T, d] -> [B, H, T, hd] (heads are contiguous slices)."""
        b, t, _ = x.shape
        return x.view(b, t, self.dims.n_head, self.dims.head_dim).transpose(1, 2)

    def _merge(self, x: Tensor) -> Tensor:
        """[B, H, T, hd] -> [B, T, d]."""
        b, _, t, _ = x.shape
        return x.transpose(1, 2).reshape(b, t, self.dims.d_model)

    def _candidates(self, logits: Tensor, presence: Tensor, penalty: Tensor,
                    eos_block: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Penalise, mask EOS and keep the top-K.

        logits [B, V], presence [B, V] (1.0 where the token occurs in prompt + generated), penalty [B],
        eos_block [B] (1.0 = EOS not allowed yet). Returns values [B, K], indices [B, K] int64, lse [B].
        """
        rp = penalty.unsqueeze(1)
        penalised = torch.where(logits < 0, logits * rp, logits / rp)
        x = torch.where(presence > 0.5, penalised, logits)
        eos_col = torch.arange(x.shape[1], device=x.device) == self.dims.eos
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
        text = self.ar_text_embedding.word_embeddings(phone_ids) + lin(bert.transpose(1, 2), self.bert_proj.weight,
                                                                              self.bert_proj.bias)
        text = text + self.ar_text_position.alpha * self.pe[:x_max].unsqueeze(0)
        sem = self.ar_audio_embedding.word_embeddings(prompt)
        sem = sem + self.ar_audio_position.alpha * self.pe[:y_len].unsqueeze(0)
        both = torch.cat([text, sem], dim=1)  # [b, X+Y, d]; packing below moves semantic next to text
        t = torch.arange(x_max + y_len, device=phone_ids.device).unsqueeze(0)  # [1, T]
        lx = text_lens.unsqueeze(1)
        src = torch.where(t < lx, t, x_max + t - lx)
        src = torch.clamp(src, max=x_max + y_len - 1)
        return torch.gather(both, 1, src.unsqueeze(2).expand(b, x_max + y_len, self.dims.d_model))

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
        scale = 1.0 / math.sqrt(self.dims.head_dim)
        keys: list[Tensor] = []
        values: list[Tensor] = []
        for i, layer in enumerate(self.layers()):
            attn = layer.self_attn
            q, k, v = lin(h, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
            q, k, v = self._heads(q), self._heads(k), self._heads(v)
            out = self._merge(_prefill_attention(q, k, v, mask, scale))
            h = layer.norm1(h + lin(out, attn.out_proj.weight, attn.out_proj.bias))
            h = layer.ffn_block(h)
            if store is not None:
                store(i, k.transpose(2, 3), v)
            else:
                keys.append(k.transpose(2, 3).contiguous())  # [b, H, hd, T]
                values.append(v.contiguous())
        last = (text_lens + y_len - 1).view(-1, 1, 1).expand(-1, 1, self.dims.d_model)
        logits = lin(torch.gather(h, 1, last).squeeze(1), self.ar_predict_layer.weight, None)
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
        x = self.ar_audio_embedding.word_embeddings(tokens)
        x = (x + self.ar_audio_position.alpha * self.pe[positions]).unsqueeze(1)  # [B, 1, d]
        cap = past_keys[0].shape[3]
        dead = torch.arange(cap, device=tokens.device).view(1, 1, 1, cap) >= cache_lens.view(-1, 1, 1, 1)
        # additive mask, built once per step and shared by every layer
        mask = torch.zeros(dead.shape, dtype=x.dtype, device=x.device).masked_fill(dead, float("-inf"))
        scale = 1.0 / math.sqrt(self.dims.head_dim)
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
            x = layer.ffn_block(x)
            new_keys.append(k.squeeze(2))
            new_values.append(v.squeeze(2))
        logits = lin(x.squeeze(1), self.ar_predict_layer.weight, None)
        vals, idx, lse = self._candidates(logits, presence, penalty, eos_block)
        return vals, idx, lse, new_keys, new_values, (logits if return_logits else None)
