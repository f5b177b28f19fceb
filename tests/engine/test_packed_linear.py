"""Linear layers on prepacked oneDNN weights against ``F.linear`` (renderer.engine.packed_linear)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from renderer.engine import packed_linear as pl
from renderer.engine.batched_gpt import BatchedGPT

pytestmark = pytest.mark.skipif(not pl.packing_available(), reason="this torch build has no oneDNN packed linear")


def _layer(n_in: int = 48, n_out: int = 80, seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(n_in, n_out).eval().requires_grad_(False)


def test_packed_matches_plain_linear_and_fused_relu() -> None:
    layer = _layer()
    x = torch.randn(5, 7, 48)
    plain = F.linear(x, layer.weight, layer.bias)
    assert pl.pack_weights([layer.weight]) == 1
    assert pl.packed_weight(layer.weight) is not None
    torch.testing.assert_close(pl.linear(x, layer.weight, layer.bias), plain, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(pl.linear(x, layer.weight, layer.bias, relu=True), F.relu(plain), atol=1e-5, rtol=1e-5)
    # a non-contiguous input (the GPT feeds transposed BERT features) gives the same result
    xt = x.transpose(1, 2).contiguous().transpose(1, 2)
    torch.testing.assert_close(pl.linear(xt, layer.weight, layer.bias), plain, atol=1e-5, rtol=1e-5)


def test_bf16_weights_keep_float32_activations() -> None:
    layer = _layer().to(torch.bfloat16)
    x = torch.randn(6, 48)
    expected = F.linear(x.bfloat16(), layer.weight, layer.bias).float()
    pl.pack_weights([layer.weight])
    out = pl.linear(x, layer.weight, layer.bias)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, expected, atol=1e-2, rtol=1e-2)


@pytest.mark.parametrize("packed", [True, False])
def test_ffn_hidden_layer_kept_in_bf16_gives_the_same_numbers(packed: bool) -> None:
    """The FFN's hidden layer skips the float32 round trip: bf16 -> float32 -> bf16 is exact, so the
    second product sees the very same input, packed or plain."""
    first, second = _layer(48, 96, seed=1).to(torch.bfloat16), _layer(96, 48, seed=2).to(torch.bfloat16)
    if packed:
        pl.pack_weights([first.weight, second.weight])
    x = torch.randn(9, 48)
    hidden_kept = pl.linear(x, first.weight, first.bias, relu=True, keep_weight_dtype=True)
    hidden_f32 = pl.linear(x, first.weight, first.bias, relu=True)
    assert hidden_kept.dtype == torch.bfloat16 and hidden_f32.dtype == torch.float32
    assert torch.equal(hidden_kept.float(), hidden_f32)
    out_kept = pl.linear(hidden_kept, second.weight, second.bias)
    assert out_kept.dtype == torch.bfloat16  # the caller casts where it needs float32 (the residual sum)
    assert torch.equal(out_kept.float(), pl.linear(hidden_f32, second.weight, second.bias))


def test_a_row_does_not_depend_on_the_batch_beside_it() -> None:
    layer = _layer(512, 1024)
    pl.pack_weights([layer.weight])
    x = torch.randn(64, 512)
    full = pl.linear(x, layer.weight, layer.bias)
    for rows in (1, 3, 8, 17, 33):
        assert torch.equal(pl.linear(x[:rows], layer.weight, layer.bias), full[:rows]), rows


def test_stale_packed_copy_is_never_used() -> None:
    layer = _layer()
    pl.pack_weights([layer.weight])
    with torch.no_grad():
        layer.weight.mul_(2.0)  # in place: the version counter moves
    assert pl.packed_weight(layer.weight) is None
    x = torch.randn(3, 48)
    torch.testing.assert_close(pl.linear(x, layer.weight, layer.bias), F.linear(x, layer.weight, layer.bias))
    layer.load_state_dict({"weight": torch.zeros(80, 48), "bias": torch.ones(80)})
    assert torch.equal(pl.linear(x, layer.weight, layer.bias), torch.ones(3, 80))


@pytest.mark.filterwarnings("ignore:`torch.jit.trace` is deprecated")
def test_autograd_and_tracing_take_the_plain_path() -> None:
    layer = _layer()
    pl.pack_weights([layer.weight])
    x = torch.randn(2, 48, requires_grad=True)
    pl.linear(x, layer.weight, layer.bias).sum().backward()
    assert x.grad is not None and torch.allclose(x.grad, layer.weight.sum(0).expand(2, -1))

    traced = torch.jit.trace(lambda t: pl.linear(t, layer.weight, layer.bias), torch.randn(2, 48))
    assert "mkldnn" not in str(traced.graph)
    probe = torch.randn(4, 48)
    torch.testing.assert_close(traced(probe), F.linear(probe, layer.weight, layer.bias))


def test_backend_packs_only_when_tuned_to(gpt_path) -> None:
    from renderer.backends.torch_backend import TorchBackend
    from renderer.tuning import EngineTuning

    plain = TorchBackend(BatchedGPT.from_checkpoint(gpt_path), tuning=EngineTuning(packed_linear=False))
    assert all(pl.packed_weight(w) is None for w in plain.gpt.linear_weights())
    packed = TorchBackend(BatchedGPT.from_checkpoint(gpt_path))
    assert all(pl.packed_weight(w) is not None for w in packed.gpt.linear_weights()) == pl.packing_available()


def test_gpt_step_logits_packed_vs_plain(gpt_path) -> None:
    gpt = BatchedGPT.from_checkpoint(gpt_path)
    d = gpt.config
    b, cap, n = 3, 16, 11
    g = torch.Generator().manual_seed(0)
    keys = [torch.randn(b, d.n_head, d.head_dim, cap, generator=g) for _ in range(d.n_layer)]
    values = [torch.randn(b, d.n_head, cap, d.head_dim, generator=g) for _ in range(d.n_layer)]
    args = (torch.tensor([5, 9, 700]), torch.tensor([3, 4, 5]), torch.tensor([n, n - 2, n - 5]),
            torch.zeros(b, d.vocab_size), torch.full((b,), 1.35), torch.zeros(b), keys, values, True)
    with torch.inference_mode():
        plain = gpt.step(*args)[-1]
        assert gpt.pack_linears() == 2 + 4 * d.n_layer
        packed = gpt.step(*args)[-1]
        gpt.cast_linears(torch.float32)  # casting drops the packed copies
        assert all(pl.packed_weight(w) is None for w in gpt.linear_weights())
    assert plain is not None and packed is not None
    torch.testing.assert_close(packed, plain, atol=1e-4, rtol=1e-4)


def test_weights_made_in_inference_mode_can_be_packed() -> None:
    with torch.inference_mode():
        layer = _layer()
        layer.weight.data = layer.weight.data.to(torch.bfloat16)  # as a cast inside inference mode makes them
        assert pl.pack_weights([layer.weight]) == 1
        x = torch.randn(2, 48)
        out = pl.linear(x, layer.weight, None)
        expected = F.linear(x.bfloat16(), layer.weight).float()
    torch.testing.assert_close(out, expected, atol=1e-2, rtol=1e-2)
