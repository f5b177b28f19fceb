"""Random tiny voice assets, written once per test session (offline, upstream file formats)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def assets(tmp_path_factory) -> dict[str, Path]:
    from renderer.voice_random import write_random_assets

    return write_random_assets(tmp_path_factory.mktemp("random assets"), "tiny", "v2", seed=11)


@pytest.fixture(scope="session")
def pro_assets(tmp_path_factory) -> dict[str, Path]:
    from renderer.voice_random import write_random_assets

    return write_random_assets(tmp_path_factory.mktemp("random pro assets"), "tiny", "v2ProPlus", seed=12)


@pytest.fixture()
def store(tmp_path):
    from renderer.voice import VoiceStore

    return VoiceStore(tmp_path / "voices dir ü")
