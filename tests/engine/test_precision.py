"""Reduced-precision selection: checked against fp32, cached, used only when it passes."""

from __future__ import annotations

import numpy as np
import pytest

from renderer.backends import open_engine
from renderer.engine.api import SynthesisRequest, VoiceParts
from renderer.engine.options import SamplingOptions
from renderer.engine.precision import compare_logits, signal_to_error_db
from renderer.errors import OptionsError
from renderer.hardware import cpu_has_bf16
from renderer.tuning import EngineTuning


def test_compare_logits_and_ser() -> None:
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((20, 1025)).astype(np.float32)
    same = compare_logits(ref, ref.copy(), "bf16")
    assert same.passed and same.top1_agreement == 1.0 and same.max_abs_logit_diff == 0.0
    noisy = compare_logits(ref, ref + rng.standard_normal(ref.shape).astype(np.float32), "bf16")
    assert not noisy.passed
    x = rng.standard_normal(1000)
    assert signal_to_error_db(x, x) == float("inf")
    assert abs(signal_to_error_db(x, x * 1.1) - 20.0) < 1e-6


def test_auto_precision_is_checked_and_cached(monkeypatch, tmp_path, vectors, gpt_path, sovits_path,
                                              voice_ge) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    args = (gpt_path, sovits_path, vectors["gpt_prompt_semantic"], vectors["gpt_prompt_phones"],
            vectors["gpt_prompt_bert"], voice_ge)
    fixed = EngineTuning(measure=False)
    engine = open_engine(VoiceParts.from_arrays(*args), backend="torch", precision="auto", tuning=fixed)
    report = engine.backend.precision_report
    if not cpu_has_bf16():
        assert engine.backend.precision == "fp32"
        return
    assert "gpt" in report and report["gpt"]["steps"] > 0 and "sovits_ser_db" in report
    assert engine.backend.precision == ("bf16" if report["passed"] else "fp32")
    assert len(list((tmp_path / "audiobook-renderer" / "precision").glob("*.json"))) == 1
    again = open_engine(VoiceParts.from_arrays(*args), backend="torch", precision="auto", tuning=fixed)
    assert again.backend.precision_report == report  # read from the cache, not re-measured
    result = list(again.synthesize([SynthesisRequest("k", vectors["gpt_target_phones"])],
                                   SamplingOptions(max_tokens=12)))[0]
    assert len(result.audio) == 1280 * len(result.tokens) and np.isfinite(result.audio).all()


def test_bad_precision_is_refused(vectors, gpt_path) -> None:
    with pytest.raises(OptionsError):
        voice = VoiceParts.from_arrays(gpt_path, None, vectors["gpt_prompt_semantic"], vectors["gpt_prompt_phones"],
                                       None, None)
        open_engine(voice, backend="torch", precision="int3", tuning=EngineTuning(measure=False))
