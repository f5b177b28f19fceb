"""One score per take, with named reasons: 0 is clean, ``TakeOptions.bad_score`` or more is re-rolled.

:func:`judge` turns :class:`TakeMeasures` (stored with each take) into a :class:`TakeScore` against a
:class:`VoiceNorm`, so a take can be judged again when the norm has learned more; :func:`score_take`
measures and judges in one go; :func:`best_take` picks the take to keep.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from renderer.takes.measure import Take, TakeMeasures, measure_take
from renderer.takes.norm import VoiceNorm
from renderer.takes.options import TakeOptions

__all__ = ["REASONS", "Reason", "TakeScore", "best_take", "judge", "score_take"]

#: Every reason code, with what it means for a listener.
REASONS = {
    "empty": "no audio, or no tokens",
    "near_silent": "the audio is (almost) silent",
    "token_cap": "never ended: decoding ran to the token cap",
    "loop": "the same stretch of tokens repeats (a GPT repetition loop)",
    "stuck": "stuck on one or two tokens for seconds (drone or dead air)",
    "repetition": "many token sequences repeat (repeated words or babble)",
    "too_slow": "far more tokens per phone than this voice uses (repetition, babble or drawl)",
    "too_fast": "far fewer tokens per phone than this voice uses (skipped words)",
    "speech_too_long": "far more speech per phone than this voice (repetition or babble)",
    "speech_too_short": "far less speech per phone than this voice (skipped words)",
    "long_pause": "a silence inside the chunk longer than the pause after it",
    "leading_silence": "long silence before the speech",
    "trailing_silence": "long silence after the speech",
    "clipped": "clipped samples (distortion)",
    "asr_mismatch": "speech recognition heard other words than the text",
}


@dataclass(frozen=True)
class Reason:
    """Why a take lost points: a code from :data:`REASONS`, its weight and the figures behind it."""

    code: str
    weight: float
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "weight": round(self.weight, 3), "detail": self.detail}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reason:
        return cls(code=str(data["code"]), weight=float(data["weight"]), detail=str(data.get("detail", "")))


@dataclass(frozen=True)
class TakeScore:
    """Sum of the reasons' weights (0 = clean) and whether that reaches the re-roll threshold."""

    score: float
    bad: bool
    reasons: tuple[Reason, ...]

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(r.code for r in self.reasons)

    def summary(self) -> str:
        """One line: "score 2.40: token_cap, loop"."""
        names = ", ".join(self.codes) or "clean"
        return f"score {self.score:.2f}: {names}"

    def to_dict(self) -> dict[str, Any]:
        return {"score": round(self.score, 3), "bad": self.bad, "reasons": [r.to_dict() for r in self.reasons]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TakeScore:
        return cls(score=float(data["score"]), bad=bool(data["bad"]),
                   reasons=tuple(Reason.from_dict(r) for r in data.get("reasons", [])))


def score_take(take: Take, norm: VoiceNorm | None, options: TakeOptions = TakeOptions(),
               wer: float | None = None) -> tuple[TakeMeasures, TakeScore]:
    """Measure and judge one take (``wer``: word error rate from speech recognition, if any)."""
    measures = measure_take(take, options)
    return measures, judge(measures, norm, options, wer)


def judge(measures: TakeMeasures, norm: VoiceNorm | None, options: TakeOptions = TakeOptions(),
          wer: float | None = None) -> TakeScore:
    """Score stored measures against a norm (None: no rate checks, e.g. a voice without a prior)."""
    if measures.n_tokens == 0 or measures.audio_s < options.min_audio_s:
        reasons = [Reason("empty", options.max_reason_weight,
                          f"{measures.n_tokens} tokens, {measures.audio_s:.2f} s of audio")]
    elif measures.active_dbfs < options.quiet_dbfs:
        reasons = [Reason("near_silent", options.max_reason_weight,
                          f"active level {measures.active_dbfs:.1f} dBFS < {options.quiet_dbfs:g} dBFS")]
    else:
        reasons = [*_decoding(measures, options), *_tokens(measures, options),
                   *_rates(measures, norm, options), *_silences(measures, options), *_level(measures, options)]
        if wer is not None and wer > options.max_wer:
            reasons.append(_graded("asr_mismatch", wer / options.max_wer, options,
                                   f"word error rate {wer:.0%} > {options.max_wer:.0%}"))
    total = sum(r.weight for r in reasons)
    return TakeScore(score=total, bad=total >= options.bad_score - 1e-9, reasons=tuple(reasons))


def best_take(scores: Sequence[TakeScore]) -> int:
    """Index of the take to keep: the lowest score; the earliest of equals (deterministic)."""
    if not scores:
        raise ValueError("no takes to choose from")
    return min(range(len(scores)), key=lambda i: (round(scores[i].score, 6), i))


# ------------------------------------------------------------------------------------------ checks

def _graded(code: str, excess: float, options: TakeOptions, detail: str, base: float = 1.0) -> Reason:
    """A reason whose weight grows with how far past its limit a figure is (excess >= 1 at the limit)."""
    return Reason(code, min(options.max_reason_weight, base * excess), detail)


def _decoding(m: TakeMeasures, options: TakeOptions) -> list[Reason]:
    if m.stopped_by == "max_tokens" and options.token_cap_weight > 0:
        return [Reason("token_cap", options.token_cap_weight, f"stopped at the cap after {m.n_tokens} tokens")]
    return []


def _tokens(m: TakeMeasures, options: TakeOptions) -> list[Reason]:
    reasons = []
    repeats = m.loop_span / m.loop_period if m.loop_period else 0.0
    if m.loop_period and repeats >= options.loop_min_repeats and m.loop_span >= options.loop_min_tokens:
        reasons.append(_graded("loop", repeats / options.loop_min_repeats, options,
                               f"{m.loop_period} tokens repeated {repeats:.1f} times ({m.loop_span} tokens)"))
    if m.stuck_tokens >= options.stuck_tokens:
        reasons.append(_graded("stuck", m.stuck_tokens / options.stuck_tokens, options,
                               f"{m.stuck_tokens} tokens from at most two distinct ones"))
    if m.repeated_ngrams >= options.repeated_ngram_fraction:
        reasons.append(_graded("repetition", m.repeated_ngrams / options.repeated_ngram_fraction, options,
                               f"{m.repeated_ngrams:.0%} of token {options.ngram}-grams repeat earlier ones"))
    return reasons


def _rates(m: TakeMeasures, norm: VoiceNorm | None, options: TakeOptions) -> list[Reason]:
    if norm is None or m.n_phones < options.min_rate_phones:
        return []
    reasons = []
    checks = (("too_slow", "too_fast", m.tokens_per_phone, norm.tokens_per_phone, "tokens"),
              ("speech_too_long", "speech_too_short", m.speech_s_per_phone, norm.speech_s_per_phone, "s of speech"))
    for slow_code, fast_code, value, expected, unit in checks:
        if value is None or value <= 0:
            continue
        ratio = value / expected
        slow = options.slow_ratio * norm.tolerance
        fast = options.fast_ratio / norm.tolerance
        detail = f"{value:.3g} {unit} per phone, {ratio:.2f}x the voice's {expected:.3g}"
        if ratio > slow:
            reasons.append(_graded(slow_code, math.log(ratio) / math.log(slow), options, detail))
        elif ratio < fast:
            reasons.append(_graded(fast_code, math.log(ratio) / math.log(fast), options, detail))
    return reasons


def _silences(m: TakeMeasures, options: TakeOptions) -> list[Reason]:
    reasons = []
    if m.longest_pause_s > m.pause_limit_s:
        reasons.append(_graded("long_pause", m.longest_pause_s / m.pause_limit_s, options,
                               f"{m.longest_pause_s:.2f} s silent inside (limit {m.pause_limit_s:.2f} s)"))
    for code, seconds in (("leading_silence", m.leading_silence_s), ("trailing_silence", m.trailing_silence_s)):
        if seconds > options.edge_silence_s:
            reasons.append(_graded(code, seconds / options.edge_silence_s, options,
                                   f"{seconds:.2f} s (limit {options.edge_silence_s:.2f} s)", base=0.5))
    return reasons


def _level(m: TakeMeasures, options: TakeOptions) -> list[Reason]:
    if m.clipped > options.clipped_fraction:
        return [_graded("clipped", m.clipped / options.clipped_fraction, options,
                        f"{m.clipped:.2%} of samples clipped", base=0.5)]
    return []
