"""Optional speech-recognition check: what a local ASR model hears, against the chunk's text.

Nothing here downloads anything. :class:`FasterWhisperTranscriber` is used only when the user names
a model folder (``--asr-model DIR``, a faster-whisper / CTranslate2 conversion of Whisper) and the
``faster_whisper`` package is importable; otherwise :func:`load_transcriber` raises
:class:`AsrUnavailableError` saying what is missing. Any object with a ``transcribe`` method of the
:class:`Transcriber` shape can stand in (tests use one).
"""

from __future__ import annotations

import importlib.util
import re
import unicodedata
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from renderer.errors import RendererError

__all__ = [
    "ASR_SAMPLE_RATE",
    "AsrUnavailableError",
    "FasterWhisperTranscriber",
    "Transcriber",
    "asr_units",
    "load_transcriber",
    "transcript_error_rate",
    "word_error_rate",
]

#: Whisper models take 16 kHz mono float32.
ASR_SAMPLE_RATE = 16000
#: Languages written without spaces between words: scored per character (CER) instead of per word.
_CHARACTER_LANGUAGES = {"zh", "ja", "yue"}


class AsrUnavailableError(RendererError):
    """The speech-recognition check was asked for but cannot run (package or model missing)."""


@runtime_checkable
class Transcriber(Protocol):
    """Speech recognition: mono float32 audio at ``sample_rate`` Hz -> the words heard."""

    def transcribe(self, audio: np.ndarray, sample_rate: int, language: str) -> str: ...


class FasterWhisperTranscriber:
    """A faster-whisper model loaded from a local folder (``model.bin`` + tokenizer), never downloaded."""

    def __init__(self, model_dir: str | Path, *, device: str = "cpu", compute_type: str = "int8",
                 beam_size: int = 1) -> None:
        folder = Path(model_dir).expanduser()
        if not (folder / "model.bin").is_file():
            raise AsrUnavailableError(
                f"{folder}: not a faster-whisper model folder (no model.bin); convert a Whisper model with "
                "CTranslate2 or download one yourself, then pass its folder to --asr-model")
        if importlib.util.find_spec("faster_whisper") is None:
            raise AsrUnavailableError(
                "--asr-model needs the faster-whisper package: pip install faster-whisper (into this "
                "program's environment); the model itself is never downloaded")
        from faster_whisper import WhisperModel  # type: ignore[import-not-found]

        self.beam_size = beam_size
        self._model = WhisperModel(str(folder), device=device, compute_type=compute_type, local_files_only=True)

    def transcribe(self, audio: np.ndarray, sample_rate: int, language: str) -> str:
        samples = _to_asr_rate(np.asarray(audio, dtype=np.float32).reshape(-1), sample_rate)
        segments, _info = self._model.transcribe(samples, language=language.split("-")[0] or None,
                                                 beam_size=self.beam_size, vad_filter=False,
                                                 condition_on_previous_text=False)
        return " ".join(segment.text.strip() for segment in segments).strip()


def load_transcriber(model_dir: str | Path | None, **kwargs: Any) -> Transcriber | None:
    """The transcriber for ``--asr-model DIR``; None when no folder was given (the default)."""
    if model_dir is None:
        return None
    return FasterWhisperTranscriber(model_dir, **kwargs)


def _to_asr_rate(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    if sample_rate == ASR_SAMPLE_RATE:
        return audio
    import soxr

    return np.asarray(soxr.resample(audio, sample_rate, ASR_SAMPLE_RATE), dtype=np.float32)


# ------------------------------------------------------------------------------------ error rate

def asr_units(text: str, language: str) -> list[str]:
    """Words (or characters, for Chinese and Japanese) of ``text``, case- and punctuation-free.

    Punctuation and symbols become spaces (Unicode categories P* and S*), so "well-known" and
    "well known" compare equal, as a transcriber may write either.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    cleaned = "".join(" " if unicodedata.category(ch)[0] in "PS" else ch for ch in folded)
    if language.split("-")[0] in _CHARACTER_LANGUAGES:
        return [ch for ch in cleaned if not ch.isspace()]
    return re.findall(r"\S+", cleaned)


def word_error_rate(reference: list[str], hypothesis: list[str]) -> float:
    """(substitutions + deletions + insertions) / len(reference), by edit distance; can exceed 1.

    An empty reference gives 0.0 for an empty hypothesis and 1.0 otherwise.
    """
    if not reference:
        return 0.0 if not hypothesis else 1.0
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, start=1):
        current = [i] + [0] * len(hypothesis)
        for j, hyp_word in enumerate(hypothesis, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word))
        previous = current
    return previous[-1] / len(reference)


def transcript_error_rate(transcriber: Transcriber, audio: np.ndarray, sample_rate: int, text: str,
                          language: str) -> float:
    """WER (CER for zh/ja) of what ``transcriber`` hears in ``audio`` against ``text``."""
    heard = transcriber.transcribe(audio, sample_rate, language)
    return word_error_rate(asr_units(text, language), asr_units(heard, language))
