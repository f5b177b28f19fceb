"""Public Engine API: tokens + audio per chunk, independent of batching, exact output lengths."""

from __future__ import annotations

import numpy as np
import pytest

from renderer.backends import open_engine
from renderer.engine.api import SynthesisRequest, VoiceParts
from renderer.engine.options import SamplingOptions
from renderer.errors import OptionsError
from renderer.tuning import EngineTuning
from tests.engine.conftest import random_chunk


@pytest.fixture(scope="module")
def engine(vectors, gpt_path, sovits_path, voice_ge):
    voice = VoiceParts.from_arrays(gpt_path, sovits_path, vectors["gpt_prompt_semantic"],
                                   vectors["gpt_prompt_phones"], vectors["gpt_prompt_bert"], voice_ge)
    return open_engine(voice, backend="torch", precision="fp32", tuning=EngineTuning(batch_size=4, measure=False))


def _requests(seed: int, n: int) -> list[SynthesisRequest]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        phones, bert = random_chunk(rng, int(rng.integers(4, 20)))
        out.append(SynthesisRequest(key=f"r{seed}-{i}", phone_ids=phones, bert=bert if i % 2 else None))
    return out


def test_synthesize_independent_of_batch(engine) -> None:
    options = SamplingOptions(max_tokens=20, seed=11)
    reqs = _requests(1, 6)
    together = {r.key: r for r in engine.synthesize(reqs, options)}
    assert set(together) == {r.key for r in reqs}
    alone = list(engine.synthesize([reqs[3]], options))[0]
    res = together[reqs[3].key]
    np.testing.assert_array_equal(alone.tokens, res.tokens)
    assert alone.audio.shape == res.audio.shape == (len(res.tokens) * 1280,)
    assert np.abs(alone.audio - res.audio).max() <= 1e-4
    assert res.sample_rate == 32000 and res.stopped_by in ("eos", "max_tokens")
    assert set(res.timings) == {"prefill", "decode", "vocode"} and all(t >= 0 for t in res.timings.values())
    assert np.isfinite(res.audio).all() and np.abs(res.audio).max() > 0


def test_speed_changes_length(engine) -> None:
    req = _requests(2, 1)
    slow = list(engine.synthesize(req, SamplingOptions(max_tokens=15)))[0]
    fast = list(engine.synthesize(req, SamplingOptions(max_tokens=15, speed=1.25)))[0]
    np.testing.assert_array_equal(slow.tokens, fast.tokens)
    assert len(fast.audio) == (int(2 * len(fast.tokens) / 1.25) + 1) * 640


def test_bad_requests_are_typed_errors(engine) -> None:
    with pytest.raises(OptionsError):
        list(engine.synthesize([SynthesisRequest("x", np.ones(3, np.int64))] * 2, SamplingOptions()))
    with pytest.raises(OptionsError):
        list(engine.synthesize([SynthesisRequest("x", np.zeros(0, np.int64))], SamplingOptions()))
    with pytest.raises(OptionsError):
        list(engine.synthesize([SynthesisRequest("x", np.ones(3, np.int64), np.zeros((1024, 2), np.float32))],
                               SamplingOptions()))


def test_overlapped_pipeline_gives_the_same_chunks(engine) -> None:
    """Vocoding on a background thread while the GPT decodes changes when chunks finish, not what they are."""
    options = SamplingOptions(max_tokens=16, seed=4)
    reqs = _requests(3, 7)
    engine.overlap = False
    sequential = {r.key: r for r in engine.synthesize(reqs, options)}
    engine.overlap = True
    try:
        overlapped = {r.key: r for r in engine.synthesize(reqs, options)}
    finally:
        engine.overlap = False
    assert set(overlapped) == set(sequential) == {r.key for r in reqs}
    for key, want in sequential.items():
        got = overlapped[key]
        np.testing.assert_array_equal(got.tokens, want.tokens)
        # same arithmetic on another thread: oneDNN may pick another kernel there (last-bit differences)
        assert got.audio.shape == want.audio.shape
        assert np.abs(got.audio - want.audio).max() <= 1e-5
        assert got.stopped_by == want.stopped_by


def test_overlapped_pipeline_stops_cleanly_when_abandoned(engine) -> None:
    """A consumer that stops early (a worker asked to stop) must not leave the vocoder thread running."""
    import threading

    options = SamplingOptions(max_tokens=12, seed=2)
    engine.overlap = True
    try:
        results = engine.synthesize(_requests(5, 6), options)
        first = next(iter(results))
        results.close()  # type: ignore[attr-defined]
    finally:
        engine.overlap = False
    assert first.audio.size > 0
    assert not [t for t in threading.enumerate() if t.name == "vocoder"]


def test_automatic_batch_size_comes_from_the_cache(vectors, gpt_path, sovits_path, voice_ge) -> None:
    from renderer.engine.batching import auto_batch_size

    voice = VoiceParts.from_arrays(gpt_path, None, vectors["gpt_prompt_semantic"], vectors["gpt_prompt_phones"],
                                   vectors["gpt_prompt_bert"], None)
    engine = open_engine(voice, backend="torch", precision="fp32", tuning=EngineTuning(measure=False))
    cache = engine.backend.cache  # type: ignore[attr-defined]
    assert engine.batch_size == auto_batch_size(cache.n_layer, cache.n_head * cache.head_dim, cache.dtype, "cpu")
    assert engine.batch_size >= 8
