"""Take scoring: is this rendering of a chunk good, or should it be rendered again?

From what the engine already returns (semantic tokens, audio, why decoding stopped) and the voice's
own speaking-rate norm, :func:`score_take` gives one score with named reasons (:data:`REASONS`);
thresholds live in :class:`TakeOptions`. Pure functions of arrays: no model, no files, no database.
An optional speech-recognition check (:mod:`renderer.takes.asr`) adds a word error rate.

    measures, score = score_take(Take(tokens, audio, 32000, "eos", n_phones=40), VoiceNorm.from_voice(voice))
    if score.bad: ...  # re-roll with the chunk's next seed
"""

from renderer.takes.asr import (
    AsrUnavailableError,
    Transcriber,
    load_transcriber,
    transcript_error_rate,
    word_error_rate,
)
from renderer.takes.measure import Take, TakeMeasures, measure_take
from renderer.takes.norm import VoiceNorm
from renderer.takes.options import TakeOptions
from renderer.takes.score import REASONS, Reason, TakeScore, best_take, judge, score_take

__all__ = [
    "REASONS",
    "AsrUnavailableError",
    "Reason",
    "Take",
    "TakeMeasures",
    "TakeOptions",
    "TakeScore",
    "Transcriber",
    "VoiceNorm",
    "best_take",
    "judge",
    "load_transcriber",
    "measure_take",
    "score_take",
    "transcript_error_rate",
    "word_error_rate",
]
