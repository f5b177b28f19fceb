"""Next-token sampling exactly in upstream GPT-SoVITS order, on ``[B, V]`` logits.

Order (upstream ``logits_to_probs`` + ``multinomial_sample_one_no_sync``):

1. repetition penalty over every token present in the row's sequence (prompt + generated):
   positive logits divided by the penalty, negative ones multiplied (skipped when it is 1.0);
   upstream does this *in place*, so the EOS arg-max check sees the penalised logits;
2. top-p on the untempered, penalised logits (skipped when ``top_p >= 1``);
3. division by ``max(temperature, 1e-5)``;
4. top-k keeping ties: logits ``>=`` the k-th largest survive;
5. softmax, then ``argmax(probs / q)`` with ``q ~ Exp(1)`` per class (exponential race).

The caller removes the EOS column for the first 11 steps *before* calling (``V = 1024`` then).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

#: Steps during which EOS is impossible (upstream: at least ~0.4 s of audio).
MIN_STEPS_BEFORE_EOS = 11


@dataclass
class SampleOutput:
    """tokens [B] int64 sampled; argmax [B] int64 of the penalised logits; penalised logits [B, V]."""

    tokens: Tensor
    argmax: Tensor
    penalised: Tensor


def apply_repetition_penalty(logits: Tensor, seen: Tensor, penalty: float) -> Tensor:
    """logits [B,V], seen bool [B,V'] (V' >= V, True = token present) -> penalised copy [B,V]."""
    if penalty == 1.0:
        return logits
    mask = seen[:, : logits.shape[1]]
    scored = torch.where(logits < 0, logits * penalty, logits / penalty)
    return torch.where(mask, scored, logits)


def filter_top_p(logits: Tensor, top_p: float) -> Tensor:
    """Mask (-inf) the tail whose cumulative probability exceeds top_p; the best token always stays."""
    if top_p >= 1.0:
        return logits
    sorted_logits, sorted_idx = torch.sort(logits, descending=True)
    cum = torch.cumsum(torch.softmax(sorted_logits, dim=-1), dim=-1)
    remove_sorted = cum > top_p
    remove_sorted[:, 0] = False
    remove = remove_sorted.scatter(1, sorted_idx, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))


def filter_top_k(logits: Tensor, top_k: int) -> Tensor:
    """Keep logits >= the k-th largest of each row (ties kept), others -inf."""
    k = min(int(top_k), logits.shape[1])
    pivot = torch.topk(logits, k, dim=-1).values[:, -1:]
    return torch.where(logits < pivot, torch.full_like(logits, float("-inf")), logits)


def draw_exponential(shape: tuple[int, int], generators: Sequence[torch.Generator | None] | None,
                     device: torch.device | str = "cpu") -> Tensor:
    """q ~ Exp(1) of shape [B,V]; row i drawn from generators[i] (None = global RNG)."""
    b, v = shape
    if generators is None:
        return torch.empty(b, v, device=device).exponential_(1)
    rows = [torch.empty(1, v, device=device).exponential_(1, generator=g) for g in generators]
    return torch.cat(rows, dim=0)


def sample_next_tokens(
    logits: Tensor,
    seen: Tensor,
    *,
    top_k: int,
    top_p: float = 1.0,
    temperature: float = 1.0,
    repetition_penalty: float = 1.0,
    generators: Sequence[torch.Generator | None] | None = None,
    q: Tensor | None = None,
) -> SampleOutput:
    """Sample one token per row.

    logits [B,V] float (raw; EOS column already removed when idx < 11); seen bool [B,>=V]: token ids
    present in the row's prompt + generated sequence; generators: one per row for the exponential
    race (or pass ``q`` [B,V] directly). Returns tokens, the arg-max of the penalised logits (the
    upstream EOS check) and the penalised logits.
    """
    penalised = apply_repetition_penalty(logits.float(), seen, repetition_penalty)
    filtered = filter_top_p(penalised, top_p)
    filtered = filtered / max(float(temperature), 1e-5)
    filtered = filter_top_k(filtered, top_k)
    probs = torch.softmax(filtered, dim=-1)
    if q is None:
        q = draw_exponential((probs.shape[0], probs.shape[1]), generators, probs.device)
    tokens = torch.argmax(probs / q, dim=-1)
    return SampleOutput(tokens=tokens, argmax=torch.argmax(penalised, dim=-1), penalised=penalised)


def seen_mask(sequences: Sequence[Tensor], vocab_size: int) -> Tensor:
    """Bool [B, vocab] with True where a token id occurs in row i's sequence (1-D int tensors)."""
    mask = torch.zeros(len(sequences), vocab_size, dtype=torch.bool)
    for i, seq in enumerate(sequences):
        if seq.numel():
            mask[i, seq.long().clamp_max(vocab_size - 1)] = True
    return mask
