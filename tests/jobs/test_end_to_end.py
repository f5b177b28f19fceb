"""`render BOOK --voice NAME` with the real engine and a tiny random voice (slow; CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from jobs.cli import cli
from jobs.db import sqlite_url
from jobs.store import Store
from tests.conftest import SHARED_ASSET_SEED
from tests.jobs.conftest import write_book

pytestmark = pytest.mark.slow

TINY_BOOK = """# Tiny Book

## One

Hello there, this is a test. The second sentence is short.

## Two

Another chapter begins here. It ends quickly.
"""


@pytest.fixture(scope="session")
def tiny_voices_dir(tmp_path_factory: pytest.TempPathFactory, random_asset_cache: Path) -> Path:
    voice_random = pytest.importorskip("renderer.voice_random", reason="renderer.voice_random is not available")
    from renderer.voice import VoiceStore

    root = tmp_path_factory.mktemp("voices")
    voice_random.make_random_voice("tiny", size="tiny", seed=SHARED_ASSET_SEED, store=VoiceStore(root),
                                   cache_dir=random_asset_cache)
    return root


def test_real_engine_renders_resumes_and_exports(tiny_voices_dir: Path, tmp_path: Path) -> None:
    book = write_book(tmp_path / "src", TINY_BOOK)
    out = tmp_path / "out"
    args = [str(book), "--voice", "tiny", "--voices-dir", str(tiny_voices_dir), "--out", str(out),
            "--format", "wav", "--preset", "none", "--max-tokens", "40", "--batch-size", "4"]
    first = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert "4 chunks done, 0 failed" in first.output
    with Store(sqlite_url(out)) as store:
        rows = store.status.chunk_rows()
        speed = store.stats.throughput()
    assert len(rows) == 4
    for row in rows:
        audio, rate = sf.read(out / "chunks" / row["audio_path"], dtype="float32")
        assert rate == 32000 and 0 < row["n_tokens"] <= 40
        assert len(audio) == pytest.approx(row["n_tokens"] * 1280, rel=0.05)
        assert np.isfinite(audio).all() and np.abs(audio).max() > 0
    assert all(speed.stage_s[stage] > 0 for stage in ("prefill", "decode", "vocode"))
    exported = {p.name: sf.read(p, dtype="float32")[0] for p in sorted(out.glob("*.wav"))}
    assert len(exported) == 2
    assert json.loads((out / "report.json").read_text())["coverage"]["complete"]

    again = CliRunner().invoke(cli, args, catch_exceptions=False)  # resumes: nothing left to render
    assert again.exit_code == 0 and "0 rendered now" in again.output
    for name, audio in exported.items():
        assert np.array_equal(sf.read(out / name, dtype="float32")[0], audio)
