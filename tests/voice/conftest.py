"""Random tiny voice assets, written once per test session (offline, upstream file formats)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SHARED_ASSET_SEED as ASSET_SEED


@pytest.fixture(scope="session")
def asset_cache(random_asset_cache) -> Path:
    """The session's shared cache, laid out like ``make_random_voice``'s, so the CLI test reuses the files."""
    return random_asset_cache


@pytest.fixture(scope="session")
def assets(asset_cache) -> dict[str, Path]:
    from renderer.voice_random import write_random_assets

    return write_random_assets(asset_cache / f"tiny-v2-seed{ASSET_SEED}", "tiny", "v2", seed=ASSET_SEED)


@pytest.fixture(scope="session")
def imported(assets, tmp_path_factory):
    """One imported voice (read-only for tests; copy it before changing anything)."""
    from renderer.voice import VoiceStore, import_voice
    from renderer.voice_random import RANDOM_REF_TEXT

    store = VoiceStore(tmp_path_factory.mktemp("session voices"))
    return import_voice("narrator", assets["gpt"], assets["sovits"], assets["ref"], RANDOM_REF_TEXT, "en",
                        bert_dir=assets["bert"], hubert_dir=assets["hubert"], store=store)


@pytest.fixture(scope="session")
def pro_assets(tmp_path_factory) -> dict[str, Path]:
    from renderer.voice_random import write_random_assets

    return write_random_assets(tmp_path_factory.mktemp("random pro assets"), "tiny", "v2ProPlus", seed=12)


@pytest.fixture()
def store(tmp_path):
    from renderer.voice import VoiceStore

    return VoiceStore(tmp_path / "voices dir ü")


@pytest.fixture()
def seeded_store(imported, store):
    """A fresh store already holding a copy of the session's 'narrator' voice."""
    import shutil

    shutil.copytree(imported.voice.folder, store.path("narrator"))
    return store
