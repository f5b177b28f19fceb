"""ERes2NetV2 speaker model: real key layout and shapes, random checkpoints, SpeakerEncoder, bad files."""

from __future__ import annotations

import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from renderer.audio import kaldi_fbank
from renderer.errors import CheckpointError, RendererError
from renderer.models.eres2net import (
    SV_EMBEDDING_DIM,
    ERes2NetV2,
    ERes2NetV2Config,
    SpeakerEncoder,
    config_from_state_dict,
)
from renderer.models.random_helpers import TINY_SV_CONFIG, write_random_sv_checkpoint
from tests.voice.sv_layout import FULL_SV_LAYOUT


@pytest.fixture(scope="module")
def full_model() -> ERes2NetV2:
    # On the meta device: real shapes and key names, no memory, no initialisation cost.
    with torch.device("meta"):
        return ERes2NetV2(ERes2NetV2Config()).eval()


@pytest.fixture(scope="module")
def full_state(full_model: ERes2NetV2) -> dict[str, torch.Tensor]:
    return full_model.state_dict()


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_sv_checkpoint(tmp_path_factory.mktemp("sv") / "sv.ckpt", seed=7, size="tiny")


@pytest.fixture(scope="module")
def encoder(tiny_ckpt: Path) -> SpeakerEncoder:
    return SpeakerEncoder(tiny_ckpt)


def _wav(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.3 * np.sin(2 * np.pi * 180 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


def test_full_layout_matches_pretrained_eres2netv2w24s4ep4(full_state: dict[str, torch.Tensor]) -> None:
    """Shapes derived by hand from 3D-Speaker's ERes2NetV2(baseWidth=24, scale=4, expansion=4)."""
    for name, shape in FULL_SV_LAYOUT.items():
        assert tuple(full_state[name].shape) == shape, name
    blocks = {tuple(k.split(".")[:2]) for k in full_state if k.startswith("layer") and not k.startswith("layer3_ds")}
    counts = [sum(1 for b in blocks if b[0] == f"layer{s}") for s in (1, 2, 3, 4)]
    assert counts == [3, 4, 6, 3]
    assert not any(k.startswith(("layer1.0.fuse", "layer2.0.fuse", "pool", "seg_2", "seg_bn")) for k in full_state)
    assert config_from_state_dict(full_state) == ERes2NetV2Config()


def test_full_size_forward3_is_20480(full_model: ERes2NetV2) -> None:
    model = full_model
    with torch.inference_mode():
        feats = torch.empty(1, 45, 80, device="meta")
        out = model.forward3(feats)
        fused = model.feature_map(feats)
    assert out.shape == (1, SV_EMBEDDING_DIM)
    assert fused.shape == (1, 2048, 10, 6)  # F 80 → 10, T 45 → 23 → 12 → 6
    assert ERes2NetV2Config().forward3_dim == SV_EMBEDDING_DIM


def test_tiny_checkpoint_has_real_keys_and_output_width(tiny_ckpt: Path, full_state: dict) -> None:
    state = torch.load(tiny_ckpt, map_location="cpu", weights_only=True)
    assert isinstance(state, OrderedDict)
    assert list(state.keys()) == list(full_state.keys())
    assert config_from_state_dict(state) == TINY_SV_CONFIG
    assert TINY_SV_CONFIG.forward3_dim == SV_EMBEDDING_DIM
    assert state["layer3_ds.weight"].dtype == torch.float16  # stored compactly; loaded as float32


def test_embedding_shape_determinism_and_upstream_features(tiny_ckpt: Path, encoder: SpeakerEncoder) -> None:
    wav = _wav(0.3)
    emb = encoder.embedding(wav)
    assert emb.shape == (1, SV_EMBEDDING_DIM) and emb.dtype == torch.float32
    assert torch.isfinite(emb).all() and float(emb.std()) > 0
    assert next(encoder.model.parameters()).dtype == torch.float32
    # A second load of the same file gives bit-identical results.
    again = SpeakerEncoder(tiny_ckpt).embedding(wav)
    assert torch.equal(emb, again)
    # Upstream feeds fbank(wav) straight to forward3: no per-utterance mean removal.
    with torch.inference_mode():
        direct = encoder.model.forward3(kaldi_fbank(torch.from_numpy(wav)).unsqueeze(0))
    torch.testing.assert_close(emb, direct)
    other = encoder.embedding(_wav(0.3, seed=1) * 0.2)
    assert not torch.allclose(emb, other)
    assert not emb.is_inference() and not emb.requires_grad  # usable in ordinary (in-place) tensor code


def test_seeds_give_different_weights(tmp_path: Path, tiny_ckpt: Path) -> None:
    other = write_random_sv_checkpoint(tmp_path / "other.ckpt", seed=8, size="tiny")
    a = torch.load(tiny_ckpt, weights_only=True)
    b = torch.load(other, weights_only=True)
    assert not torch.equal(a["conv1.weight"], b["conv1.weight"])
    same = write_random_sv_checkpoint(tmp_path / "same.ckpt", seed=7, size="tiny")
    c = torch.load(same, weights_only=True)
    assert all(torch.equal(a[k], c[k]) for k in a)
    with pytest.raises(ValueError, match="tiny"):
        write_random_sv_checkpoint(tmp_path / "x.ckpt", seed=1, size="huge")


def test_too_short_audio_is_a_clear_error(encoder: SpeakerEncoder) -> None:
    with pytest.raises(RendererError, match="too short"):
        encoder.embedding(np.zeros(300, np.float32))


def test_wrong_files_raise_checkpoint_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        SpeakerEncoder(tmp_path / "missing.ckpt")
    text = tmp_path / "notes.ckpt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="notes.ckpt"):
        SpeakerEncoder(text)
    other_model = tmp_path / "linear.ckpt"
    torch.save(torch.nn.Linear(3, 4).state_dict(), other_model)
    with pytest.raises(CheckpointError, match="not an ERes2NetV2"):
        SpeakerEncoder(other_model)
    gpt_like = tmp_path / "gpt.ckpt"
    torch.save({"weight": {"a": torch.zeros(1)}, "config": {}}, gpt_like)
    with pytest.raises(CheckpointError, match="gpt.ckpt"):
        SpeakerEncoder(gpt_like)


def test_truncated_layout_is_rejected(tmp_path: Path, tiny_ckpt: Path) -> None:
    state = torch.load(tiny_ckpt, weights_only=True)
    del state["layer4.2.bn3.weight"]
    broken = tmp_path / "broken.ckpt"
    torch.save(state, broken)
    with pytest.raises(CheckpointError, match="does not match ERes2NetV2"):
        SpeakerEncoder(broken)


class _Evil:
    def __reduce__(self):  # pragma: no cover - never executed by the safe loader
        return (print, ("pwned",))


def test_pickled_code_is_never_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "evil.ckpt"
    with path.open("wb") as handle:
        pickle.dump({"conv1.weight": _Evil()}, handle, protocol=2)
    with pytest.raises(CheckpointError):
        SpeakerEncoder(path)
    assert "pwned" not in capsys.readouterr().out


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_embedding_matches_cpu(tiny_ckpt: Path, encoder: SpeakerEncoder) -> None:
    wav = _wav(0.5)
    gpu = SpeakerEncoder(tiny_ckpt, device="cuda").embedding(wav)
    assert gpu.device.type == "cpu" and gpu.shape == (1, SV_EMBEDDING_DIM)
    torch.testing.assert_close(gpu, encoder.embedding(wav), atol=1e-3, rtol=1e-3)


def test_damaged_or_non_finite_speaker_model_is_refused(tmp_path: Path, tiny_ckpt: Path) -> None:
    from tests.models.test_safe_loader import damage_tensor_bytes

    damaged = tmp_path / "damaged sv.ckpt"
    entry = damage_tensor_bytes(tiny_ckpt, damaged)
    with pytest.raises(CheckpointError) as err:
        SpeakerEncoder(damaged)
    assert str(damaged) in str(err.value) and entry in str(err.value) and "tensor 'layer" in str(err.value)
    assert "copy or download it again" in str(err.value)

    state = torch.load(tiny_ckpt, weights_only=True)
    state["fuse34.local_att.0.weight"][0, 0, 0, 0] = float("nan")
    nan_file = tmp_path / "nan sv.ckpt"
    torch.save(state, nan_file)
    with pytest.raises(CheckpointError, match="tensor 'fuse34.local_att.0.weight' holds 1 NaN or infinite"):
        SpeakerEncoder(nan_file)
