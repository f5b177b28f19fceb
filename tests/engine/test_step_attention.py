"""The fused decode-step attention kernel against the torch formulation it replaces."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from renderer.engine import step_attention as sa
from renderer.errors import BackendUnavailableError

H, HD = 4, 32
SCALE = 1.0 / math.sqrt(HD)


def _inputs(lens: list[int], cap: int, dtype: torch.dtype, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random step inputs; cache slots past each row's length hold garbage that must not be read."""
    g = torch.Generator().manual_seed(seed)
    b = len(lens)
    cache_lens = torch.tensor(lens, dtype=torch.int64)
    dead = torch.arange(cap).view(1, 1, 1, cap) >= cache_lens.view(-1, 1, 1, 1)
    return {
        "q": torch.randn(b, H, 1, HD, generator=g) * 2, "k_new": torch.randn(b, H, 1, HD, generator=g),
        "v_new": torch.randn(b, H, 1, HD, generator=g),
        "past_keys": (torch.randn(b, H, HD, cap, generator=g) * 2).to(dtype),
        "past_values": torch.randn(b, H, cap, HD, generator=g).to(dtype), "cache_lens": cache_lens,
        "mask": torch.zeros(b, 1, 1, cap).masked_fill(dead, float("-inf")),
    }


def _torch(x: dict[str, torch.Tensor], upcast: bool = False) -> torch.Tensor:
    keys, values = x["past_keys"], x["past_values"]
    if upcast:
        keys, values = keys.float(), values.float()
    return sa.torch_step_attention(x["q"], x["k_new"], x["v_new"], keys, values, x["mask"], SCALE)


def _kernel(x: dict[str, torch.Tensor]) -> torch.Tensor:
    return sa._kernel_attention(x["q"], x["k_new"], x["v_new"], x["past_keys"], x["past_values"],
                                x["cache_lens"], SCALE)


def _dispatch(x: dict[str, torch.Tensor], kernel: str = "auto") -> torch.Tensor:
    return sa.step_attention(x["q"], x["k_new"], x["v_new"], x["past_keys"], x["past_values"], x["cache_lens"],
                             x["mask"], SCALE, kernel=kernel)


@pytest.fixture(scope="module", params=["torch-pool", "numba-pool"])
def kernel(request: pytest.FixtureRequest) -> Iterator[str]:
    """The kernel on torch's OpenMP pool (where found) and on numba's own pool."""
    pytest.importorskip("numba", reason="the step-attention kernel needs numba")
    runner = sa._get_kernel()
    assert runner is not None, sa._kernel_error
    if request.param == "torch-pool" and runner.gomp_parallel is None:
        pytest.skip("torch's OpenMP runtime not found (not Linux/libgomp)")
    runner.use_torch_pool = request.param == "torch-pool"
    yield request.param
    runner.use_torch_pool = runner.gomp_parallel is not None


CASES = {"B=1": ([37], 64), "B=1 full": ([64], 64), "ragged": ([0, 1, 50, 64, 17], 64),
         "long": ([300, 129, 384], 384)}


@pytest.mark.parametrize("case", CASES)
def test_fp32_kernel_matches_torch(kernel: str, case: str) -> None:
    lens, cap = CASES[case]
    x = _inputs(lens, cap, torch.float32)
    got, want = _kernel(x), _torch(x)
    assert got.shape == want.shape == (len(lens), H, 1, HD) and got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * float(want.abs().max()))


@pytest.mark.parametrize("case", CASES)
def test_bf16_kernel_matches_fp32_math_on_the_same_bits(kernel: str, case: str) -> None:
    """The kernel widens bf16 exactly and accumulates in fp32: equal to fp32 math on the upcast cache,
    and within bf16 rounding of torch's bf16 matmuls."""
    lens, cap = CASES[case]
    x = _inputs(lens, cap, torch.bfloat16, seed=1)
    got = _kernel(x)
    torch.testing.assert_close(got, _torch(x, upcast=True), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got, _torch(x), rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_kernel_stores_the_new_token_like_the_torch_path(kernel: str, dtype: torch.dtype) -> None:
    """``store=True``: the kernel writes k_new / v_new at each row's position, rounded to the cache's dtype
    exactly as torch's cast does (bf16: nearest even), and touches nothing else."""
    lens, cap = [0, 1, 50, 63, 17], 64
    x = _inputs(lens, cap, dtype, seed=2)
    x["k_new"][1, 2, 0, :4] = torch.tensor([1.00390625, 1.01171875, 1.0 + 2.0**-8 + 2.0**-20, -3.0e38])  # ties, big
    by_kernel = {name: x[name].clone() for name in ("past_keys", "past_values")}
    out = sa._kernel_attention(x["q"], x["k_new"], x["v_new"], by_kernel["past_keys"], by_kernel["past_values"],
                               x["cache_lens"], SCALE, True)
    by_torch = {name: x[name].clone() for name in ("past_keys", "past_values")}
    sa.store_position(by_torch["past_keys"], by_torch["past_values"], x["cache_lens"], x["k_new"].squeeze(2),
                      x["v_new"].squeeze(2))
    for name in by_kernel:
        assert torch.equal(by_kernel[name].view(torch.int16 if dtype == torch.bfloat16 else torch.int32),
                           by_torch[name].view(torch.int16 if dtype == torch.bfloat16 else torch.int32))
        assert not torch.equal(by_kernel[name], x[name])  # it did write
    assert torch.equal(by_kernel["past_keys"][3, :, :, 63], x["k_new"][3, :, 0].to(dtype))
    assert torch.equal(out, _kernel(x))  # storing does not change the result


def test_garbage_past_the_length_is_never_read(kernel: str) -> None:
    x = _inputs([5, 20], 32, torch.float32)
    before = _kernel(x)
    x["past_keys"][0, :, :, 5:] = float("nan")  # [B, H, hd, cap]
    x["past_values"][0, :, 5:, :] = float("nan")  # [B, H, cap, hd]
    assert torch.equal(_kernel(x), before)


def test_kernel_argument_selects_the_path(kernel: str, monkeypatch: pytest.MonkeyPatch) -> None:
    x = _inputs([10, 3], 16, torch.float32)
    calls: list[int] = []
    real = sa._kernel_attention

    def counted(*a: Any) -> torch.Tensor:
        calls.append(1)
        return real(*a)
    monkeypatch.setattr(sa, "_kernel_attention", counted)
    assert torch.equal(_dispatch(x, "torch"), _torch(x)) and calls == []
    _dispatch(x, "auto")
    assert calls == [1]
    with pytest.raises(BackendUnavailableError):
        _dispatch(x, "fastest")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_fallback_when_unusable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Autograd, tracing and a kernel that cannot be built all take the torch path."""
    x = _inputs([6], 8, torch.float32)
    monkeypatch.setattr(sa, "_kernel_attention", lambda *a: pytest.fail("kernel used"))
    q = x["q"].clone().requires_grad_(True)
    out = sa.step_attention(q, x["k_new"], x["v_new"], x["past_keys"], x["past_values"], x["cache_lens"],
                            x["mask"], SCALE)
    out.sum().backward()
    assert q.grad is not None and q.grad.abs().sum() > 0

    def fn(q: torch.Tensor, kernel: str = "auto") -> torch.Tensor:
        return sa.step_attention(q, x["k_new"], x["v_new"], x["past_keys"], x["past_values"],
                                 x["cache_lens"], x["mask"], SCALE, kernel=kernel)
    traced = torch.jit.trace(fn, (x["q"],), check_trace=False)  # the check re-runs fn eagerly
    torch.testing.assert_close(traced(x["q"]), _torch(x))

    monkeypatch.setattr(sa, "_kernel", None)
    monkeypatch.setattr(sa, "_kernel_error", "ImportError: no numba")
    with torch.inference_mode():
        torch.testing.assert_close(fn(x["q"]), _torch(x))
    with pytest.raises(BackendUnavailableError, match="no numba"):
        fn(x["q"], "numba")


def test_threads_follow_torch(kernel: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each call runs on torch.get_num_threads() threads, whichever pool runs it."""
    import numba

    runner = sa._get_kernel()
    assert runner is not None
    seen: list[int] = []
    if kernel == "torch-pool":
        real = runner.gomp_parallel

        def recording(fn: Any, data: Any, threads: int, flags: int) -> None:
            seen.append(threads)
            real(fn, data, threads, flags)
        monkeypatch.setattr(runner, "gomp_parallel", recording)
    x = _inputs([9, 9], 16, torch.float32)
    before = torch.get_num_threads()
    config: Any = numba.config
    counts = sorted({1, min(2, config.NUMBA_NUM_THREADS)})
    try:
        for n in counts:
            torch.set_num_threads(n)
            torch.testing.assert_close(_kernel(x), _torch(x), rtol=1e-5, atol=1e-5)
            if kernel == "numba-pool":
                seen.append(numba.get_num_threads())
    finally:
        torch.set_num_threads(before)
    assert seen == counts


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gpt_step_same_with_kernel_and_torch(kernel: str, batched_gpt, dtype: torch.dtype,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A whole BatchedGPT.step gives the same logits through either attention path."""
    d = batched_gpt.config
    g = torch.Generator().manual_seed(3)
    b, cap = 3, 48
    keys = [torch.randn(b, d.n_head, d.head_dim, cap, generator=g).to(dtype) for _ in range(d.n_layer)]
    values = [torch.randn(b, d.n_head, cap, d.head_dim, generator=g).to(dtype) for _ in range(d.n_layer)]
    inputs = (torch.tensor([5, 17, 900]), torch.tensor([3, 9, 20]), torch.tensor([10, 48, 31]),
              torch.zeros(b, d.vocab_size), torch.full((b,), 1.35), torch.zeros(b))

    def logits(mode: str) -> torch.Tensor:
        monkeypatch.setattr(batched_gpt, "attention", mode)
        with torch.inference_mode():
            out = batched_gpt.step(*inputs, keys, values, return_logits=True)[5]
        assert out is not None
        return out

    want, got = logits("torch"), logits("numba")
    tol = 1e-4 if dtype == torch.float32 else 5e-2
    torch.testing.assert_close(got, want, rtol=tol, atol=tol * float(want.abs().max()))
