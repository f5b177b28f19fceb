"""Unit tests of the upstream-order sampling math."""

from __future__ import annotations

import torch

from tests.oracles.sampling import (
    apply_repetition_penalty,
    filter_top_k,
    filter_top_p,
    sample_next_tokens,
    seen_mask,
)


def test_repetition_penalty_divides_positive_multiplies_negative():
    logits = torch.tensor([[2.0, -2.0, 1.0, -1.0]])
    seen = seen_mask([torch.tensor([0, 1, 1])], 4)
    out = apply_repetition_penalty(logits, seen, 2.0)
    assert out.tolist() == [[1.0, -4.0, 1.0, -1.0]]


def test_top_k_keeps_ties():
    logits = torch.tensor([[3.0, 1.0, 3.0, 2.0, 2.0]])
    out = filter_top_k(logits, 3)
    assert torch.isfinite(out).tolist() == [[True, False, True, True, True]]


def test_top_p_keeps_best_and_cuts_tail():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    out = filter_top_p(logits, 0.85)  # cumulative 0.5, 0.8 | 0.95 > 0.85
    assert torch.isfinite(out).tolist() == [[True, True, False, False]]
    assert torch.isfinite(filter_top_p(logits, 0.01)).tolist() == [[True, False, False, False]]
    assert torch.equal(filter_top_p(logits, 1.0), logits)


def test_greedy_ignores_noise_and_rows_are_independent():
    logits = torch.randn(3, 50, generator=torch.Generator().manual_seed(0))
    seen = torch.zeros(3, 50, dtype=torch.bool)
    out = sample_next_tokens(logits, seen, top_k=1, q=torch.rand(3, 50) + 0.01)
    assert torch.equal(out.tokens, logits.argmax(-1))
    gens = [torch.Generator().manual_seed(s) for s in (1, 2, 3)]
    a = sample_next_tokens(logits, seen, top_k=50, generators=gens).tokens
    gens2 = [torch.Generator().manual_seed(s) for s in (9, 2, 8)]
    b = sample_next_tokens(logits, seen, top_k=50, generators=gens2).tokens
    assert a[1] == b[1]


def test_argmax_reported_on_penalised_logits():
    logits = torch.tensor([[5.0, 4.0]])
    out = sample_next_tokens(logits, seen_mask([torch.tensor([0])], 2), top_k=1, repetition_penalty=2.0)
    assert int(out.argmax[0]) == 1 and int(out.tokens[0]) == 1
