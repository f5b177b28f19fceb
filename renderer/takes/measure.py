"""What a take's tokens and audio say about it: pure functions of numpy arrays, no model.

:func:`measure_take` gathers everything into a :class:`TakeMeasures`; the pieces
(:func:`token_loop`, :func:`stuck_run`, :func:`repeated_ngram_fraction`, :func:`silence_profile`,
:func:`clipped_fraction`) are public so that calibration and tests can look at one signal at a time.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from renderer.takes.options import TakeOptions

__all__ = [
    "Loop",
    "SilenceProfile",
    "Take",
    "TakeMeasures",
    "clipped_fraction",
    "measure_take",
    "repeated_ngram_fraction",
    "silence_profile",
    "stuck_run",
    "token_loop",
]

#: Level reported for digital silence (dBFS).
FLOOR_DBFS = -120.0
#: Fewest positions over which a loop's match rate is taken (short periods need several repeats).
LOOP_WINDOW = 12


@dataclass(frozen=True)
class Take:
    """One rendering of a chunk, as the engine returned it, plus what scoring needs of the chunk.

    tokens: int [n] generated semantic tokens; audio: float32 [samples] mono at ``sample_rate``;
    stopped_by: 'eos' | 'max_tokens'; n_phones: target phones of the chunk; pause_after_s: the pause
    export puts after this chunk's boundary (seconds); text / language: for speech recognition.
    """

    tokens: np.ndarray
    audio: np.ndarray
    sample_rate: int
    stopped_by: str
    n_phones: int
    pause_after_s: float = 0.4
    text: str = ""
    language: str = "en"


@dataclass(frozen=True)
class Loop:
    """The longest looping stretch: ``period`` tokens repeated over ``span`` tokens (0 = none)."""

    period: int = 0
    span: int = 0

    @property
    def repeats(self) -> float:
        return self.span / self.period if self.period else 0.0


@dataclass(frozen=True)
class SilenceProfile:
    """Seconds of leading, trailing and longest internal silence, and of speech (non-silent frames)."""

    leading_s: float
    trailing_s: float
    longest_pause_s: float
    speech_s: float
    active_dbfs: float


@dataclass(frozen=True)
class TakeMeasures:
    """Every figure scoring looks at (plain numbers: stored with the take, judged again later)."""

    stopped_by: str
    n_tokens: int
    n_phones: int
    audio_s: float
    speech_s: float
    loop_period: int
    loop_span: int
    stuck_tokens: int
    repeated_ngrams: float
    leading_silence_s: float
    trailing_silence_s: float
    longest_pause_s: float
    pause_limit_s: float
    active_dbfs: float
    clipped: float

    @property
    def tokens_per_phone(self) -> float | None:
        return self.n_tokens / self.n_phones if self.n_phones > 0 else None

    @property
    def speech_s_per_phone(self) -> float | None:
        return self.speech_s / self.n_phones if self.n_phones > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TakeMeasures:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def measure_take(take: Take, options: TakeOptions = TakeOptions()) -> TakeMeasures:
    """All measures of one take (see :class:`TakeMeasures`)."""
    tokens = np.asarray(take.tokens, dtype=np.int64).reshape(-1)
    audio = np.asarray(take.audio, dtype=np.float32).reshape(-1)
    loop = token_loop(tokens, options.loop_min_period, options.loop_max_period, options.loop_match_rate,
                      options.loop_min_tokens)
    silence = silence_profile(audio, take.sample_rate, options.frame_ms, options.silence_db)
    return TakeMeasures(
        stopped_by=take.stopped_by, n_tokens=int(tokens.size), n_phones=int(take.n_phones),
        audio_s=audio.size / float(take.sample_rate), speech_s=silence.speech_s,
        loop_period=loop.period, loop_span=loop.span, stuck_tokens=stuck_run(tokens),
        repeated_ngrams=repeated_ngram_fraction(tokens, options.ngram),
        leading_silence_s=silence.leading_s, trailing_silence_s=silence.trailing_s,
        longest_pause_s=silence.longest_pause_s,
        pause_limit_s=max(options.min_pause_limit_s, options.pause_factor * take.pause_after_s),
        active_dbfs=silence.active_dbfs,
        clipped=clipped_fraction(audio, options.clip_level, options.clip_run),
    )


# ------------------------------------------------------------------------------------------ tokens

def token_loop(tokens: np.ndarray, min_period: int, max_period: int, match_rate: float, min_span: int = 1) -> Loop:
    """The looping stretch of the most repeats (span >= ``min_span`` tokens; the longest of equals).

    For each period p, position i "matches" when ``tokens[i] == tokens[i - p]``; a stretch loops
    where the share of matches over a window of max(p, :data:`LOOP_WINDOW`) positions is at least
    ``match_rate``, which tolerates the mutated tokens of a sampled loop. The span counts the first
    period too (a phrase said 3 times spans 3 periods). Multiples of the true period also loop, with
    fewer repeats, so the most repeats names the true period. Stretches whose period holds fewer than
    3 distinct tokens are sustains or silences, left to :func:`stuck_run`.
    """
    tokens = np.asarray(tokens).reshape(-1)
    best = Loop()
    for period in range(min_period, min(max_period, tokens.size // 2) + 1):
        equal = (tokens[period:] == tokens[:-period]).astype(np.float64)
        window = max(period, LOOP_WINDOW)
        if equal.size < window:
            continue
        rates = np.convolve(equal, np.ones(window) / window, mode="valid")
        start, length = _longest_true_run(rates >= match_rate - 1e-9)
        if length == 0:
            continue
        # the k windows of the run cover k + w - 1 positions; windows only half inside the loop reach
        # the rate too, so trim the positions that do not match at both ends
        matched = np.flatnonzero(equal[start:start + length + window - 1])
        first = start + int(matched[0])
        span = int(matched[-1] - matched[0]) + 1 + period  # the first period is what is repeated
        if span < min_span or np.unique(tokens[first:first + period]).size < 3:
            continue
        candidate = Loop(period=period, span=int(span))
        if (candidate.repeats, candidate.span) > (best.repeats, best.span):
            best = candidate
    return best


def stuck_run(tokens: np.ndarray) -> int:
    """Longest stretch (tokens) drawn from at most two distinct tokens: a sustain, drone or dead pause."""
    values = np.asarray(tokens).reshape(-1).tolist()
    best = 0
    start = 0
    seen: dict[int, int] = {}  # token -> last index, for the tokens of the current stretch
    for i, token in enumerate(values):
        seen[token] = i
        if len(seen) > 2:
            oldest = min(seen, key=lambda t: seen[t])
            start = seen.pop(oldest) + 1
        best = max(best, i - start + 1)
    return best


def repeated_ngram_fraction(tokens: np.ndarray, n: int) -> float:
    """Share of n-grams (with >= 3 distinct tokens) that already occurred earlier, not overlapping."""
    values = np.asarray(tokens).reshape(-1).tolist()
    first_seen: dict[tuple[int, ...], int] = {}
    counted = repeated = 0
    for i in range(len(values) - n + 1):
        gram = tuple(values[i:i + n])
        if len(set(gram)) < 3:
            continue
        counted += 1
        earlier = first_seen.setdefault(gram, i)
        if earlier <= i - n:
            repeated += 1
    return repeated / counted if counted else 0.0


def _longest_true_run(mask: np.ndarray) -> tuple[int, int]:
    """(start, length) of the longest run of True values; (0, 0) when there is none."""
    if not mask.any():
        return 0, 0
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    starts, ends = edges[0::2], edges[1::2]
    i = int(np.argmax(ends - starts))
    return int(starts[i]), int(ends[i] - starts[i])


# ------------------------------------------------------------------------------------------- audio

def silence_profile(audio: np.ndarray, sample_rate: int, frame_ms: float, silence_db: float) -> SilenceProfile:
    """Where the take is silent, from frame RMS levels.

    Active level: the 95th percentile of frame RMS (robust to a few clicks). A frame is silent when
    it is ``silence_db`` below that; a loud stretch of a single frame inside silence (a click) does
    not end the silence. Silence before the first and after the last loud frame is leading and
    trailing; the longest silent stretch between them is the longest pause.
    """
    frame = max(1, int(round(sample_rate * frame_ms / 1000.0)))
    n_frames = audio.size // frame
    if n_frames == 0:
        return SilenceProfile(0.0, 0.0, 0.0, 0.0, FLOOR_DBFS)
    frames = audio[: n_frames * frame].astype(np.float64).reshape(n_frames, frame)
    rms = np.sqrt((frames * frames).mean(axis=1))
    active = float(np.percentile(rms, 95))
    active_dbfs = 20.0 * math.log10(active) if active > 1e-6 else FLOOR_DBFS
    if active <= 1e-6:
        seconds = n_frames * frame / sample_rate
        return SilenceProfile(seconds, 0.0, 0.0, 0.0, active_dbfs)
    loud = rms > active * 10.0 ** (silence_db / 20.0)
    loud = _drop_lone_frames(loud)
    frame_s = frame / float(sample_rate)
    where = np.flatnonzero(loud)
    if where.size == 0:
        return SilenceProfile(n_frames * frame_s, 0.0, 0.0, 0.0, active_dbfs)
    first, last = int(where[0]), int(where[-1])
    _, pause = _longest_true_run(~loud[first:last + 1])
    return SilenceProfile(leading_s=first * frame_s, trailing_s=(n_frames - 1 - last) * frame_s,
                          longest_pause_s=pause * frame_s, speech_s=float(loud.sum()) * frame_s,
                          active_dbfs=active_dbfs)


def _drop_lone_frames(loud: np.ndarray) -> np.ndarray:
    """A loud frame with silent frames on both sides is a click, not speech."""
    if loud.size < 3:
        return loud
    out = loud.copy()
    lone = loud[1:-1] & ~loud[:-2] & ~loud[2:]
    out[1:-1][lone] = False
    return out


def clipped_fraction(audio: np.ndarray, level: float, run: int) -> float:
    """Share of samples at or above ``level`` (absolute) in runs of at least ``run`` samples."""
    if audio.size == 0:
        return 0.0
    hot = np.abs(audio) >= level
    if not hot.any():
        return 0.0
    padded = np.concatenate([[False], hot, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    lengths = edges[1::2] - edges[0::2]
    return float(lengths[lengths >= run].sum()) / audio.size
