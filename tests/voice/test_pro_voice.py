"""v2Pro/v2ProPlus voices end to end: full-size random files in the original's layout, `voice add`, `render`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from jobs.cli import cli
from renderer.errors import VoiceError
from renderer.models.eres2net import ERes2NetV2, ERes2NetV2Config, config_from_state_dict
from renderer.models.random_weights import SOVITS_VERSION_TAGS
from renderer.voice_random import RANDOM_REF_TEXT, random_reference_ge, synthetic_reference, write_random_assets
from tests.voice.sv_layout import FULL_SV_LAYOUT

SAMPLE_BOOK = Path(__file__).resolve().parents[2] / "samples" / "sample-book.epub"


def _stub_writer(calls: list, name: str):
    """Records a writer call and writes a placeholder: full-size GPT/SoVITS files take minutes."""
    def write(path, *args, **kwargs):
        calls.append((name, args, kwargs))
        if name in ("bert", "hubert"):
            Path(path).mkdir(parents=True, exist_ok=True)
            (Path(path) / "config.json").write_text("{}")
        else:  # a SoVITS stand-in carries its version tag, as the real writer's files do
            tag = SOVITS_VERSION_TAGS[args[0]] if name == "sovits" else b"PK"
            Path(path).write_bytes(tag + b"stand-in")
        return Path(path)
    return write


def test_full_size_pro_voice_writes_a_full_size_speaker_model(tmp_path, monkeypatch, pro_assets):
    """`make-random --size full --version v2ProPlus` gets the real ERes2NetV2 layout, also over an old cache."""
    import renderer.models.random_helpers as random_helpers
    import renderer.models.random_weights as random_weights

    calls: list = []
    monkeypatch.setattr(random_weights, "write_random_gpt", _stub_writer(calls, "gpt"))
    monkeypatch.setattr(random_weights, "write_random_sovits", _stub_writer(calls, "sovits"))
    monkeypatch.setattr(random_helpers, "write_random_bert_folder", _stub_writer(calls, "bert"))
    monkeypatch.setattr(random_helpers, "write_random_hubert_folder", _stub_writer(calls, "hubert"))
    folder = tmp_path / "full-v2ProPlus-seed0"
    folder.mkdir()
    # A cache from before: a tiny speaker model and an untagged SoVITS file beside the full-size ones.
    (folder / "sv.ckpt").write_bytes(pro_assets["sv"].read_bytes())
    (folder / "sovits.pth").write_bytes(b"PK\x03\x04 an old plain-PK file")
    paths = write_random_assets(folder, "full", "v2ProPlus", seed=0)

    assert ("sovits", ("v2ProPlus", "full", 0), {}) in calls  # the stale SoVITS file was rewritten
    state = torch.load(paths["sv"], map_location="cpu", mmap=True, weights_only=True)
    for name, shape in FULL_SV_LAYOUT.items():
        assert tuple(state[name].shape) == shape, name
    with torch.device("meta"):
        reference = ERes2NetV2(ERes2NetV2Config()).state_dict()
    # Every key and shape of the module tree: what the original's strict load_state_dict asks for.
    assert [(k, tuple(v.shape)) for k, v in state.items()] == [(k, tuple(v.shape)) for k, v in reference.items()]
    assert config_from_state_dict(state) == ERes2NetV2Config()
    assert all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point())

    calls.clear()
    assert write_random_assets(folder, "full", "v2ProPlus", seed=0)["sv"] == paths["sv"]
    assert not [c for c in calls if c[0] == "sovits"]  # current files are reused


@pytest.mark.slow
def test_pro_voice_add_then_render_a_book(pro_assets, tmp_path, monkeypatch):
    """`render voice add` with stand-in HuBERT/BERT/SV files, then `render BOOK` with it through export."""
    monkeypatch.delenv("RENDER_ENGINE", raising=False)
    runner = CliRunner()
    voices = tmp_path / "voices"
    ref = synthetic_reference(tmp_path / "ref.wav", seconds=3.2, seed=3)  # short: the SV model runs on every frame
    added = runner.invoke(cli, [
        "voice", "add", "pro narrator", "--gpt", str(pro_assets["gpt"]), "--sovits", str(pro_assets["sovits"]),
        "--ref", str(ref), "--ref-text", RANDOM_REF_TEXT, "--lang", "en",
        "--hubert", str(pro_assets["hubert"]), "--bert", str(pro_assets["bert"]), "--sv", str(pro_assets["sv"]),
        "--voices-dir", str(voices)])
    assert added.exit_code == 0, added.output
    assert "imported: voice 'pro narrator' (v2ProPlus)" in added.output and "warning" not in added.output
    shown = json.loads(runner.invoke(cli, ["voice", "show", "pro narrator", "--json", "--voices-dir",
                                           str(voices)]).output)
    assert shown["version"] == "v2ProPlus" and shown["gin"] == 64 and "sv" in shown["sources"]
    # What a benchmark of a Pro voice computes for its ge is exactly what `voice add` stored.
    from renderer.models.sovits import load_sovits
    from renderer.voice import VoiceStore

    model = load_sovits(pro_assets["sovits"])[0]
    bench_ge = random_reference_ge(model, pro_assets["sv"], seed=3, seconds=3.2)
    np.testing.assert_array_equal(bench_ge, VoiceStore(voices).get("pro narrator").ge)
    with pytest.raises(VoiceError, match="speaker-verification checkpoint"):
        random_reference_ge(model, None)

    out = tmp_path / "book out"
    rendered = runner.invoke(cli, [
        str(SAMPLE_BOOK), "--voice", "pro narrator", "--voices-dir", str(voices), "--out", str(out),
        "--chapters", "3", "--max-tokens", "16", "--batch-size", "8", "--precision", "fp32", "--format", "wav",
        "--preset", "none"],
        catch_exceptions=False)
    assert rendered.exit_code == 0, rendered.output
    assert "0 failed" in rendered.output
    report = json.loads((out / "report.json").read_text())
    assert report["coverage"]["complete"]
    exported = sorted(out.glob("*.wav"))
    assert len(exported) == 1
    audio, rate = sf.read(exported[0], dtype="float32")
    assert rate == 32000 and audio.size > 0 and np.isfinite(audio).all() and np.abs(audio).max() > 0


@pytest.mark.parametrize("version,name", [("v2", "sample"), ("v2ProPlus", "sample-v2ProPlus")])
def test_demo_voice_follows_the_version(tmp_path, monkeypatch, version, name):
    """`render demo` keeps the v2 sample voice unless asked; `make demo VERSION=...` passes the version on."""
    import shutil
    import subprocess
    from types import SimpleNamespace

    import click

    import renderer.voice_random as voice_random
    from jobs.cli import render_cmd

    made: list = []
    rendered: list = []

    def fake_make_random_voice(voice, **kwargs):
        made.append((voice, kwargs["version"], kwargs["size"]))
        return SimpleNamespace(changed=True, voice=SimpleNamespace(folder=tmp_path / voice))

    monkeypatch.setattr(voice_random, "make_random_voice", fake_make_random_voice)
    monkeypatch.setattr(render_cmd, "run", click.command("run")(lambda **kwargs: rendered.append(kwargs)))
    out = tmp_path / "out"
    out.mkdir()
    args = ["demo", "--out", str(out), "--voices-dir", str(tmp_path / "voices")]
    result = CliRunner().invoke(cli, args + (["--version", version] if version != "v2" else []))
    assert result.exit_code == 0, result.output
    assert made == [(name, version, "tiny")] and rendered[0]["voice_name"] == name

    if shutil.which("make"):
        root = Path(__file__).resolve().parents[2]
        extra = [f"VERSION={version}"] if version != "v2" else []
        dry = subprocess.run(["make", "-n", "-C", str(root), "demo", *extra], capture_output=True, text=True)
        assert f"render demo --out out/demo --version {version}" in dry.stdout
