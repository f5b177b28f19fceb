"""``render say`` end to end on the tiny conformance voice (the voice lookup is replaced)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from click.testing import CliRunner

from jobs.cli import cli, say
from jobs.engines import RendererFactory
from jobs.planner import VoiceRef
from jobs.services import Services
from renderer.engine.api import VoiceParts


class OneVoice(RendererFactory):
    """The real engine and frontend, with a voice that is not in a voice store."""

    def __init__(self, voice: VoiceParts) -> None:
        self.voice = voice

    def load_voice(self, name: str, voices_dir: Path | None) -> VoiceRef:
        return VoiceRef(name=name, voice_id="conformance", voice=self.voice)


def test_say_writes_wav(tmp_path, vectors, gpt_path, sovits_path, voice_ge) -> None:
    voice = VoiceParts(gpt_path=gpt_path, sovits_path=sovits_path, prompt_semantic=vectors["gpt_prompt_semantic"],
                       ref_phone_ids=vectors["gpt_prompt_phones"], ref_bert=vectors["gpt_prompt_bert"], ge=voice_ge)
    voice.sampling_defaults = {"top_k": 5}  # type: ignore[attr-defined]
    services = Services(engines=OneVoice(voice))
    out = tmp_path / "hello.wav"
    args = ["say", "Hello there. This is a short preview of the voice, spoken twice over.", "--voice", "x",
            "-o", str(out), "--backend", "torch", "--threads", "1"]
    result = CliRunner().invoke(cli, args, obj=services)
    assert result.exit_code == 0, result.output
    audio, rate = sf.read(str(out), dtype="float32")
    assert rate == 32000 and len(audio) > 1280 * 11  # at least 11 tokens (EOS is blocked before that)
    assert np.abs(audio).max() > 0.0
    again = tmp_path / "again.wav"
    assert CliRunner().invoke(cli, [*args[:5], str(again), *args[6:]], obj=services).exit_code == 0
    np.testing.assert_array_equal(sf.read(str(again), dtype="float32")[0], audio)  # seeded: same audio


def test_join_chunks_inserts_pauses() -> None:
    joined = say.join_chunks([np.ones(10, np.float32), np.ones(5, np.float32)], 100, pause_seconds=0.1)
    assert joined.shape == (25,) and joined[10:20].sum() == 0
