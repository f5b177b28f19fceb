"""The prefill's fused attention (eager) against the plain formulation that tracing/export use."""

from __future__ import annotations

import math

import pytest
import torch

from renderer.engine import batched_gpt as gpt_module
from renderer.models.gpt import GPTConfig, Text2SemanticModel


@pytest.mark.filterwarnings("ignore:`torch.jit.trace` is deprecated")
def test_fused_prefill_attention_matches_the_traced_formulation() -> None:
    g = torch.Generator().manual_seed(0)
    b, h, hd, y_len = 3, 4, 16, 5
    text_lens = torch.tensor([7, 3, 9])
    total = int(text_lens.max()) + y_len + 2  # padding positions at the end of every row
    q, k, v = (torch.randn(b, h, total, hd, generator=g) for _ in range(3))
    model = gpt_module.BatchedGPT(Text2SemanticModel(GPTConfig(d_model=h * hd, n_head=h, n_layer=1)))
    mask = model.prefill_mask(text_lens, total, y_len)
    scale = 1.0 / math.sqrt(hd)

    def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return gpt_module._prefill_attention(q, k, v, mask, scale)

    eager = attend(q, k, v)
    traced = torch.jit.trace(attend, (q, k, v))
    assert "scaled_dot_product_attention" not in str(traced.graph)
    plain = traced(q, k, v)
    assert torch.isfinite(eager).all()
    torch.testing.assert_close(eager, plain, atol=1e-5, rtol=1e-5)
    # a text position never sees the semantic side: changing semantic keys leaves row 0's text alone
    k2 = k.clone()
    k2[0, :, 7:] += 1.0
    torch.testing.assert_close(attend(q, k2, v)[0, :, :7], eager[0, :, :7])
