"""The speech-recognition check: error rates, and its code path driven by a stand-in transcriber."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from renderer.takes import AsrUnavailableError, Transcriber, load_transcriber, score_take, transcript_error_rate
from renderer.takes.asr import asr_units, word_error_rate
from tests.takes import synthetic as syn


class ScriptedTranscriber:
    """Hears what it is told to, and records what it was given."""

    def __init__(self, heard: str) -> None:
        self.heard = heard
        self.calls: list[tuple[int, int, str]] = []

    def transcribe(self, audio: np.ndarray, sample_rate: int, language: str) -> str:
        self.calls.append((audio.size, sample_rate, language))
        return self.heard


def test_units_ignore_case_and_punctuation_and_split_chinese_into_characters() -> None:
    assert asr_units("Well-known, isn't it?  YES.", "en") == ["well", "known", "isn", "t", "it", "yes"]
    assert asr_units("你好，世界。", "zh") == ["你", "好", "世", "界"]


@pytest.mark.parametrize(("reference", "hypothesis", "expected"), [
    ("the cat sat on the mat", "the cat sat on the mat", 0.0),
    ("the cat sat on the mat", "the cat sat on mat", 1 / 6),  # one deletion
    ("the cat sat on the mat", "the dog sat on the mat", 1 / 6),  # one substitution
    ("the cat sat", "the cat cat cat sat", 2 / 3),  # two insertions: a repetition loop
    ("", "", 0.0),
    ("", "noise", 1.0),
])
def test_word_error_rate(reference: str, hypothesis: str, expected: float) -> None:
    assert word_error_rate(reference.split(), hypothesis.split()) == pytest.approx(expected)


def test_a_stand_in_transcriber_drives_the_check_into_the_score() -> None:
    take = syn.clean_take(40, text="It was a dark and stormy night.")
    good, bad = ScriptedTranscriber("it was a dark and stormy night"), ScriptedTranscriber("it was a dark dark dark")
    assert isinstance(good, Transcriber)
    assert transcript_error_rate(good, take.audio, take.sample_rate, take.text, "en") == 0.0
    wer = transcript_error_rate(bad, take.audio, take.sample_rate, take.text, "en")
    assert wer == pytest.approx(3 / 7)  # and, stormy -> dark, dark; night deleted
    assert bad.calls == [(take.audio.size, syn.RATE, "en")]
    _measures, score = score_take(take, syn.norm(), wer=wer)
    assert score.codes == ("asr_mismatch",) and score.bad


def test_no_model_folder_means_no_check_and_nothing_is_downloaded(tmp_path: Path) -> None:
    assert load_transcriber(None) is None
    with pytest.raises(AsrUnavailableError, match="model.bin"):
        load_transcriber(tmp_path / "missing")


@pytest.mark.skipif(importlib.util.find_spec("faster_whisper") is not None,
                    reason="faster-whisper is installed here: the missing-package message cannot be shown")
def test_a_model_folder_without_the_package_says_what_to_install(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"\0")
    with pytest.raises(AsrUnavailableError, match="pip install faster-whisper"):
        load_transcriber(tmp_path)
