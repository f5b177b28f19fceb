"""The checkpoint loader refuses unsafe, wrong-kind, damaged and unsupported files with clear errors."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest
import torch

from renderer.checkpoints import load_gpt_checkpoint, load_sovits_checkpoint, read_raw_checkpoint
from renderer.errors import CheckpointError, UnsafeCheckpointError
from renderer.models.gpt import load_gpt
from renderer.models.sovits import load_sovits


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


@pytest.mark.parametrize("loader", [load_gpt_checkpoint, load_sovits_checkpoint, load_gpt, load_sovits])
def test_malicious_pickle_is_refused_without_running(tmp_path, loader):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    torch.save({"weight": {"model.x": torch.zeros(1)}, "config": _Evil(marker), "info": "x"}, path)
    with pytest.raises(UnsafeCheckpointError) as err:
        loader(path)
    assert "system" in str(err.value)
    assert not marker.exists()


def test_gpt_file_given_as_sovits(conformance):
    with pytest.raises(CheckpointError, match="GPT checkpoint"):
        load_sovits(conformance.file("gpt"))


@pytest.mark.parametrize("section", ["sovits_v2", "sovits_v2pp"])
def test_sovits_file_given_as_gpt(conformance, section):
    with pytest.raises(CheckpointError, match="SoVITS"):
        load_gpt(conformance.file(section))


@pytest.mark.parametrize("section", ["gpt", "sovits_v2pp"])
def test_truncated_file(conformance, tmp_path, section):
    source = conformance.file(section)
    data = source.read_bytes()
    path = tmp_path / source.name
    path.write_bytes(data[: len(data) // 2])
    loader = load_gpt if section == "gpt" else load_sovits
    with pytest.raises(CheckpointError, match="truncated|damaged"):
        loader(path)


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="bytes long"):
        load_sovits(empty)
    with pytest.raises(CheckpointError, match="not found"):
        load_gpt(tmp_path / "missing.ckpt")


@pytest.mark.parametrize("tag,label", [(b"02", "v3"), (b"03", "v3-LoRA"), (b"04", "v4-LoRA"), (b"00", "v1")])
def test_unsupported_version_tags(conformance, tmp_path, tag, label):
    data = conformance.file("sovits_v2").read_bytes()
    path = tmp_path / f"model_{label}.pth"
    path.write_bytes(tag + data[2:])
    with pytest.raises(CheckpointError, match=f"SoVITS {label} file, which is not supported"):
        load_sovits(path)


def test_pk_tagged_v1_file(conformance, tmp_path, monkeypatch):
    import types

    from renderer.checkpoints import HParams

    utils = types.ModuleType("utils")
    utils.HParams = HParams  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "utils", utils)

    _, raw = read_raw_checkpoint(conformance.file("sovits_v2"))
    raw["weight"]["enc_p.text_embedding.weight"] = torch.zeros(322, 192, dtype=torch.float16)
    path = tmp_path / "v1.pth"
    assert isinstance(raw["config"], HParams)
    torch.save(raw, path)
    assert path.read_bytes()[:2] == b"PK"
    with pytest.raises(CheckpointError, match="SoVITS v1 file, which is not supported"):
        load_sovits(path)


def test_odd_paths(conformance, tmp_path, vec):
    """Loading and running works from a folder with spaces and non-ASCII characters."""
    folder = tmp_path / "my voices" / "Zoë 声音 ünïcode"
    folder.mkdir(parents=True)
    copies = {}
    for section in ("gpt", "sovits_v2pp"):
        copies[section] = folder / f"copy of {conformance.file(section).name}"
        shutil.copy(conformance.file(section), copies[section])
    model, _, ckpt = load_gpt(copies["gpt"])
    assert ckpt.path == copies["gpt"]
    phones = torch.cat([vec("gpt_prompt_phones"), vec("gpt_target_phones")])
    bert = torch.cat([vec("gpt_prompt_bert"), vec("gpt_target_bert")], 1)
    from tests.oracles.gpt_reference import generate_reference

    call = "gpt_single_rp135"
    res = generate_reference(model, phones, bert, vec("gpt_prompt_semantic"), conformance.options(call),
                             conformance.early_stop(call))
    assert torch.equal(res.tokens, vec(f"{call}_generated"))
    sovits, _, sck = load_sovits(copies["sovits_v2pp"])
    assert sck.version == conformance.manifest["sovits_v2pp"]["config_model"]["version"]
    case = next(c for c in conformance.sovits_cases() if c.model == "sovits_v2pp")
    ge = sovits.reference_ge([vec(r) for r in case.refs], [vec(s) for s in case.svs])
    codes, ph = vec("sovits_codes")[0], vec("sovits_phones")
    audio, _ = sovits.decode(codes, torch.tensor([codes.shape[1]]), ph, torch.tensor([ph.shape[1]]), ge,
                             case.noise_scale, case.speed, noise=vec(f"{case.prefix}_noise"))
    assert (audio - vec(f"{case.prefix}_audio")[0]).abs().max().item() <= 1e-3


def damage_tensor_bytes(source: Path, target: Path, where: str = "largest tensor", seed: int = 0) -> str:
    """Copy ``source`` with 64 KB of random bytes written inside it, the ZIP directory left intact.

    ``where``: "largest tensor" (the middle of the biggest tensor's stored bytes) or "middle of the file".
    Returns the name of the archive entry hit ("" for the middle of the file).
    """
    import io
    import struct
    import zipfile

    import numpy as np

    data = bytearray(source.read_bytes())
    size = 64 * 1024
    entry = ""
    if where == "largest tensor":
        with zipfile.ZipFile(io.BytesIO(b"PK" + bytes(data[2:]))) as archive:
            info = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
        assert info.file_size > size
        name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
        start = info.header_offset + 30 + name_len + extra_len + (info.file_size - size) // 2
        entry = info.filename
    else:
        start = len(data) // 2 - size // 2
    data[start:start + size] = np.random.default_rng(seed).bytes(size)
    target.write_bytes(bytes(data))
    return entry


def _tensors_stored_in(source: Path, entry: str) -> set[str]:
    """Names of the tensors whose bytes are exactly the archive entry's (found by content, not by our loader)."""
    import io
    import zipfile

    data = source.read_bytes()
    with zipfile.ZipFile(io.BytesIO(b"PK" + data[2:])) as archive:
        stored = archive.read(entry)
    _, raw = read_raw_checkpoint(source)
    return {name for name, t in raw["weight"].items() if t.numpy().tobytes() == stored}


@pytest.mark.parametrize("section", ["gpt", "sovits_v2pp"])
def test_damaged_tensor_bytes_are_refused_naming_the_tensor(conformance, tmp_path, section):
    """Random bytes inside a tensor pass torch's reader (it skips CRCs); ours names the tensor and the fix."""
    source = conformance.file(section)
    damaged = tmp_path / f"damaged {source.name}"
    entry = damage_tensor_bytes(source, damaged)
    loader = load_gpt if section == "gpt" else load_sovits
    with pytest.raises(CheckpointError) as err:
        loader(damaged)
    message = str(err.value)
    assert str(damaged) in message and entry in message and "checksum" in message
    assert "copy or download it again" in message
    expected = _tensors_stored_in(source, entry)
    assert expected and any(f"'{tensor}'" in message for tensor in expected)


def test_damage_anywhere_is_a_clear_error(conformance, tmp_path):
    damaged = tmp_path / "sovits.pth"
    damage_tensor_bytes(conformance.file("sovits_v2"), damaged, where="middle of the file", seed=1)
    with pytest.raises(CheckpointError, match="is damaged.*copy or download it again"):
        load_sovits(damaged)


@pytest.mark.parametrize("section", ["gpt", "sovits_v2pp"])
def test_non_finite_weights_are_refused(conformance, tmp_path, monkeypatch, section):
    """A file with intact checksums but NaN/inf values (e.g. saved from a diverged run) is refused too."""
    import io
    import types

    from renderer.checkpoints import HParams

    utils = types.ModuleType("utils")
    utils.HParams = HParams  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "utils", utils)
    source = conformance.file(section)
    tag, raw = read_raw_checkpoint(source)
    tensor_name = sorted(raw["weight"])[len(raw["weight"]) // 2]
    bad = raw["weight"][tensor_name].clone().reshape(-1)
    bad[:3] = torch.tensor([float("nan"), float("inf"), -float("inf")], dtype=bad.dtype)
    raw["weight"][tensor_name] = bad.reshape(raw["weight"][tensor_name].shape)
    buffer = io.BytesIO()
    torch.save(raw, buffer)
    path = tmp_path / source.name
    path.write_bytes(tag + buffer.getvalue()[2:])
    loader = load_gpt if section == "gpt" else load_sovits
    with pytest.raises(CheckpointError, match=re.escape(f"tensor '{tensor_name}' holds 3 NaN")):
        loader(path)


def test_version_tag_and_plain_pk_load_alike(conformance, tmp_path, sovits_v2):
    """Upstream's v2 tag '01' (what our generator writes) and a plain 'PK' v2 file give the same model."""
    data = conformance.file("sovits_v2").read_bytes()
    assert data[:2] == b"PK"
    tagged = tmp_path / "tagged.pth"
    tagged.write_bytes(b"01" + data[2:])
    ckpt = load_sovits_checkpoint(tagged)
    assert ckpt.version == "v2" and ckpt.tag == "01"
    plain = sovits_v2[2]
    assert plain.version == "v2" and plain.tag == "PK"
    assert ckpt.weights.keys() == plain.weights.keys()
    assert all(torch.equal(ckpt.weights[k], plain.weights[k]) for k in ckpt.weights)
