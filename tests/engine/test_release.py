"""The engine always gives its backend's cache back: after a full run, when the consumer stops early (a
worker asked to stop) and when a step raises (out of memory, which the worker recovers from)."""

from __future__ import annotations

import numpy as np
import pytest

from renderer.engine.api import Engine, SynthesisRequest, VoiceParts
from renderer.engine.backend import Candidates, PrefillBatch, StepInputs, VocodeItem
from renderer.engine.options import SamplingOptions
from renderer.tuning import EngineTuning

TOP_K = 16


class StubBackend:
    """A backend without a model: every row gets the same 16 candidates (never EOS); counts cache calls."""

    name = "stub"
    device = "cpu"
    top_k_out = TOP_K
    vocab_size = 1025
    eos = 1024

    def __init__(self, fail_at_step: int | None = None) -> None:
        self.fail_at_step = fail_at_step
        self.steps = 0
        self.starts = 0
        self.releases = 0
        self.slots = 0

    @property
    def holding_cache(self) -> bool:
        return self.starts > self.releases

    def start(self, slots: int, capacity: int) -> None:
        self.starts += 1
        self.slots = slots

    def ensure_capacity(self, needed: int, allow_shrink: bool = False) -> None:
        pass

    def compact(self, keep: np.ndarray) -> None:
        self.slots = len(keep)

    def release(self) -> None:
        self.releases += 1

    def _candidates(self, rows: int) -> Candidates:
        values = np.tile(-np.arange(TOP_K, dtype=np.float32), (rows, 1))
        indices = np.tile(np.arange(TOP_K, dtype=np.int64), (rows, 1))
        lse = np.log(np.exp(values[0]).sum(dtype=np.float32)) * np.ones(rows, np.float32)
        return Candidates(values=values, indices=indices, lse=lse)

    def prefill(self, slots: np.ndarray, batch: PrefillBatch, return_logits: bool = False) -> Candidates:
        return self._candidates(len(slots))

    def step(self, inputs: StepInputs, return_logits: bool = False) -> Candidates:
        self.steps += 1
        if self.fail_at_step is not None and self.steps >= self.fail_at_step:
            raise MemoryError("stub: out of memory in a decode step")
        return self._candidates(self.slots)

    def vocode(self, items: list[VocodeItem], speed: float, noise_scale: float,
               seeds: list[int]) -> list[np.ndarray]:
        return [np.zeros(1280 * len(item.tokens), np.float32) for item in items]


def _engine(backend: StubBackend) -> Engine:
    voice = VoiceParts.from_arrays("unused.ckpt", None, np.arange(5), np.arange(1, 4), None, None)
    return Engine(voice, backend, EngineTuning(batch_size=2))  # type: ignore[arg-type]


def _requests(n: int) -> list[SynthesisRequest]:
    return [SynthesisRequest(key=f"c{i}", phone_ids=np.arange(1, 4 + i)) for i in range(n)]


OPTIONS = SamplingOptions(max_tokens=6)


def test_a_full_run_releases_the_cache() -> None:
    backend = StubBackend()
    results = list(_engine(backend).synthesize(_requests(5), OPTIONS))
    assert sorted(r.key for r in results) == [f"c{i}" for i in range(5)]
    assert all(len(r.tokens) == 6 for r in results)
    assert backend.starts == 1 and not backend.holding_cache


@pytest.mark.parametrize("overlap", [False, True])
def test_a_consumer_that_stops_early_releases_the_cache(overlap: bool) -> None:
    backend = StubBackend()
    engine = _engine(backend)
    engine.overlap = overlap
    engine.backend.vocoder = object()  # type: ignore[attr-defined]  (overlap needs a vocoder to exist)
    results = engine.synthesize(_requests(5), OPTIONS)
    first = next(results)
    assert first.key.startswith("c")
    if not overlap:
        assert backend.holding_cache  # mid-run: the cache is in use
    results.close()  # type: ignore[attr-defined]  (the worker's SIGINT path)
    assert not backend.holding_cache


def test_a_step_that_raises_releases_the_cache() -> None:
    backend = StubBackend(fail_at_step=3)
    with pytest.raises(MemoryError, match="out of memory"):
        list(_engine(backend).synthesize(_requests(4), OPTIONS))
    assert backend.steps == 3 and backend.starts == 1 and not backend.holding_cache


def test_tokens_only_releases_the_cache_when_abandoned() -> None:
    backend = StubBackend()
    tokens = _engine(backend).generate_tokens(_requests(4), OPTIONS)
    next(tokens)
    tokens.close()  # type: ignore[attr-defined]
    assert backend.starts == 1 and not backend.holding_cache
