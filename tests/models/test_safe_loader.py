"""The checkpoint loader refuses unsafe, wrong-kind, damaged and unsupported files with clear errors."""

from __future__ import annotations

import os
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
