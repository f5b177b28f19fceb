"""Candidate-based sampling equals full-vocabulary sampling (and the models helper's reference math)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from renderer.engine.options import SamplingOptions
from renderer.engine.sampling import sample_candidates, sample_full
from renderer.errors import OptionsError
from tests.oracles.sampling import sample_next_tokens, seen_mask

CASES = [
    SamplingOptions(top_k=1),
    SamplingOptions(top_k=15, temperature=1.0),
    SamplingOptions(top_k=15, top_p=0.6, temperature=0.7),
    SamplingOptions(top_k=40, top_p=0.95, temperature=1.3, repetition_penalty=1.0),
    SamplingOptions(top_k=5, top_p=0.2, temperature=0.01, repetition_penalty=2.0),
]


def _penalised_candidates(logits: torch.Tensor, previous: torch.Tensor, options: SamplingOptions, step: int,
                          k_out: int = 64):
    x = logits.clone()
    if options.repetition_penalty != 1.0:
        sc = x[previous]
        x[previous] = torch.where(sc < 0, sc * options.repetition_penalty, sc / options.repetition_penalty)
    if step < 11:
        x[1024] = float("-inf")
    vals, idx = torch.topk(x, k_out)
    return vals.numpy(), idx.numpy(), float(torch.logsumexp(x, 0))


@pytest.mark.parametrize("options", CASES)
def test_candidates_match_full_vocabulary(options: SamplingOptions) -> None:
    gen_data = torch.Generator().manual_seed(7)
    agree = 0
    for trial in range(60):
        logits = torch.randn(1025, generator=gen_data) * 3
        previous = torch.randint(0, 1024, (30,), generator=gen_data)
        step = trial % 20
        seed = 1000 + trial
        full = sample_full(logits, previous, options, step, torch.Generator().manual_seed(seed))
        vals, idx, lse = _penalised_candidates(logits, previous, options, step)
        cand = sample_candidates(vals, idx, lse, options, step, torch.Generator().manual_seed(seed))
        ref_logits = logits[:1024] if step < 11 else logits
        ref = sample_next_tokens(ref_logits.view(1, -1), seen_mask([previous], 1025), top_k=options.top_k,
                                 top_p=options.top_p, temperature=options.temperature,
                                 repetition_penalty=options.repetition_penalty,
                                 generators=[torch.Generator().manual_seed(seed)])
        assert cand == full
        assert full.token == int(ref.tokens[0]) and full.argmax == int(ref.argmax[0])
        agree += int(full.token == full.argmax)
    if options.top_k == 1:
        assert agree == 60  # greedy


def test_eos_blocked_in_first_steps() -> None:
    logits = torch.full((1025,), -5.0)
    logits[1024] = 10.0
    for step in range(11):
        vals, idx, lse = _penalised_candidates(logits, torch.zeros(0, dtype=torch.long), SamplingOptions(top_k=1),
                                               step)
        draw = sample_candidates(vals, idx, lse, SamplingOptions(top_k=1), step, torch.Generator())
        assert draw.token != 1024 and draw.argmax != 1024
    vals, idx, lse = _penalised_candidates(logits, torch.zeros(0, dtype=torch.long), SamplingOptions(top_k=1), 11)
    assert sample_candidates(vals, idx, lse, SamplingOptions(top_k=1), 11, torch.Generator()).argmax == 1024


def test_top_k_beyond_candidates_is_refused() -> None:
    vals = np.linspace(1, 0, 8).astype(np.float32)
    with pytest.raises(OptionsError):
        sample_candidates(vals, np.arange(8), 2.0, SamplingOptions(top_k=20), 12, torch.Generator())
