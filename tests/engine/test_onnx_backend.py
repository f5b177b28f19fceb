"""ONNX Runtime backend: export, sidecar checks, and the same exactness checks as the torch backend."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from renderer.backends.onnx_backend import OnnxBackend
from renderer.engine.api import VoiceParts
from renderer.errors import BackendUnavailableError
from renderer.export_onnx import OPSET, export_voice_onnx, read_sidecar
from tests.engine.helpers import check_step_writes_one_position
from tests.engine.test_torch_backend import (
    check_conformance,
    check_continuous_batching,
    check_drain_compaction,
    check_independence,
    check_teacher_forced,
)

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def voice(vectors, gpt_path, sovits_path, voice_ge):
    return VoiceParts(gpt_path=gpt_path, sovits_path=sovits_path, prompt_semantic=vectors["gpt_prompt_semantic"],
                      ref_phone_ids=vectors["gpt_prompt_phones"], ref_bert=vectors["gpt_prompt_bert"], ge=voice_ge)


@pytest.fixture(scope="module")
def export_dir(voice, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("onnx")
    export_voice_onnx(voice, out, include_vocoder=False)
    return out


@pytest.fixture(scope="module")
def backend(export_dir):
    return OnnxBackend(export_dir, threads=1)


def test_export_sidecar(export_dir) -> None:
    sidecar = read_sidecar(export_dir)
    assert sidecar["opset"] == OPSET and sidecar["verified"] is True
    for name in ("gpt_prefill", "gpt_step"):
        graph = sidecar["graphs"][name]
        assert graph["verified_max_abs_diff"] <= graph["tolerance"]
        assert "past_key_0" in graph["inputs"] or "phone_ids" in graph["inputs"]
    import onnx

    model = onnx.load(str(export_dir / "gpt_step.onnx"))
    assert model.opset_import[0].version == OPSET
    dims = [d.dim_param for d in model.graph.input[-1].type.tensor_type.shape.dim]
    assert dims[0] == "batch" and "capacity" in dims


def test_export_is_deterministic(voice, export_dir, tmp_path) -> None:
    export_voice_onnx(voice, tmp_path, include_vocoder=False)
    first = json.loads((export_dir / "export.json").read_text())["graphs"]
    second = json.loads((tmp_path / "export.json").read_text())["graphs"]
    assert first["gpt_step"]["sha256"] == second["gpt_step"]["sha256"]
    assert first["gpt_prefill"]["sha256"] == second["gpt_prefill"]["sha256"]


def test_changed_graph_is_refused(export_dir, tmp_path) -> None:
    for f in export_dir.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    with open(tmp_path / "gpt_step.onnx", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(BackendUnavailableError):
        OnnxBackend(tmp_path)
    with pytest.raises(BackendUnavailableError):
        OnnxBackend(tmp_path / "missing")


def test_conformance_vectors(backend, conformance) -> None:
    check_conformance(backend, conformance)


def test_teacher_forced_logits_mixed_batch(backend, reference_gpt, vectors) -> None:
    check_teacher_forced(backend, reference_gpt, vectors)


def test_tokens_independent_of_batch(backend, reference_gpt, vectors) -> None:
    check_independence(backend, reference_gpt, vectors)


def test_continuous_batching(backend, vectors) -> None:
    check_continuous_batching(backend, vectors)


def test_step_writes_only_new_positions(backend, vectors) -> None:
    check_step_writes_one_position(backend, vectors)


def test_onnx_vocoder_matches_torch(voice, tmp_path) -> None:
    """The exported SoVITS graph (speed 1) gives the torch vocoder's audio; other speeds fall back to torch."""
    from renderer.engine.backend import VocodeItem

    export_voice_onnx(voice, tmp_path)
    sidecar = read_sidecar(tmp_path)
    if "sovits_decode" not in sidecar["graphs"]:
        pytest.fail(f"SoVITS graph was not exported: {sidecar['sovits_decode_error']}")
    backend = OnnxBackend(tmp_path, voice=voice, threads=1)
    from renderer.engine.vocoder import TorchVocoder

    assert type(backend.vocoder).__name__ == "OnnxVocoder"
    torch_vocoder = backend.vocoder.fallback
    assert isinstance(torch_vocoder, TorchVocoder)
    rng = np.random.default_rng(0)
    items = [VocodeItem(f"k{i}", rng.integers(0, 1024, n), rng.integers(1, 732, m))
             for i, (n, m) in enumerate([(9, 5), (14, 8), (11, 3)])]
    got = backend.vocode(items, speed=1.0, noise_scale=0.5, seeds=[1, 2, 3])
    want = torch_vocoder.render(items, speed=1.0, noise_scale=0.5, seeds=[1, 2, 3])
    for g, w, item in zip(got, want, items, strict=True):
        assert g.shape == w.shape == (1280 * len(item.tokens),)
        assert np.abs(g - w).max() <= 1e-3
    fast = backend.vocode(items[:1], speed=1.25, noise_scale=0.5, seeds=[1])[0]
    assert len(fast) == (int(2 * 9 / 1.25) + 1) * 640


def test_onnx_drained_batch_is_compacted(backend, vectors) -> None:
    check_drain_compaction(backend, vectors)
