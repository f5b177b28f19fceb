"""Batched torch engine vs the conformance vectors and the single-sequence reference path.

The ``check_*`` functions are backend-generic; the ONNX Runtime tests reuse them.
"""

from __future__ import annotations

import numpy as np
import pytest

from renderer.backends.torch_backend import TorchBackend
from renderer.engine.decode import BatchDecoder, PreparedRow
from renderer.engine.options import SamplingOptions
from tests.engine.conftest import random_chunk
from tests.engine.helpers import check_logits, check_step_writes_one_position, make_rows, run_backend, run_reference


@pytest.fixture(scope="module")
def backend(batched_gpt):
    return TorchBackend(batched_gpt)


def _conformance_cases(conformance):
    """(call, chunks, options, expected tokens, expected raw logits) of every single-row GPT call the set
    records; options, stop limits and the prompt length come from its manifest."""
    v = conformance.arrays
    single = {"a": (v["gpt_target_phones"], v["gpt_target_bert"])}
    return [
        ("gpt_single_rp135", single, v["gpt_single_rp135_generated"], v["gpt_single_rp135_logits"]),
        ("gpt_single_rp100", single, v["gpt_single_rp100_generated"], v["gpt_single_rp100_logits"]),
        ("gpt_single_eos", {"a": conformance.target("gpt_eos_target_phones")}, v["gpt_eos_y"][conformance.prompt_len:],
         v["gpt_eos_logits"]),
    ]


def check_conformance(backend, conformance) -> None:
    """Every conformance GPT run: tokens identical, stop reasons as recorded, every step's logits within 1e-4."""
    vectors = conformance.arrays
    prompt = vectors["gpt_prompt_semantic"]
    for call, chunks, tokens, logits in _conformance_cases(conformance):
        options = conformance.options(call)
        results, _ = run_backend(backend, vectors, make_rows(vectors, chunks), options, slots=3, record=True)
        res = results["a"]
        np.testing.assert_array_equal(res.tokens, tokens, err_msg=call)
        assert res.stopped_by == ("eos" if conformance.stopped_by_eos(call) else "max_tokens"), call
        check_logits(res, logits, prompt, options.repetition_penalty)
    # upstream's batch_infer EOS batch: each row equals its single decode
    targets = conformance.eos_batch_targets()
    chunks = {f"r{i}": conformance.target(name) for i, name in enumerate(targets)}
    results, _ = run_backend(backend, vectors, make_rows(vectors, chunks), conformance.options("gpt_batch_eos"),
                             slots=2)
    for i in range(len(targets)):
        np.testing.assert_array_equal(np.concatenate([prompt, results[f"r{i}"].tokens]),
                                      vectors[f"gpt_batch_eos_single_ref_y_{i}"])
    # reference-free mode (no prompt semantic tokens)
    options = conformance.options("gpt_reffree")
    decoder = BatchDecoder(backend, np.zeros(0, np.int64), options, slots=2, record=True)
    res = list(decoder.run([PreparedRow("rf", vectors["gpt_target_phones"], vectors["gpt_target_bert"], 0)]))[0]
    np.testing.assert_array_equal(res.tokens, vectors["gpt_reffree_y"])
    check_logits(res, vectors["gpt_reffree_logits"], np.zeros(0, np.int64), options.repetition_penalty)


def test_conformance_vectors(backend, conformance, vectors) -> None:
    check_conformance(backend, conformance)
    rows = make_rows(vectors, {"a": (vectors["gpt_target_phones"], vectors["gpt_target_bert"])})
    first = run_backend(backend, vectors, rows, SamplingOptions(top_k=1, max_tokens=1), slots=1, record=True)[0]
    assert np.abs(first["a"].logits[0] - vectors["gpt_first_step_logits"]).max() <= 1e-4


def mixed_chunks(seed: int, n: int, low: int = 3, high: int = 40):
    rng = np.random.default_rng(seed)
    return {f"c{seed}_{i}": random_chunk(rng, int(rng.integers(low, high))) for i in range(n)}


def check_teacher_forced(backend, reference_gpt, vectors) -> None:
    """Mixed-length batch of 10 rows in 8 slots: every step's logits of every row vs the reference."""
    options = SamplingOptions(top_k=1, early_stop_tokens=24)
    rows = make_rows(vectors, mixed_chunks(1, 10))
    refs = {r.key: run_reference(reference_gpt, vectors, r, options) for r in rows}
    for r in rows:
        toks = refs[r.key].tokens.numpy()
        r.forced = toks if len(toks) == len(refs[r.key].logits) else np.concatenate([toks, [0]])
    results, _ = run_backend(backend, vectors, rows, options, slots=8, record=True)
    for key, ref in refs.items():
        check_logits(results[key], ref.logits.numpy(), vectors["gpt_prompt_semantic"], options.repetition_penalty)


def test_teacher_forced_logits_mixed_batch(backend, reference_gpt, vectors) -> None:
    check_teacher_forced(backend, reference_gpt, vectors)


def check_independence(backend, reference_gpt, vectors) -> None:
    """Greedy tokens equal the reference; a sampled chunk's tokens are identical alone, in 8, in 32."""
    greedy = SamplingOptions(top_k=1, early_stop_tokens=30)
    rows = make_rows(vectors, mixed_chunks(2, 8))
    results, _ = run_backend(backend, vectors, rows, greedy, slots=8)
    for r in rows:
        np.testing.assert_array_equal(results[r.key].tokens, run_reference(reference_gpt, vectors, r, greedy).tokens)
    sampled = SamplingOptions(top_k=15, temperature=1.0, early_stop_tokens=30, seed=5)
    target = make_rows(vectors, mixed_chunks(3, 1), seed=5)[0]
    alone, _ = run_backend(backend, vectors, [target], sampled, slots=1)
    batch8, _ = run_backend(backend, vectors, [target, *make_rows(vectors, mixed_chunks(4, 7), seed=5)], sampled,
                            slots=8)
    batch32, _ = run_backend(backend, vectors, [*make_rows(vectors, mixed_chunks(5, 31), seed=5), target], sampled,
                             slots=32)
    ref = run_reference(reference_gpt, vectors, target, sampled).tokens.numpy()
    np.testing.assert_array_equal(alone[target.key].tokens, ref)
    np.testing.assert_array_equal(batch8[target.key].tokens, ref)
    np.testing.assert_array_equal(batch32[target.key].tokens, ref)


def test_tokens_independent_of_batch(backend, reference_gpt, vectors) -> None:
    check_independence(backend, reference_gpt, vectors)


def check_continuous_batching(backend, vectors) -> None:
    options = SamplingOptions(top_k=15, max_tokens=40, seed=3)
    results, decoder = run_backend(backend, vectors, make_rows(vectors, mixed_chunks(6, 12), seed=3), options,
                                   slots=4)
    assert len(results) == 12
    stats = decoder.stats
    assert stats.max_live == 4
    assert stats.prefills > 1  # slots were refilled while others were still decoding
    assert stats.steps < sum(r.steps for r in results.values())
    assert stats.row_steps + len(results) == sum(r.steps for r in results.values())  # step 0 comes from prefill


def test_continuous_batching_refills_slots(backend, vectors) -> None:
    check_continuous_batching(backend, vectors)


def check_drain_compaction(backend, vectors) -> None:
    """Rows of different lengths in one batch: as the batch drains the cache is compacted to the live
    rows, and every row's logits still equal the row decoded alone."""
    rng = np.random.default_rng(9)
    rows = make_rows(vectors, mixed_chunks(8, 6), seed=9)
    for i, row in enumerate(rows):
        row.forced = rng.integers(0, 1024, 3 + 6 * i)
    options = SamplingOptions(top_k=15, max_tokens=100, seed=9)
    batched, decoder = run_backend(backend, vectors, rows, options, slots=8, record=True)
    assert decoder.stats.max_live == 6  # never more slots than rows
    assert decoder.stats.compactions >= 2
    for row in rows:
        alone, _ = run_backend(backend, vectors, [row], options, slots=1, record=True)
        got, want = batched[row.key], alone[row.key]
        assert got.steps == want.steps == len(row.forced)
        assert got.candidates is not None and want.candidates is not None
        for (g_vals, _, g_lse), (w_vals, _, w_lse) in zip(got.candidates, want.candidates, strict=True):
            np.testing.assert_allclose(g_vals, w_vals, atol=2e-4, rtol=1e-4)
            assert abs(g_lse - w_lse) < 2e-4


def test_drained_batch_is_compacted(backend, vectors) -> None:
    check_drain_compaction(backend, vectors)


def test_cache_growth_keeps_results(batched_gpt, reference_gpt, vectors) -> None:
    """A row longer than the initial cache capacity: the cache doubles and tokens stay exact."""
    options = SamplingOptions(top_k=1, repetition_penalty=1.0, max_tokens=200)
    row = make_rows(vectors, mixed_chunks(7, 1))[0]
    results, _ = run_backend(TorchBackend(batched_gpt), vectors, [row], options, slots=2)
    ref = run_reference(reference_gpt, vectors, row, SamplingOptions(top_k=1, repetition_penalty=1.0,
                                                                     early_stop_tokens=199))
    np.testing.assert_array_equal(results[row.key].tokens, ref.tokens.numpy()[:200])
    assert results[row.key].stopped_by == ("eos" if ref.stopped_by_eos else "max_tokens")


def test_step_writes_only_new_positions(backend, vectors) -> None:
    check_step_writes_one_position(backend, vectors)


def test_cache_resize_keeps_contents() -> None:
    import torch

    from renderer.backends.torch_backend import CAPACITY_STEP, TorchKVCache

    cache = TorchKVCache(2, 2, 4, torch.device("cpu"))
    cache.allocate(3, CAPACITY_STEP)
    cache.keys[1][..., :10] = 1.5
    cache.values[0][:, :, :10] = 2.5
    assert cache.grow(CAPACITY_STEP + 1) and cache.capacity == 2 * CAPACITY_STEP
    assert not cache.grow(5)  # never shrinks unless the caller allows it
    assert cache.grow(5, allow_shrink=False) is False
    cache.allocate(3, 8 * CAPACITY_STEP)
    cache.keys[1][..., :10] = 1.5
    assert cache.grow(20, allow_shrink=True) and cache.capacity == CAPACITY_STEP
    assert bool((cache.keys[1][..., :10] == 1.5).all()) and bool((cache.keys[1][..., 10:] == 0).all())


def test_cache_grows_and_compacts_layer_by_layer_and_frees() -> None:
    import torch

    from renderer.backends.torch_backend import CAPACITY_STEP, TorchKVCache

    cache = TorchKVCache(3, 2, 4, torch.device("cpu"))
    cache.allocate(4, CAPACITY_STEP)
    for i in range(3):
        cache.keys[i][..., :5] = torch.arange(4.0).view(4, 1, 1, 1) + 10 * i
        cache.values[i][:, :, :5] = torch.arange(4.0).view(4, 1, 1, 1) - 10 * i
    assert cache.grow(CAPACITY_STEP + 3)
    assert all(k.shape[3] == 2 * CAPACITY_STEP for k in cache.keys) and cache.capacity == 2 * CAPACITY_STEP
    cache.compact(torch.tensor([3, 1]))
    assert cache.slots == 2 and all(k.shape[0] == 2 for k in cache.keys + cache.values)
    for i in range(3):
        assert cache.keys[i][:, 0, 0, 0].tolist() == [3 + 10 * i, 1 + 10 * i]
        assert cache.values[i][:, 0, 0, 0].tolist() == [3 - 10 * i, 1 - 10 * i]
        assert bool((cache.keys[i][..., 5:] == 0).all())
    cache.free()
    assert cache.keys == [] and cache.slots == 0 and cache.capacity == 0


def test_prefill_store_fills_the_cache_like_the_returned_lists(batched_gpt) -> None:
    """The backend's prefill hands K/V to the cache layer by layer (``store``); the cache must hold exactly
    what the returned lists (the exported graphs' outputs) hold, in the given rows only."""
    import torch

    from renderer.backends.torch_backend import TorchKVCache

    d = batched_gpt.config
    g = torch.Generator().manual_seed(3)
    b, x, y = 3, 7, 5
    args = (torch.randint(1, 300, (b, x), generator=g), torch.randn(b, 1024, x, generator=g),
            torch.tensor([7, 4, 6]), torch.randint(0, 1024, (b, y), generator=g), torch.zeros(b, d.vocab_size),
            torch.full((b,), 1.35), torch.ones(b))
    rows = torch.tensor([4, 0, 2])
    stored = TorchKVCache(d.n_layer, d.n_head, d.head_dim, torch.device("cpu"))
    listed = TorchKVCache(d.n_layer, d.n_head, d.head_dim, torch.device("cpu"))
    for cache in (stored, listed):
        cache.allocate(5, 64)
    with torch.inference_mode():
        out_s = batched_gpt.prefill(*args, store=lambda i, k, v: stored.write_layer_rows(i, rows, k, v))
        out_l = batched_gpt.prefill(*args)
    listed.write_rows(rows, out_l[3], out_l[4])
    assert out_s[3] == [] and out_s[4] == [] and len(out_l[3]) == d.n_layer
    torch.testing.assert_close(out_s[0], out_l[0], rtol=0, atol=0)
    for a, c in zip(stored.keys + stored.values, listed.keys + listed.values, strict=True):
        assert torch.equal(a, c)
    assert float(stored.keys[0][[1, 3]].abs().sum()) == 0.0  # rows not prefilled stay empty
    assert float(stored.keys[-1][4, :, :, : x + y].abs().sum()) > 0.0
