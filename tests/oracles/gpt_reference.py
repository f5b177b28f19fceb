"""Reference (slow, obviously-correct) GPT decoding that batched engines are compared against.

* :func:`generate_reference` reproduces upstream ``infer_panel_naive`` for one sequence.
* :func:`generate_batch_infer_reference` reproduces upstream ``infer_panel_batch_infer``
  (left-padded text, shared prompt, finished rows removed, the ``y[row, :-1]`` quirk).

Randomness: the exponential race draws ``q`` from ``generator``; on CPU a ``torch.Generator`` seeded
with ``s`` yields the same stream as upstream after ``torch.manual_seed(s)``, so sampled (non-greedy)
runs are reproducible against upstream too.

The sampling math lives in :mod:`tests.oracles.sampling` (``sample_next_tokens`` works on
``[B, V]`` logits and is re-exported here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from renderer.models.gpt import Text2SemanticModel
from tests.oracles import gpt_forward as fwd
from tests.oracles.sampling import MIN_STEPS_BEFORE_EOS, SampleOutput, sample_next_tokens, seen_mask

__all__ = [
    "BatchInferResult",
    "ReferenceResult",
    "generate_batch_infer_reference",
    "generate_reference",
    "sample_next_tokens",
    "first_pass_mask",
]

#: Upstream's loop bound: at most this many decode steps (idx 0..1499).
MAX_STEPS = 1500


@dataclass
class ReferenceResult:
    """tokens: generated int64 [N] (EOS removed); idx: upstream's loop index at stop (0 without prompt);
    stopped_by_eos; logits: raw float32 [n_steps, 1025] (before EOS removal / penalty / top-k)."""

    tokens: Tensor
    idx: int
    stopped_by_eos: bool
    logits: Tensor


def _option(options: Any, name: str, default: Any) -> Any:
    return getattr(options, name, default) if options is not None else default


def first_pass_mask(text_len: int, sem_len: int) -> Tensor:
    """Bool [T,T] (True = may attend), T = text_len + sem_len: text sees text only; semantic sees
    all text and itself/earlier semantic positions."""
    total = text_len + sem_len
    allowed = torch.zeros(total, total, dtype=torch.bool)
    allowed[:, :text_len] = True
    allowed[text_len:, text_len:] = torch.ones(sem_len, sem_len, dtype=torch.bool).tril()
    return allowed


def _sample_rows(logits: Tensor, seqs: list[Tensor], idx: int, options: Any,
                 generators: list[torch.Generator | None]) -> SampleOutput:
    """logits [B,1025] of step idx; seqs: each row's prompt + generated tokens."""
    if idx < MIN_STEPS_BEFORE_EOS:
        logits = logits[:, :-1]
    return sample_next_tokens(
        logits, seen_mask(seqs, 1025),
        top_k=int(_option(options, "top_k", 15)), top_p=float(_option(options, "top_p", 1.0)),
        temperature=float(_option(options, "temperature", 1.0)),
        repetition_penalty=float(_option(options, "repetition_penalty", 1.35)),
        generators=generators,
    )


@torch.no_grad()
def generate_reference(
    model: Text2SemanticModel,
    phone_ids: Tensor,
    bert: Tensor,
    prompt: Tensor | None,
    options: Any = None,
    early_stop_num: int = -1,
    generator: torch.Generator | None = None,
) -> ReferenceResult:
    """Upstream ``infer_panel_naive`` for one sequence.

    phone_ids int64 [Lx] (reference phones ++ target phones); bert float32 [1024, Lx]; prompt int64 [Ly]
    or None (reference-free); options: anything with top_k/top_p/temperature/repetition_penalty
    (``renderer.engine.options.SamplingOptions``); early_stop_num: -1 = off, else stop once more than
    this many tokens were generated (kept).
    """
    eos = model.cfg.eos
    x = fwd.embed_text(model, phone_ids.view(1, -1).long(), bert.view(1, bert.shape[0], -1).float())
    prompt_len = 0 if prompt is None else int(prompt.numel())
    seq = torch.zeros(0, dtype=torch.long) if prompt is None else prompt.view(-1).long().clone()
    if prompt_len:
        xy = torch.cat([x, fwd.embed_semantic(model, seq.view(1, -1), 0)], dim=1)
    else:
        xy = x
    h, cache = fwd.forward_full(model, xy, first_pass_mask(x.shape[1], prompt_len).view(1, 1, *([xy.shape[1]] * 2)))
    all_logits: list[Tensor] = []
    stopped_by_eos = False
    idx = 0
    for idx in range(MAX_STEPS):
        if idx > 0:
            step_in = fwd.embed_semantic(model, seq[-1:].view(1, 1), prompt_len + idx - 1)
            h, cache = fwd.forward_step(model, step_in, cache)
        logits = fwd.logits(model, h[:, -1])
        all_logits.append(logits[0].clone())
        out = _sample_rows(logits, [seq], idx, options, [generator])
        seq = torch.cat([seq, out.tokens.view(1)])
        early = early_stop_num != -1 and (seq.numel() - prompt_len) > early_stop_num
        if int(out.argmax[0]) == eos or int(out.tokens[0]) == eos:
            stopped_by_eos = True
            seq = seq[:-1]
            break
        if early:
            break
    return ReferenceResult(
        tokens=seq[prompt_len:].clone(), idx=idx if prompt_len else 0,
        stopped_by_eos=stopped_by_eos, logits=torch.stack(all_logits),
    )


@dataclass
class BatchInferResult:
    """Per input row: y (prompt + generated as upstream returns it, i.e. ``y[row, :-1]``), idx,
    and the raw logits of the first step [B, 1025]."""

    ys: list[Tensor]
    idx: list[int]
    first_logits: Tensor


def _batch_prefill(model: Text2SemanticModel, phones: list[Tensor], berts: list[Tensor],
                   prompt: Tensor) -> tuple[Tensor, Tensor]:
    """Left-pad each item's embedded text to max_len; returns xy [B,T,d] and allowed [B,1,T,T]."""
    lens = [int(p.numel()) for p in phones]
    max_len = max(lens)
    b = len(phones)
    d = model.cfg.d_model
    x = torch.zeros(b, max_len, d)
    text_valid = torch.zeros(b, max_len, dtype=torch.bool)
    for i, (p, bt) in enumerate(zip(phones, berts, strict=True)):
        emb = fwd.embed_text(model, p.view(1, -1).long(), bt.view(1, bt.shape[0], -1).float())[0]
        x[i, max_len - lens[i]:] = emb
        text_valid[i, max_len - lens[i]:] = True
    ly = int(prompt.numel())
    y = fwd.embed_semantic(model, prompt.view(1, -1).long(), 0).expand(b, -1, -1)
    xy = torch.cat([x, y], dim=1)
    allowed = first_pass_mask(max_len, ly).view(1, 1, max_len + ly, max_len + ly).repeat(b, 1, 1, 1)
    allowed[:, 0, :, :max_len] &= text_valid.view(b, 1, max_len)
    return xy, allowed


@torch.no_grad()
def generate_batch_infer_reference(
    model: Text2SemanticModel,
    phones: list[Tensor],
    berts: list[Tensor],
    prompt: Tensor,
    options: Any = None,
    early_stop_num: int = -1,
    generators: list[torch.Generator | None] | None = None,
) -> BatchInferResult:
    """Upstream ``infer_panel_batch_infer`` semantics with a shared prompt [Ly] for all rows."""
    b = len(phones)
    eos = model.cfg.eos
    ly = int(prompt.numel())
    xy, allowed = _batch_prefill(model, phones, berts, prompt)
    key_valid = allowed[:, 0, -1, :].clone()  # [B,S]: what a semantic query may attend to
    h, cache = fwd.forward_full(model, xy, allowed)
    seqs = [prompt.view(-1).long().clone() for _ in range(b)]
    live = list(range(b))
    gens = generators or [None] * b
    ys: list[Tensor | None] = [None] * b
    idx_out = [0] * b
    first_logits = torch.zeros(0)
    for idx in range(MAX_STEPS):
        logits = fwd.logits(model, h[:, -1])
        if idx == 0:
            first_logits = logits.clone()
        out = _sample_rows(logits, [seqs[r] for r in live], idx, options, [gens[r] for r in live])
        for j, r in enumerate(live):
            seqs[r] = torch.cat([seqs[r], out.tokens[j].view(1)])
        done = [j for j, r in enumerate(live)
                if int(out.argmax[j]) == eos or int(out.tokens[j]) == eos]
        early = early_stop_num != -1 and (int(seqs[live[0]].numel()) - ly) > early_stop_num
        if early or idx == MAX_STEPS - 1:
            done = list(range(len(live)))
        for j in done:
            ys[live[j]] = seqs[live[j]][:-1].clone()
            idx_out[live[j]] = idx
        keep = [j for j in range(len(live)) if j not in done]
        if not keep:
            break
        keep_t = torch.tensor(keep)
        live = [live[j] for j in keep]
        cache = [(k[keep_t], v[keep_t]) for k, v in cache]
        key_valid = torch.cat([key_valid[keep_t], torch.ones(len(keep), 1, dtype=torch.bool)], dim=1)
        step_in = fwd.embed_semantic(model, torch.stack([seqs[r][-1:] for r in live]), ly + idx)
        h, cache = fwd.forward_step(model, step_in, cache, key_valid.view(len(live), 1, 1, -1))
    return BatchInferResult(ys=[y if y is not None else torch.zeros(0, dtype=torch.long) for y in ys],
                            idx=idx_out, first_logits=first_logits)
