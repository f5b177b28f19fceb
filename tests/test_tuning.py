"""Engine tuning is read in one place, validated with errors that name their source, and has no import-time
side effects."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from renderer.tuning import ENVIRONMENT, EngineTuning, TuningError, apply_process_settings


def test_defaults_environment_and_overrides_in_that_order() -> None:
    assert EngineTuning.resolve(environ={}) == EngineTuning()
    env = {"RENDER_KV_BUDGET_MB": "800", "RENDER_OVERLAP": "yes", "RENDER_HUGE_PAGES": " On ",
           "RENDER_MMAP_THRESHOLD_MB": "4", "ONEDNN_PRIMITIVE_CACHE_CAPACITY": "512", "RENDER_UNRELATED": "x"}
    tuned = EngineTuning.resolve(environ=env)
    assert (tuned.kv_budget_mb, tuned.overlap, tuned.huge_pages, tuned.mmap_threshold_mb,
            tuned.onednn_primitive_cache) == (800.0, True, True, 4.0, 512)
    over = EngineTuning.resolve({"kv_budget_mb": 100, "overlap": "0", "batch_size": None, "threads": "2",
                                 "attention": "torch", "packed_linear": False}, environ=env)
    assert (over.kv_budget_mb, over.overlap, over.batch_size, over.threads, over.attention, over.packed_linear) == (
        100, False, None, 2, "torch", False)
    assert over.huge_pages is True  # not overridden: the environment's
    assert EngineTuning.resolve({"batch_size": "auto"}, environ={}).batch_size is None


@pytest.mark.parametrize(("env", "named"), [
    ({"RENDER_KV_BUDGET_MB": "lots"}, "RENDER_KV_BUDGET_MB"),
    ({"RENDER_KV_BUDGET_MB": "-5"}, "RENDER_KV_BUDGET_MB"),
    ({"RENDER_OVERLAP": "maybe"}, "RENDER_OVERLAP"),
    ({"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "1.5"}, "ONEDNN_PRIMITIVE_CACHE_CAPACITY"),
])
def test_a_bad_variable_is_named(env: dict[str, str], named: str) -> None:
    with pytest.raises(TuningError, match=named):
        EngineTuning.resolve(environ=env)


def test_bad_values_and_names_are_typed_errors() -> None:
    for bad in ({"batch_size": 0}, {"threads": 1.5}, {"attention": "fastest"}, {"packed_linear": 1},
                {"vocoder_bucket_tokens": -1}, {"kv_budget_mb": float("nan")}, {"threads": True}):
        with pytest.raises(TuningError):
            EngineTuning(**bad)
    with pytest.raises(TuningError, match="unknown tuning 'batchsize'"):
        EngineTuning.resolve({"batchsize": 4}, environ={})
    with pytest.raises(TuningError, match="batch_size"):
        EngineTuning.resolve({"batch_size": "four"}, environ={})
    with pytest.raises(TuningError):
        EngineTuning().with_overrides(batch_size=-1)


def test_every_variable_is_described() -> None:
    rows = {name: (value, where) for name, value, where in EngineTuning().describe(environ={"RENDER_OVERLAP": "1"})}
    assert set(rows) == set(EngineTuning().to_dict())
    assert rows["overlap"][1] == "RENDER_OVERLAP (set)" and rows["batch_size"] == ("auto", "--batch-size")
    assert all(where for _value, where in rows.values())
    assert set(ENVIRONMENT) <= set(rows)


def test_process_settings_are_applied_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "1024")
    assert apply_process_settings(EngineTuning(onednn_primitive_cache=1000)) is True
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "1000"
    assert apply_process_settings(EngineTuning(onednn_primitive_cache=1000)) is False  # once
    apply_process_settings(EngineTuning())  # back to the defaults for the rest of the session


def test_importing_the_renderer_changes_nothing() -> None:
    code = ("import os, sys; os.environ.pop('ONEDNN_PRIMITIVE_CACHE_CAPACITY', None); "
            "import renderer, renderer.engine, renderer.backends, renderer.tuning; "
            "sys.stdout.write(repr(os.environ.get('ONEDNN_PRIMITIVE_CACHE_CAPACITY')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "RENDER_MMAP_THRESHOLD_MB": "4"})
    assert done.stdout == "None"
