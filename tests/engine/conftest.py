"""Shared fixtures for engine tests: the conformance set's arrays and tiny models built from it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conformance import ConformanceSet


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """Tiny models run faster single-threaded on a shared 2-core machine (and results do not change)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def vectors(conformance: ConformanceSet) -> dict[str, np.ndarray]:
    return conformance.arrays


@pytest.fixture(scope="session")
def gpt_path(conformance: ConformanceSet) -> Path:
    return conformance.file("gpt")


@pytest.fixture(scope="session")
def sovits_path(conformance: ConformanceSet) -> Path:
    return conformance.file("sovits_v2")


@pytest.fixture(scope="session")
def batched_gpt(gpt_path):
    from renderer.engine.batched_gpt import BatchedGPT

    return BatchedGPT.from_checkpoint(gpt_path)


@pytest.fixture(scope="session")
def reference_gpt(gpt_path):
    from renderer.models.gpt import load_gpt

    return load_gpt(gpt_path)[0]


@pytest.fixture(scope="session")
def voice_ge(vectors, sovits_path) -> np.ndarray:
    from renderer.models.sovits import load_sovits

    model, _cfg, _ckpt = load_sovits(sovits_path)
    return model.reference_ge([torch.from_numpy(vectors["sovits_ref_spec"])]).numpy()


def random_chunk(rng: np.random.Generator, n_phones: int) -> tuple[np.ndarray, np.ndarray]:
    """Random target phones [n] and BERT features [1024, n] (small values, like real features)."""
    phones = rng.integers(1, 732, size=n_phones).astype(np.int64)
    bert = (rng.standard_normal((1024, n_phones)) * 0.1).astype(np.float32)
    return phones, bert
