"""Settings by measurement: the choice from measured figures (both kinds of CPU), its cache, its precedence."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from renderer.engine import autotune
from renderer.engine.autotune import Limits, MeasuredSettings, Measurements, choose
from renderer.tuning import EngineTuning

#: Figures of the two machines issue 21 compares (tokens/s of decode steps, audio seconds per wall second).
#: A 2-core Xeon with AMX, bf16: batching the vocoder pays (RTF 0.074 at batch 1, 0.050 at batch 4).
AMX_BF16 = Measurements(threads=2, gpt_tokens_per_s={8: 259.0, 16: 380.0, 32: 520.0, 64: 631.0},
                        vocoder_audio_per_s={1: 1 / 0.074, 2: 1 / 0.060, 4: 1 / 0.050}, vocoder_mb_per_audio_s=30.0,
                        base_mb=900.0, kv_mb_per_row=24.0, half_gpt_tokens_per_s=400.0,
                        half_vocoder_audio_per_s=1 / 0.14)
#: The 2-core AMD EPYC without AMX, fp32: one chunk at a time is fastest (RTF 0.26 vs 0.275 at batch 4).
EPYC_FP32 = Measurements(threads=2, gpt_tokens_per_s={8: 195.0, 16: 270.0, 32: 330.0, 64: 360.0},
                         vocoder_audio_per_s={1: 1 / 0.260, 2: 1 / 0.270, 4: 1 / 0.275}, vocoder_mb_per_audio_s=33.0,
                         base_mb=1100.0, kv_mb_per_row=48.0, half_gpt_tokens_per_s=210.0,
                         half_vocoder_audio_per_s=1 / 0.50)
ROOMY = Limits(memory_budget_mb=6000.0, kv_budget_mb=1600.0)


def test_amx_batches_the_vocoder_and_the_gpt() -> None:
    chosen = choose(AMX_BF16, ROOMY)
    assert (chosen.batch_size, chosen.vocoder_batch) == (64, 4)
    assert any("vocoder batch 4: the fastest" in r for r in chosen.reasons)


def test_without_amx_the_vocoder_renders_one_chunk_at_a_time() -> None:
    chosen = choose(EPYC_FP32, ROOMY)
    assert chosen.vocoder_batch == 1
    # 64 rows of fp32 cache (3 GB) exceed the 1600 MB KV budget: 32 is the largest allowed, and the fastest
    assert chosen.batch_size == 32 and "KV budget 1600 MB = 33 rows" in chosen.reasons[0]
    assert chosen.overlap is False  # in turn 0.336 s per audio second against 1.15 x 0.5 s side by side


def test_a_smaller_batch_within_tolerance_wins() -> None:
    rates = {**EPYC_FP32.gpt_tokens_per_s, 32: 350.0}
    m = dataclasses.replace(EPYC_FP32, gpt_tokens_per_s=rates, kv_mb_per_row=24.0)
    chosen = choose(m, ROOMY)
    assert chosen.batch_size == 32  # 350 is within 5 % of batch 64's 360
    assert "within 5% of batch 64's 360 tok/s with 768 MB less KV cache" in chosen.reasons[0]


def test_the_vocoder_batch_fits_the_memory_budget() -> None:
    # 900 MB base + 64 x 24 MB of cache leave 564 MB of 3000: four 15 s chunks in flight need 1800 MB
    chosen = choose(AMX_BF16, Limits(memory_budget_mb=3000.0, kv_budget_mb=1600.0))
    assert chosen.batch_size == 64 and chosen.vocoder_batch == 1
    assert "batch 2, 4 would need more than the 564 MB left" in chosen.reasons[1]


def test_overlap_only_when_the_split_predicts_a_gain() -> None:
    # both stages barely slow on half the threads (bound by memory, not arithmetic): side by side wins
    m = dataclasses.replace(EPYC_FP32, half_gpt_tokens_per_s=320.0, half_vocoder_audio_per_s=1 / 0.27)
    assert choose(m, ROOMY).overlap is True
    single = dataclasses.replace(EPYC_FP32, threads=1, half_gpt_tokens_per_s=None, half_vocoder_audio_per_s=None)
    assert choose(single, ROOMY).overlap is False


def test_settings_round_trip_through_their_dict() -> None:
    chosen = choose(AMX_BF16, ROOMY)
    assert MeasuredSettings.from_dict(chosen.to_dict()) == chosen


@pytest.fixture()
def tiny_voice(vectors: Any, gpt_path: Any, sovits_path: Any, voice_ge: Any) -> Any:
    from renderer.engine.api import VoiceParts

    return VoiceParts.from_arrays(gpt_path, sovits_path, vectors["gpt_prompt_semantic"],
                                  vectors["gpt_prompt_phones"], vectors["gpt_prompt_bert"], voice_ge, name="tiny")


def test_measured_once_cached_and_overridden(monkeypatch: Any, tmp_path: Any, tiny_voice: Any) -> None:
    """First use measures (short: small batches and chunks here) and caches; the cache is read afterwards;
    explicit settings win; measure=False keeps the built-in ones."""
    from renderer.backends import open_engine

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(autotune, "GPT_BATCHES", (2, 4))
    monkeypatch.setattr(autotune, "VOCODER_TOKENS", 8)
    monkeypatch.setattr(autotune, "STEP_WINDOW_S", 0.0)
    monkeypatch.setattr(autotune, "_load_average", lambda: [0.5, 0.5, 0.5])  # a quiet machine throughout
    tuning = EngineTuning(threads=1)
    engine = open_engine(tiny_voice, backend="torch", precision="fp32", tuning=tuning)
    files = list((tmp_path / "audiobook-renderer" / "tuning").glob("*.json"))
    assert len(files) == 1
    cached = autotune.load_cached(files[0].stem)
    assert cached is not None and cached.info["voice"] == "tiny" and len(cached.reasons) == 3
    measured = cached.measurements
    assert set(measured.gpt_tokens_per_s) == {2, 4} and set(measured.vocoder_audio_per_s) == {1, 2, 4}
    assert engine.batch_size == cached.batch_size and engine.backend.vocoder.max_batch == cached.vocoder_batch
    assert engine.overlap == cached.overlap

    def no_measuring(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("measured again")

    monkeypatch.setattr(autotune, "measure", no_measuring)
    again = open_engine(tiny_voice, backend="torch", precision="fp32", tuning=tuning)
    assert again.batch_size == cached.batch_size
    explicit = open_engine(tiny_voice, backend="torch", precision="fp32",
                           tuning=tuning.with_overrides(batch_size=3, vocoder_batch=2, overlap=False))
    assert (explicit.batch_size, explicit.backend.vocoder.max_batch, explicit.overlap) == (3, 2, False)
    fixed = open_engine(tiny_voice, backend="torch", precision="fp32", tuning=tuning.with_overrides(measure=False))
    assert fixed.backend.vocoder.max_batch == 1 and fixed.overlap is None
    assert EngineTuning.resolve(environ={"RENDER_MEASURE_SETTINGS": "0"}).measure is False


def test_the_gpt_batch_leaves_room_for_the_engine_and_a_vocoder_chunk() -> None:
    # 3000 MB - 1100 MB engine - 33 MB/s x 15 s of vocoder = 1405 MB for the cache: 29 rows of 48 MB, so 16
    chosen = choose(EPYC_FP32, Limits(memory_budget_mb=3000.0, kv_budget_mb=1600.0))
    assert chosen.batch_size == 16
    assert "KV room 1405 MB: 3000 MB budget - 1100 MB engine - 495 MB for a 15 s chunk" in chosen.reasons[0]
    # the text frontend's share, loaded after the measurement, comes off too: 905 MB = 18 rows, so 16 still;
    # with 1000 MB of it, 405 MB = 8 rows
    reserved = choose(EPYC_FP32, Limits(memory_budget_mb=3000.0, kv_budget_mb=1600.0, reserve_mb=500.0))
    assert reserved.batch_size == 16 and "500 MB text frontend and the rest" in reserved.reasons[0]
    assert choose(EPYC_FP32, Limits(3000.0, 1600.0, reserve_mb=1000.0)).batch_size == 8
    assert autotune.limits_for(EngineTuning()).reserve_mb == autotune.CPU_RESERVE_MB > 0


def test_doctor_shows_the_cached_choice_and_why(monkeypatch: Any, tmp_path: Any) -> None:
    import json

    from click.testing import CliRunner

    from jobs.cli import cli

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    chosen = choose(EPYC_FP32, ROOMY)
    autotune.store_cached("k1", dataclasses.replace(chosen, info={"voice": "narrator", "precision": "fp32",
                                                                   "threads": 2, "load_average": [0.5, 0.4, 0.3]}))
    result = CliRunner().invoke(cli, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    lines = [c["detail"] for c in json.loads(result.output) if c["name"].strip() in ("measured settings", "why")]
    assert "voice narrator, fp32, 2 threads: GPT batch 32, vocoder batch 1, stages in turn" in lines[0]
    assert "load [0.5, 0.4, 0.3]" in lines[0] and list(chosen.reasons) == lines[1:]
    assert "busy machine" not in lines[0]
    monkeypatch.setattr(autotune, "_cpus", lambda: 2)
    autotune.store_cached("k1", dataclasses.replace(chosen, info={"voice": "narrator", "load_average": [9.0, 8, 7]}))
    result = CliRunner().invoke(cli, ["doctor", "--json"])
    busy = next(c["detail"] for c in json.loads(result.output) if c["name"].strip() == "measured settings")
    assert "measured on a busy machine: measured again on the first run when it is quiet" in busy


def test_settings_measured_on_a_busy_machine_are_measured_again_once_it_is_quiet(monkeypatch: Any, tmp_path: Any,
                                                                                   tiny_voice: Any) -> None:
    from renderer.backends import open_engine

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(autotune, "GPT_BATCHES", (2,))
    monkeypatch.setattr(autotune, "VOCODER_TOKENS", 8)
    monkeypatch.setattr(autotune, "STEP_WINDOW_S", 0.0)
    monkeypatch.setattr(autotune, "_cpus", lambda: 2)
    measured = []
    real_measure = autotune.measure
    monkeypatch.setattr(autotune, "measure", lambda *a, **k: measured.append(1) or real_measure(*a, **k))
    tuning = EngineTuning(threads=1)
    load = [10.0, 8.0, 5.0]  # 5x the cores
    monkeypatch.setattr(autotune, "_load_average", lambda: list(load))
    open_engine(tiny_voice, backend="torch", precision="fp32", tuning=tuning)
    open_engine(tiny_voice, backend="torch", precision="fp32", tuning=tuning)
    assert len(measured) == 1  # still busy: the busy measurement is used rather than another busy one
    load[:] = [1.5, 3.0, 4.0]  # no more runnable threads than cores now
    open_engine(tiny_voice, backend="torch", precision="fp32", tuning=tuning)
    assert len(measured) == 2
    (cached,) = autotune.cached_settings()
    assert cached.info["load_average"] == [1.5, 3.0, 4.0] and not autotune.measured_when_busy(cached)
    open_engine(tiny_voice, backend="torch", precision="fp32", tuning=tuning)
    assert len(measured) == 2  # a quiet measurement stays
