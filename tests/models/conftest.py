"""Shared fixtures for the model tests: the conformance set's files and vectors (loaded once per session)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conformance import ConformanceSet


@pytest.fixture(scope="session")
def public(conformance: ConformanceSet) -> Path:
    """The conformance set's folder (found by the ``conformance`` fixture of tests/conftest.py)."""
    return conformance.path


@pytest.fixture(scope="session")
def manifest(conformance: ConformanceSet) -> dict:
    return conformance.manifest


class Vectors:
    def __init__(self, path: Path) -> None:
        self._npz = np.load(path)

    def __contains__(self, key: str) -> bool:
        return key in self._npz.files

    def __call__(self, key: str) -> torch.Tensor:
        return torch.from_numpy(np.array(self._npz[key]))


@pytest.fixture(scope="session")
def vec(public: Path) -> Vectors:
    return Vectors(public / "vectors.npz")


@pytest.fixture(scope="session")
def gpt(conformance: ConformanceSet):
    from renderer.models.gpt import load_gpt

    return load_gpt(conformance.file("gpt"))


@pytest.fixture(scope="session")
def sovits_v2(conformance: ConformanceSet):
    from renderer.models.sovits import load_sovits

    return load_sovits(conformance.file("sovits_v2"))


@pytest.fixture(scope="session")
def sovits_v2pp(conformance: ConformanceSet):
    from renderer.models.sovits import load_sovits

    return load_sovits(conformance.file("sovits_v2pp"))


@pytest.fixture(scope="session")
def random_files(tmp_path_factory) -> dict[str, Path]:
    """Tiny random GPT + SoVITS (v2, v2Pro, v2ProPlus) files written once per session."""
    from renderer.models.random_weights import write_random_gpt, write_random_sovits

    root = tmp_path_factory.mktemp("random weights")
    files = {"gpt": write_random_gpt(root / "gpt.ckpt", "tiny", seed=7)}
    for version in ("v2", "v2Pro", "v2ProPlus"):
        files[version] = write_random_sovits(root / f"sovits_{version}.pth", version, "tiny", seed=7)
    return files
