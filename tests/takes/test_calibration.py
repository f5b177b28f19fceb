"""The token thresholds' claims (see ``TakeOptions``), re-checked: upstream's sampler on the conformance
GPT never trips them, synthetic loops do. ``tests/takes/measure_thresholds.py`` prints the full figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from renderer.takes import TakeOptions, judge
from renderer.takes.measure import TakeMeasures, repeated_ngram_fraction, stuck_run, token_loop
from tests.takes.measure_thresholds import synthetic_loop

CONFORMANCE = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "public"
if not CONFORMANCE.is_dir():
    CONFORMANCE = Path("/work/shared/conformance/public")
TOKEN_REASONS = {"loop", "stuck", "repetition"}


@pytest.fixture(scope="module")
def vectors() -> dict[str, np.ndarray]:
    path = CONFORMANCE / "vectors.npz"
    if not path.is_file():
        pytest.skip(f"conformance vectors not found at {path}")
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def _token_reasons(tokens: np.ndarray, options: TakeOptions = TakeOptions()) -> set[str]:
    """The token-only reasons a sequence earns (audio and rate figures set to a clean take's)."""
    loop = token_loop(tokens, options.loop_min_period, options.loop_max_period, options.loop_match_rate,
                      options.loop_min_tokens)
    seconds = len(tokens) * 0.04
    measures = TakeMeasures(stopped_by="eos", n_tokens=len(tokens), n_phones=1, audio_s=seconds, speech_s=seconds,
                            loop_period=loop.period, loop_span=loop.span, stuck_tokens=stuck_run(tokens),
                            repeated_ngrams=repeated_ngram_fraction(tokens, options.ngram),
                            leading_silence_s=0.0, trailing_silence_s=0.0, longest_pause_s=0.0, pause_limit_s=1.0,
                            active_dbfs=-20.0, clipped=0.0)
    return set(judge(measures, None, options).codes) & TOKEN_REASONS


def test_upstreams_stored_sequences_trip_no_token_check(vectors: dict[str, np.ndarray]) -> None:
    prompt = vectors["gpt_prompt_semantic"]
    sequences = [v for k, v in vectors.items() if k.startswith("gpt_") and k.endswith("_generated")]
    sequences += [v[len(prompt):] for k, v in vectors.items()
                  if k.startswith("gpt_") and "_y" in k and v.ndim == 1 and len(v) > len(prompt)
                  and np.array_equal(v[:len(prompt)], prompt)]
    assert len(sequences) >= 3  # the walker found the stored outputs
    for tokens in sequences:
        assert _token_reasons(np.asarray(tokens, dtype=np.int64)) == set()


def test_default_sampling_on_the_conformance_gpt_trips_no_token_check(vectors: dict[str, np.ndarray]) -> None:
    from renderer.backends import open_engine
    from renderer.engine.api import SynthesisRequest, VoiceParts
    from renderer.engine.options import SamplingOptions
    from renderer.tuning import EngineTuning

    voice = VoiceParts.from_arrays(CONFORMANCE / "gpt_v2.ckpt", None, vectors["gpt_prompt_semantic"],
                                   vectors["gpt_prompt_phones"], vectors["gpt_prompt_bert"], None)
    engine = open_engine(voice, backend="torch", precision="fp32", tuning=EngineTuning(batch_size=12, measure=False))
    rng = np.random.default_rng(11)
    requests = [SynthesisRequest(key=f"c{i}", phone_ids=rng.integers(1, 732, size=int(rng.integers(8, 60))))
                for i in range(12)]
    results = list(engine.generate_tokens(requests, SamplingOptions(max_tokens=200)))
    assert len(results) == 12
    flagged = {r.key: _token_reasons(r.tokens) for r in results if _token_reasons(r.tokens)}
    assert flagged == {}


@pytest.mark.parametrize("period", [4, 8, 16, 32, 60])
def test_loops_of_a_second_or_more_with_a_tenth_of_tokens_mutated_are_caught(period: int) -> None:
    rng = np.random.default_rng(period)
    repeats = max(5, -(-25 // period))  # at least 5 repeats and 25 tokens (1 s)
    caught = [bool(_token_reasons(synthetic_loop(rng, period, repeats, 0.1))) for _ in range(20)]
    assert all(caught)
