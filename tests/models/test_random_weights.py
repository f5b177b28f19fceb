"""Random-weight writers produce files in the exact upstream formats that load both ways."""

from __future__ import annotations

import io
import pickle
import re
import sys
import types
import zipfile

import pytest
import torch

from renderer.models.gpt import load_gpt
from renderer.models.random_weights import gpt_config_for, sovits_config_for, write_random_gpt
from renderer.models.sovits import load_sovits
from tests.oracles import gpt_forward as fwd

MANIFEST_SECTION = {"v2": "sovits_v2", "v2ProPlus": "sovits_v2pp"}


def _layout_shape(entries) -> set[tuple[str, str]]:
    """(name with layer numbers replaced by N, dtype) of stored tensors: the layout of a model family,
    whatever its sizes (the conformance set's models may be larger than the tiny random ones)."""
    return {(re.sub(r"\.\d+\.", ".N.", name), dtype) for name, _shape, dtype in entries}


class _UpstreamHParams:
    """What upstream's utils.HParams looks like to pickle: a plain object holding attributes."""

    def keys(self):
        return self.__dict__.keys()


@pytest.fixture()
def upstream_utils(monkeypatch):
    module = types.ModuleType("utils")
    _UpstreamHParams.__module__ = "utils"
    _UpstreamHParams.__qualname__ = "HParams"
    module.HParams = _UpstreamHParams  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "utils", module)
    return module


def _upstream_load(path):
    """Upstream's loader: restore 'PK' in place of a version tag, then plain torch.load."""
    data = path.read_bytes()
    tag = data[:2]
    if tag != b"PK":
        data = b"PK" + data[2:]
    return tag, torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)


@pytest.mark.parametrize("kind", ["gpt", "v2", "v2Pro", "v2ProPlus"])
def test_archive_format(random_files, kind):
    path = random_files[kind]
    data = path.read_bytes()
    # Upstream's head2version: 01 = v2, 05 = v2Pro, 06 = v2ProPlus; GPT files are plain archives.
    expected_tag = {"v2": b"01", "v2Pro": b"05", "v2ProPlus": b"06"}.get(kind, b"PK")
    assert data[:2] == expected_tag
    with zipfile.ZipFile(io.BytesIO(b"PK" + data[2:])) as archive:
        names = archive.namelist()
        root = names[0].split("/")[0]
        assert all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())
        pkl = archive.read(f"{root}/data.pkl")
    assert pkl[:2] == b"\x80\x02"  # pickle protocol 2
    if kind != "gpt":
        assert root == "archive"
    else:
        int_part, frac = root.split(".")
        assert int_part.isdigit() and frac.isdigit()


def test_gpt_loads_upstream_way(random_files, manifest):
    _, obj = _upstream_load(random_files["gpt"])
    assert sorted(obj) == ["config", "info", "weight"]
    assert obj["config"]["model"]["embedding_dim"] == 64 and obj["config"]["data"]["max_sec"] == 54
    layout = [[n, list(t.shape), str(t.dtype)] for n, t in obj["weight"].items()]
    assert _layout_shape(layout) == _layout_shape(manifest["gpt"]["state_dict_keys"])  # as upstream stores them
    assert set(obj["config"]["model"]) == set(manifest["gpt"]["config_model"])


@pytest.mark.parametrize("version", ["v2", "v2Pro", "v2ProPlus"])
def test_sovits_loads_upstream_way(random_files, manifest, upstream_utils, version):
    _, obj = _upstream_load(random_files[version])
    config = obj["config"]
    assert isinstance(config, _UpstreamHParams) and type(config).__module__ == "utils"
    assert isinstance(config.model, _UpstreamHParams) and config.model.version == version
    assert config.train.segment_size == 20480 and config.data.hop_length == 640
    weights = obj["weight"]
    assert not any(n.startswith("enc_q.") for n in weights)
    assert all(t.dtype == torch.float16 for t in weights.values())
    assert float(weights["quantizer.vq.layers.0._codebook.inited"]) == 1.0
    assert float(weights["quantizer.vq.layers.0._codebook.embed"].std()) > 0.5
    if version in MANIFEST_SECTION:
        section = manifest[MANIFEST_SECTION[version]]
        assert set(vars(config.model)) == set(section["config_model"])
        assert config.model.version == section["config_model"]["version"]
        layout = [[n, list(t.shape), str(t.dtype)] for n, t in weights.items()]
        assert _layout_shape(layout) == _layout_shape(section["state_dict_keys"])
    else:
        assert "sv_emb.weight" in weights and weights["ge_to512.weight"].shape == (512, 64)


def test_our_loaders_and_models(random_files):
    model, cfg, ckpt = load_gpt(random_files["gpt"])
    assert cfg.d_model == 64 and ckpt.info.startswith("GPT-e")
    phones = torch.arange(10)
    with torch.no_grad():
        a = fwd.logits(model, fwd.embed_text(model, phones[None], torch.zeros(1, 1024, 10))[:, -1])
        b = fwd.logits(model, fwd.embed_text(model, (phones + 5)[None], torch.zeros(1, 1024, 10))[:, -1])
    assert (a - b).abs().max() > 1e-3
    for version in ("v2", "v2Pro", "v2ProPlus"):
        sovits, scfg, sck = load_sovits(random_files[version])
        assert sck.version == version
        gen = torch.Generator().manual_seed(1)
        ge = sovits.reference_ge([torch.rand(1, 1025, 50, generator=gen)],
                                 [torch.randn(1, 20480, generator=gen)] if scfg.is_pro else None)
        phones2 = torch.randint(0, 732, (1, 12), generator=gen)
        outs = []
        for _ in range(2):
            codes = torch.randint(0, 1024, (1, 20), generator=gen)
            audio, lengths = sovits.decode(codes, torch.tensor([20]), phones2, torch.tensor([12]), ge, 0.5, 1.0,
                                           noise=torch.zeros(1, scfg.inter_channels, 40))
            assert int(lengths[0]) == 40 * 640
            outs.append(audio)
        assert 0.005 < float(outs[0].std()) and float(outs[0].abs().max()) < 0.999
        assert (outs[0] - outs[1]).abs().mean() > 1e-3  # the waveform depends on the codes


def test_deterministic_per_seed(tmp_path):
    a = write_random_gpt(tmp_path / "a.ckpt", "tiny", seed=3)
    b = write_random_gpt(tmp_path / "b.ckpt", "tiny", seed=3)
    c = write_random_gpt(tmp_path / "c.ckpt", "tiny", seed=4)
    wa, wb, wc = (load_gpt(p)[2].weights for p in (a, b, c))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not torch.equal(wa["bert_proj.weight"], wc["bert_proj.weight"])


def test_full_size_configs():
    assert gpt_config_for("full")["model"]["n_layer"] == 24 and gpt_config_for("full")["model"]["head"] == 16
    v2 = sovits_config_for("v2", "full")["model"]
    assert (v2["upsample_initial_channel"], v2["gin_channels"], v2["filter_channels"]) == (512, 512, 768)
    plus = sovits_config_for("v2ProPlus", "full")["model"]
    assert (plus["upsample_initial_channel"], plus["gin_channels"], plus["upsample_kernel_sizes"][0]) == (768, 1024, 20)
    with pytest.raises(ValueError):
        sovits_config_for("v3", "tiny")
    assert pickle.HIGHEST_PROTOCOL >= 2
