"""The engine's CPU vocoder uses the fast SoVITS generator, switchable between fp32 and bf16."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from renderer.engine.backend import VocodeItem
from renderer.engine.precision import signal_to_error_db
from renderer.engine.vocoder import TorchVocoder
from renderer.models.sovits import load_sovits
from renderer.models.sovits_fast import cpu_supports_bf16


def _items() -> list[VocodeItem]:
    rng = np.random.default_rng(3)
    return [VocodeItem(f"c{i}", rng.integers(0, 1024, n), rng.integers(1, 732, 12)) for i, n in enumerate((9, 14))]


def test_cpu_vocoder_runs_the_fast_generator_and_matches_the_reference(sovits_path) -> None:
    model, _cfg, _ckpt = load_sovits(sovits_path)
    ge = np.random.default_rng(0).standard_normal((1, model.cfg.gin_channels, 1)).astype(np.float32)
    vocoder = TorchVocoder(model, ge)
    assert model.fast_dec is not None and vocoder.max_batch == 1
    fast = vocoder.render(_items(), seeds=[1, 2])
    model.fast_dec = None  # the reference generator, as conformance-tested
    reference = vocoder.render(_items(), seeds=[1, 2])
    for a, b in zip(fast, reference, strict=True):
        assert a.shape == b.shape and float(np.abs(a - b).max()) <= 1e-4


@pytest.mark.skipif(not cpu_supports_bf16(), reason="this CPU has no native bf16")
def test_bf16_vocoder_stays_within_tolerance_and_switches_back(sovits_path) -> None:
    model, _cfg, _ckpt = load_sovits(sovits_path)
    ge = np.random.default_rng(0).standard_normal((1, model.cfg.gin_channels, 1)).astype(np.float32)
    vocoder = TorchVocoder(model, ge)
    fp32 = vocoder.render(_items(), seeds=[1, 2])
    vocoder.set_precision(torch.bfloat16)
    bf16 = vocoder.render(_items(), seeds=[1, 2])
    assert all(signal_to_error_db(a, b) >= 20.0 for a, b in zip(fp32, bf16, strict=True))
    assert any(float(np.abs(a - b).max()) > 0 for a, b in zip(fp32, bf16, strict=True))  # really bf16
    vocoder.set_precision(None)
    again = vocoder.render(_items(), seeds=[1, 2])
    assert all(np.array_equal(a, b) for a, b in zip(fp32, again, strict=True))


def test_lengths_are_bucketed_without_changing_the_audio(sovits_path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, _cfg, _ckpt = load_sovits(sovits_path)
    ge = np.random.default_rng(0).standard_normal((1, model.cfg.gin_channels, 1)).astype(np.float32)
    vocoder = TorchVocoder(model, ge)
    shapes: list[tuple[int, int]] = []
    decode = model.decode

    def recording_decode(codes, code_lengths, phones, *args, **kwargs):  # type: ignore[no-untyped-def]
        shapes.append((codes.shape[1], phones.shape[1]))
        return decode(codes, code_lengths, phones, *args, **kwargs)

    monkeypatch.setattr(model, "decode", recording_decode)
    items = _items()  # 9 and 14 tokens, 12 phones each
    for speed in (1.0, 1.25):
        vocoder.bucket_tokens = 0
        exact = vocoder.render(items, speed=speed, seeds=[1, 2])
        vocoder.bucket_tokens = 8
        bucketed = vocoder.render(items, speed=speed, seeds=[1, 2])
        for a, b in zip(exact, bucketed, strict=True):
            assert a.shape == b.shape and float(np.abs(a - b).max()) <= 1e-4
    assert shapes[:4] == [(9, 12), (14, 12), (16, 16), (16, 16)]  # exact shapes, then one shared padded one
