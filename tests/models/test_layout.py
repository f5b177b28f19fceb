"""Stored tensor layout (names, shapes, dtypes) and model state_dict layout versus the manifest."""

from __future__ import annotations

import pytest

from renderer.checkpoints import read_raw_checkpoint
from renderer.models.gpt import GPTConfig, Text2SemanticModel
from renderer.models.sovits import SoVITSConfig, SoVITSModel, fold_weight_norm

SECTIONS = ["gpt", "sovits_v2", "sovits_v2pp"]


@pytest.mark.parametrize("section", SECTIONS)
def test_stored_layout_matches_manifest(conformance, manifest, section):
    tag, raw = read_raw_checkpoint(conformance.file(section))
    layout = [(name, list(t.shape), str(t.dtype)) for name, t in raw["weight"].items()]
    expected = [(n, list(s), d) for n, s, d in manifest[section]["state_dict_keys"]]
    assert sorted(layout) == sorted(expected)
    if section != "gpt":
        assert tag.decode() == manifest[section]["first_two_bytes"]
        assert sorted(raw) == sorted(manifest[section]["top_level_keys"])


def test_gpt_state_dict_equals_stripped_names(manifest):
    cfg = GPTConfig.from_model_config(manifest["gpt"]["config_model"])
    model_layout = {n: list(t.shape) for n, t in Text2SemanticModel(cfg).state_dict().items()}
    expected = {n[len("model."):]: s for n, s, _ in manifest["gpt"]["state_dict_keys"]}
    assert model_layout == expected


@pytest.mark.parametrize("section,version", [("sovits_v2", "v2"), ("sovits_v2pp", "v2ProPlus")])
def test_sovits_state_dict_equals_folded_names(manifest, section, version):
    import torch

    cfg = SoVITSConfig.from_dict(manifest[section]["config_model"], version)
    model_layout = {n: list(t.shape) for n, t in SoVITSModel(cfg).state_dict().items()}
    stored = {n: torch.empty(s) for n, s, _ in manifest[section]["state_dict_keys"]}
    folded = {n: list(t.shape) for n, t in fold_weight_norm(stored).items()}
    assert model_layout == folded


def test_weight_norm_folding_formula():
    import torch

    g = torch.tensor([[[2.0]], [[3.0]]])
    v = torch.tensor([[[3.0, 4.0]], [[0.0, 5.0]]])
    w = fold_weight_norm({"c.weight_g": g, "c.weight_v": v, "c.bias": torch.zeros(2)})
    assert sorted(w) == ["c.bias", "c.weight"]
    assert torch.allclose(w["c.weight"], torch.tensor([[[1.2, 1.6]], [[0.0, 3.0]]]))


def test_loaded_versions(sovits_v2, sovits_v2pp):
    assert sovits_v2[2].version == "v2" and sovits_v2[2].tag == "PK"
    assert sovits_v2pp[2].version == "v2ProPlus" and sovits_v2pp[2].tag == "06"
    assert sovits_v2pp[1].gin_channels == 64 and sovits_v2pp[1].upsample_initial_channel == 96
