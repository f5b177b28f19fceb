"""`render voice add` with hostile inputs (generated here): silent or overlong clips, damaged weights.

Each gets one clear line naming the file, what is wrong and what to do, exit code 2, and no voice folder.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from jobs.cli import main
from renderer.audio import check_reference_clip
from renderer.errors import VoiceError
from renderer.voice_random import RANDOM_REF_TEXT, synthetic_reference
from tests.models.test_safe_loader import damage_tensor_bytes


def _add(assets, voices, *, ref=None, sovits=None):
    return ["voice", "add", "narrator", "--gpt", str(assets["gpt"]), "--sovits", str(sovits or assets["sovits"]),
            "--ref", str(ref or assets["ref"]), "--ref-text", RANDOM_REF_TEXT, "--lang", "en",
            "--hubert", str(assets["hubert"]), "--bert", str(assets["bert"]), "--voices-dir", str(voices)]


def _run(args, capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(args)
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err


def _clip(path, samples: np.ndarray):
    sf.write(str(path), samples.astype(np.float32), 32000, subtype="FLOAT")
    return path


@pytest.mark.parametrize("kind,expected", [("zeros", "digital silence"), ("hum", "silent (peak -70 dBFS)"),
                                           ("30 s", "30.00 s long; it must be between 3 and 10 s")])
def test_unusable_reference_clips_are_refused(assets, tmp_path, capsys, kind, expected):
    if kind == "zeros":
        ref = _clip(tmp_path / "silent clip.wav", np.zeros(5 * 32000))
    elif kind == "hum":  # a 100 Hz hum at -70 dBFS: a recording with the microphone muted
        t = np.arange(5 * 32000) / 32000
        ref = _clip(tmp_path / "hum.wav", np.sin(2 * np.pi * 100 * t) * 10 ** (-70 / 20))
    else:
        ref = synthetic_reference(tmp_path / "long clip.wav", seconds=30.0)
    voices = tmp_path / "voices"
    code, out, err = _run(_add(assets, voices, ref=ref), capsys)
    assert code == 2, err
    assert str(ref) in err and expected in err and "Traceback" not in err + out
    assert not (voices / "narrator").exists()


def test_mostly_silent_clip_is_imported_with_a_warning(assets, tmp_path, capsys):
    speech = sf.read(str(assets["ref"]), dtype="float32")[0][: int(0.5 * 32000)]
    ref = _clip(tmp_path / "mostly silent.wav", np.concatenate([np.zeros(2 * 32000), speech, np.zeros(2 * 32000)]))
    code, out, err = _run(_add(assets, tmp_path / "voices", ref=ref), capsys)
    assert code == 0, err
    assert "imported: voice 'narrator'" in out
    assert f"warning: {ref}" in err and "s of sound in 4.5 s" in err
    assert float(err.split("holds only ")[1].split(" s")[0]) <= 0.5  # the pauses inside the speech count as silence


def test_reference_checks_pass_a_good_clip_and_flag_a_quiet_one(assets):
    wav16k = np.asarray(sf.read(str(assets["ref"]), dtype="float32")[0][::2])
    assert check_reference_clip(assets["ref"], wav16k) == []
    quiet = check_reference_clip(assets["ref"], wav16k * 10 ** (-45 / 20))
    assert len(quiet) == 1 and "very quiet" in quiet[0]
    with pytest.raises(VoiceError, match="auxiliary reference clip is digital silence"):
        check_reference_clip("aux.wav", np.zeros(16000), main=False)  # aux clips: no length limits, still heard


def test_damaged_weights_are_refused_at_voice_add(assets, tmp_path, capsys):
    damaged = tmp_path / "damaged.pth"
    entry = damage_tensor_bytes(assets["sovits"], damaged)
    voices = tmp_path / "voices"
    code, out, err = _run(_add(assets, voices, sovits=damaged), capsys)
    assert code == 2, err
    assert str(damaged) in err and entry in err and "tensor '" in err and "copy or download it again" in err
    assert "Traceback" not in err + out and not (voices / "narrator").exists()


def test_damaged_prompt_arrays_are_refused_at_load(seeded_store):
    folder = seeded_store.path("narrator")
    with np.load(folder / "prompt.npz") as npz:
        arrays = {key: np.array(npz[key]) for key in npz.files}
    arrays["ge"][0, 0, 0] = np.nan
    np.savez(folder / "prompt.npz", **arrays)
    with pytest.raises(VoiceError, match="prompt.npz: ge hold NaN or infinite values; import the voice again"):
        seeded_store.get("narrator")
