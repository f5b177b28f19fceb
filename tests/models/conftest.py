"""Shared fixtures for the model tests: the public conformance vectors (loaded once per session)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

#: The public conformance set; RENDER_CONFORMANCE_DIR points the tests at a copy (e.g. an odd path).
PUBLIC = Path(os.environ.get("RENDER_CONFORMANCE_DIR", "/work/shared/conformance/public"))


def public_dir() -> Path:
    if not (PUBLIC / "vectors.npz").is_file():
        pytest.skip(f"conformance vectors not found in {PUBLIC}")
    return PUBLIC


@pytest.fixture(scope="session")
def public() -> Path:
    return public_dir()


@pytest.fixture(scope="session")
def manifest(public: Path) -> dict:
    return json.loads((public / "manifest.json").read_text())


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
def gpt(public: Path):
    from renderer.models.gpt import load_gpt

    return load_gpt(public / "gpt_v2.ckpt")


@pytest.fixture(scope="session")
def sovits_v2(public: Path):
    from renderer.models.sovits import load_sovits

    return load_sovits(public / "sovits_v2.pth")


@pytest.fixture(scope="session")
def sovits_v2pp(public: Path):
    from renderer.models.sovits import load_sovits

    return load_sovits(public / "sovits_v2pp.pth")


@pytest.fixture(scope="session")
def random_files(tmp_path_factory) -> dict[str, Path]:
    """Tiny random GPT + SoVITS (v2, v2Pro, v2ProPlus) files written once per session."""
    from renderer.models.random_weights import write_random_gpt, write_random_sovits

    root = tmp_path_factory.mktemp("random weights")
    files = {"gpt": write_random_gpt(root / "gpt.ckpt", "tiny", seed=7)}
    for version in ("v2", "v2Pro", "v2ProPlus"):
        files[version] = write_random_sovits(root / f"sovits_{version}.pth", version, "tiny", seed=7)
    return files
