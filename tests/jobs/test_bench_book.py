"""The book stage of `render bench`: the quick book through the real worker path with a tiny voice."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.bench.book import ActivityClock, book_figure, render_book, tokens_for
from renderer.tuning import EngineTuning
from tests.conftest import SHARED_ASSET_SEED


@pytest.fixture(scope="module")
def tiny_voices(tmp_path_factory: pytest.TempPathFactory, random_asset_cache: Path) -> Path:
    from renderer.voice import VoiceStore
    from renderer.voice_random import make_random_voice

    root = tmp_path_factory.mktemp("bench-voices")
    make_random_voice("tiny", size="tiny", seed=SHARED_ASSET_SEED, store=VoiceStore(root), cache_dir=random_asset_cache)
    return root


def test_token_rule_follows_the_phones_and_the_language() -> None:
    assert tokens_for(100, "en") == 270 and tokens_for(100, "zh") == 290
    assert tokens_for(100, "ja") == tokens_for(100, "en") and tokens_for(0, "en") == 1
    assert tokens_for(100, "zh", scale=0.1) == 29


def test_clock_splits_wall_and_cpu_between_activities() -> None:
    clock = ActivityClock(threads=2)
    clock.start("plan")
    with clock.activity("busy"):
        sum(i * i for i in range(200_000))  # CPU work on this thread
    clock.switch("export")
    clock.stop()
    acts = clock.summary()
    assert set(acts) == {"plan", "busy", "export"}
    busy = acts["busy"]
    assert busy["cpu_s"] > 0 and busy["idle_cpu_s"] == pytest.approx(2 * busy["wall_s"] - busy["cpu_s"])
    assert sum(a["share"] for a in acts.values()) == pytest.approx(1.0)


def test_quick_book_renders_through_the_worker_and_exports(tiny_voices: Path) -> None:
    """The quick book (first four chapters, English and Chinese) is planned, rendered and exported; every
    chunk decodes the tokens the rule gives it, and the figure accounts for every activity."""
    logged: list[str] = []
    run = render_book("tiny", tiny_voices, "fp32", EngineTuning(threads=1, batch_size=8, measure=False), quick=True,
                      log=logged.append, token_scale=0.05)
    assert run.failed == 0 and run.chunks == 32 and "book: 32 chunks of bench-book.md (chapters 1-4)" in logged
    assert run.audio_s == pytest.approx(run.tokens / 25, rel=0.01)  # 1280 samples per token at 32 kHz
    assert run.batch_size == 8 and run.precision == "fp32"
    expected = {"plan", "text frontend", "prefill", "decode steps", "vocoder", "write chunk files", "store", "export"}
    assert expected <= set(run.activities)
    figure = book_figure(run)
    assert figure.name == "book_rtf" and figure.median == pytest.approx(run.wall_s / run.audio_s)
    assert figure.extra["tokens"] == run.tokens and figure.extra["peak_rss_mb"] > 0
    assert run.work["linear_flops"] > 0 and run.work["attention_bytes"] > 0 and run.work["vocoder_flops"] > 0
    wall = sum(a["wall_s"] for a in run.activities.values())
    assert wall == pytest.approx(run.wall_s, rel=0.05)  # nothing the worker did is left out


def test_floors_count_each_stage_and_compare_with_the_measured_walls() -> None:
    from jobs.bench.floors import book_work, stage_floors

    # one chunk of 10 phones decoding 3 tokens after a 90-position prompt: 100, 101, 102 cached positions read
    work = book_work([(10, 3)], prompt_positions=90, d=8, n_layer=2, kv_bytes=4, vocoder_flops_per_token=1e6)
    assert work.attention_bytes == 303 * 2 * 8 * 2 * 4
    assert work.linear_flops == 3 * (24 * 2 * 64 + 2 * 8 * 1025) and work.vocoder_flops == 3e6
    activities = {"prefill": {"wall_s": 1.0}, "decode steps": {"wall_s": 2.0}, "vocoder": {"wall_s": 0.5}}
    floors = stage_floors(work.to_dict(), activities, audio_s=4.0, gemm_gflops=1e-3, memory_gbps=1e-4)
    vocoder = floors["stages"]["vocoder"]
    assert vocoder["floor_s"] == pytest.approx(3.0) and vocoder["fraction_of_peak"] == pytest.approx(6.0)
    assert floors["floor_rtf"] == pytest.approx(floors["floor_s"] / 4.0)
