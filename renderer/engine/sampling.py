"""Upstream GPT-SoVITS token sampling, in two equivalent forms.

Order (upstream ``logits_to_probs`` + ``multinomial_sample_one_no_sync``): repetition penalty over the
tokens present in prompt + generated; top-p on the untempered logits (skipped when ``top_p >= 1``);
division by ``max(temperature, 1e-5)``; top-k keeping every logit >= the k-th largest (ties kept);
softmax; ``argmax(probs / q)`` with ``q ~ Exp(1)`` drawn for every class. While ``step < 11`` the EOS
column is absent, so ``q`` has one value fewer (the random stream must be consumed exactly alike).

:func:`sample_full` works on the full logit vector (the reference); :func:`sample_candidates` works on
the top-K candidates the engine graphs return (penalised values, their vocabulary ids and the
log-sum-exp of the whole penalised row) and gives the same token: classes outside the top-K have zero
probability after top-k, and top-p only needs the cumulative probabilities of the leading sorted entries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from renderer.engine.options import SamplingOptions
from renderer.errors import OptionsError

#: Steps during which EOS cannot be produced (upstream: at least ~0.4 s of audio).
MIN_STEPS_BEFORE_EOS = 11


@dataclass(frozen=True)
class Draw:
    """Outcome of one sampling step: the sampled token and the arg-max of the penalised logits."""

    token: int
    argmax: int


def draw_exponentials(generator: torch.Generator, n_classes: int) -> np.ndarray:
    """``q ~ Exp(1)`` for every class, float32 [n_classes], from the row's own CPU generator."""
    return torch.empty(n_classes, dtype=torch.float32).exponential_(1.0, generator=generator).numpy()


def sample_full(logits: torch.Tensor, previous: torch.Tensor, options: SamplingOptions, step: int,
                generator: torch.Generator, eos: int = 1024) -> Draw:
    """Reference sampling on raw logits [V] (float32) with ``previous`` = prompt + generated ids."""
    x = logits.detach().to(torch.float32).clone()
    if step < MIN_STEPS_BEFORE_EOS:
        x = x[:eos]
    if options.repetition_penalty != 1.0 and previous.numel() > 0:
        prev = previous.long()
        score = torch.gather(x, 0, prev)
        score = torch.where(score < 0, score * options.repetition_penalty, score / options.repetition_penalty)
        x.scatter_(0, prev, score)
    argmax = int(torch.argmax(x))
    if options.top_p < 1.0:
        sorted_logits, sorted_idx = torch.sort(x, descending=True)
        cum = torch.cumsum(torch.softmax(sorted_logits, dim=-1), dim=-1)
        remove = cum > options.top_p
        remove[0] = False
        x = x.masked_fill(remove.scatter(0, sorted_idx, remove), float("-inf"))
    x = x / max(options.temperature, 1e-5)
    k = min(options.top_k, x.shape[0])
    pivot = torch.topk(x, k).values[-1]
    x = torch.where(x < pivot, torch.full_like(x, float("-inf")), x)
    probs = torch.softmax(x, dim=-1)
    q = torch.from_numpy(draw_exponentials(generator, x.shape[0]))
    return Draw(token=int(torch.argmax(probs / q)), argmax=argmax)


def sample_candidates(values: np.ndarray, indices: np.ndarray, lse: float, options: SamplingOptions,
                      step: int, generator: torch.Generator, vocab_size: int = 1025) -> Draw:
    """Same result as :func:`sample_full` from the graph's top-K output.

    values [K] float32 penalised logits in descending order (EOS already -inf while blocked),
    indices [K] their vocabulary ids, lse the log-sum-exp over the whole penalised row.
    """
    n_classes = vocab_size - 1 if step < MIN_STEPS_BEFORE_EOS else vocab_size
    q = draw_exponentials(generator, n_classes)
    values = values.astype(np.float32, copy=False)
    if options.top_k > len(values):
        raise OptionsError(f"top_k={options.top_k} exceeds the {len(values)} candidates this backend returns")
    top = values[0]
    argmax = int(indices[values == top].min())
    x = values.copy()
    if options.top_p < 1.0:
        cum = np.cumsum(np.exp(values - np.float32(lse)), dtype=np.float32)
        remove = cum > np.float32(options.top_p)
        remove[0] = False
        x[remove] = -np.inf
    x = x / np.float32(max(options.temperature, 1e-5))
    pivot = np.sort(x)[::-1][options.top_k - 1]
    keep = x >= pivot
    kept = x[keep]
    probs = np.exp(kept - kept.max())
    probs = probs / probs.sum(dtype=np.float32)
    ids = indices[keep]
    ratio = probs / q[ids]
    best = ratio.max()
    return Draw(token=int(ids[ratio == best].min()), argmax=argmax)
