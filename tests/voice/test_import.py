"""Voice import: computed once, idempotent, refreshed on change, bad clips refused."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from renderer.errors import VoiceError
from renderer.models.hubert import UPSTREAM_PAD_SAMPLES, hubert_frame_count
from renderer.voice import SCHEMA_VERSION, Voice, import_voice, voices_dir
from renderer.voice_random import RANDOM_REF_TEXT, synthetic_reference


def _import(assets, store, name="narrator", **kwargs):
    args = dict(bert_dir=assets["bert"], hubert_dir=assets["hubert"], sv_path=assets.get("sv"), store=store)
    args.update(kwargs)
    ref = args.pop("ref", assets["ref"])
    text = args.pop("text", RANDOM_REF_TEXT)
    return import_voice(name, assets["gpt"], assets["sovits"], ref, text, "en", **args)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_import_writes_a_complete_voice(assets, imported):
    result = imported
    assert result.changed
    folder = result.voice.folder
    assert sorted(p.name for p in folder.iterdir()) == ["gpt.ckpt", "prompt.npz", "sovits.pth", "voice.json"]
    meta = json.loads((folder / "voice.json").read_text())
    assert meta["schema_version"] == SCHEMA_VERSION and meta["version"] == "v2" and meta["language"] == "en"
    assert meta["ref_text"] == RANDOM_REF_TEXT
    assert meta["sampling_defaults"]["top_k"] == 15 and meta["sampling_defaults"]["repetition_penalty"] == 1.35
    for key in ("gpt", "sovits", "ref_wav"):
        assert meta["sources"][key]["sha256"] == _sha(assets[{"ref_wav": "ref"}.get(key, key)])
    assert _sha(folder / "gpt.ckpt") == _sha(assets["gpt"]) and _sha(folder / "sovits.pth") == _sha(assets["sovits"])

    voice = Voice.load(folder)
    n16 = 5 * 16000
    assert voice.prompt_semantic.dtype == np.int64
    assert voice.prompt_semantic.size == hubert_frame_count(n16 + UPSTREAM_PAD_SAMPLES) // 2
    assert voice.prompt_semantic.min() >= 0 and voice.prompt_semantic.max() < 1024
    assert len(set(voice.prompt_semantic.tolist())) > 3
    assert voice.ref_bert.shape == (1024, voice.ref_phone_ids.size) and voice.ref_bert.dtype == np.float32
    assert voice.ge is not None and voice.ge.shape == (1, 512, 1) and np.isfinite(voice.ge).all()
    from renderer.text import TextFrontend

    expected = TextFrontend().phonemize(RANDOM_REF_TEXT, "en").phone_ids  # already ends with '.'
    assert voice.ref_phone_ids.tolist() == list(expected)
    assert voice.sampling_options().top_k == 15


def test_prompt_tokens_match_direct_computation(assets, imported):
    """The stored prompt equals HuBERT -> extract_latent computed here step by step."""
    from renderer.audio import load_audio
    from renderer.models.hubert import HubertEncoder, prompt_waveform
    from renderer.models.sovits import load_sovits

    voice = imported.voice
    sovits, _, _ = load_sovits(assets["sovits"])
    ssl = HubertEncoder(assets["hubert"]).features(prompt_waveform(load_audio(assets["ref"], 16000)))
    assert np.array_equal(sovits.extract_latent(ssl)[0, 0].numpy(), voice.prompt_semantic)


def test_reimport_is_a_noop(assets, seeded_store):
    store = seeded_store
    first = imported_voice = store.get("narrator")
    assert imported_voice.fingerprint
    stamp = (store.path("narrator") / "voice.json").stat().st_mtime_ns
    second = _import(assets, store)
    assert not second.changed and second.reason == "inputs unchanged"
    assert (store.path("narrator") / "voice.json").stat().st_mtime_ns == stamp
    assert np.array_equal(first.prompt_semantic, second.voice.prompt_semantic)
    forced = _import(assets, store, force=True)
    assert forced.changed and np.array_equal(forced.voice.prompt_semantic, first.prompt_semantic)
    assert np.allclose(forced.voice.ge, first.ge)


def test_changed_inputs_recompute(assets, seeded_store, tmp_path):
    store = seeded_store
    first = store.get("narrator")
    changed_text = _import(assets, store, text="A different reference sentence here.")
    assert changed_text.changed and changed_text.voice.ref_text == "A different reference sentence here."
    assert changed_text.voice.ref_phone_ids.tolist() != first.ref_phone_ids.tolist()
    other_clip = synthetic_reference(tmp_path / "other.wav", seconds=4.0, seed=99)
    changed_ref = _import(assets, store, ref=other_clip, text="A different reference sentence here.")
    assert changed_ref.changed
    assert changed_ref.voice.prompt_semantic.size < first.prompt_semantic.size
    assert changed_ref.voice.sources["ref_wav"]["sha256"] == _sha(other_clip)
    assert not np.allclose(changed_ref.voice.ge, first.ge)


@pytest.mark.parametrize("seconds", [2.0, 30.0])
def test_bad_clip_lengths_refused(assets, store, tmp_path, seconds):
    clip = synthetic_reference(tmp_path / f"clip {seconds:g}s.wav", seconds=seconds)
    with pytest.raises(VoiceError) as err:
        _import(assets, store, ref=clip)
    assert clip.name in str(err.value) and f"{seconds:.2f} s" in str(err.value)
    assert not store.path("narrator").exists()


def test_aux_refs_change_ge(assets, imported, store, tmp_path):
    base = imported.voice
    aux = synthetic_reference(tmp_path / "aux.wav", seconds=3.5, seed=5)
    with_aux = _import(assets, store, aux_refs=[aux]).voice
    assert with_aux.sources["aux_refs"][0]["sha256"] == _sha(aux)
    assert np.array_equal(with_aux.prompt_semantic, base.prompt_semantic)  # the prompt comes from the main clip
    assert not np.allclose(with_aux.ge, base.ge)


def test_explicit_phones_bypass_frontend(assets, store):
    ids = np.array([1, 2, 3, 4, 5])
    voice = _import(assets, store, ref_phone_ids=ids, bert_dir=None).voice
    assert voice.ref_phone_ids.tolist() == [1, 2, 3, 4, 5]
    assert voice.ref_bert.shape == (1024, 5) and not voice.ref_bert.any()


def test_pro_voice_uses_speaker_embedding(pro_assets, store):
    voice = _import(pro_assets, store, name="pro").voice
    assert voice.version == "v2ProPlus" and voice.ge.shape == (1, 64, 1)
    assert "sv" in voice.sources
    from renderer.models.sovits import load_sovits

    sovits, _, _ = load_sovits(pro_assets["sovits"])
    codes = torch.from_numpy(voice.prompt_semantic[None, :20])
    audio, lengths = sovits.decode(codes, torch.tensor([20]), torch.from_numpy(voice.ref_phone_ids[None]),
                                   torch.tensor([voice.ref_phone_ids.size]), torch.from_numpy(voice.ge))
    assert int(lengths[0]) == 20 * 1280 and float(audio.std()) > 1e-3
    with pytest.raises(VoiceError, match="speaker-verification"):
        _import(pro_assets, store, name="pro2", sv_path=None)


def test_missing_inputs_and_bad_names(assets, store, tmp_path):
    with pytest.raises(VoiceError, match="GPT weights file not found"):
        import_voice("x", tmp_path / "none.ckpt", assets["sovits"], assets["ref"], "hi", "en", store=store)
    with pytest.raises(VoiceError, match="hubert"):
        _import(assets, store, hubert_dir=None)
    for bad in ("../evil", "a/b", "", ".hidden"):
        with pytest.raises(VoiceError, match="invalid voice name"):
            _import(assets, store, name=bad)
    with pytest.raises(VoiceError, match="SoVITS"):  # GPT file given as SoVITS
        import_voice("x", assets["gpt"], assets["gpt"], assets["ref"], "hi", "en", hubert_dir=assets["hubert"],
                     store=store)


def test_voices_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("RENDER_VOICES_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert voices_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert voices_dir() == tmp_path / "env"
    monkeypatch.delenv("RENDER_VOICES_DIR")
    assert voices_dir() == tmp_path / "xdg" / "audiobook-renderer" / "voices"


def test_sampling_defaults_are_stored_and_validated(seeded_store, assets):
    from renderer.errors import OptionsError

    voice = _import(assets, seeded_store, sampling_defaults={"top_k": 5, "speed": 1.1}).voice
    assert voice.sampling_defaults["top_k"] == 5 and voice.sampling_defaults["speed"] == 1.1
    assert voice.sampling_options(temperature=0.8).temperature == 0.8
    with pytest.raises(OptionsError):
        _import(assets, seeded_store, sampling_defaults={"top_k": 0})
