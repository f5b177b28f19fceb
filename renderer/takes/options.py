"""Thresholds of take scoring, validated in one place.

How the defaults were chosen (``python tests/takes/measure_thresholds.py`` reprints every figure
below; the tests in ``tests/takes/test_calibration.py`` re-check the separations on every run).
No trained GPT-SoVITS model is available offline, so the measurements combine four sources and the
docstring of each group says which:

- **token sequences from upstream's own sampler**: the conformance GPT (random weights) decoded
  with upstream's sampling, 200 chunks x 3 seeds at the defaults (top-k 15, repetition penalty
  1.35) and greedy without repetition penalty, where loops form;
- **synthetic loops**: a phrase of 4-60 tokens repeated 3 or 5 times between random tokens, each
  token mutated with probability 0-30 % (a sampled loop is rarely exact);
- **audio statistics** of synthetic signals with known pauses (the silence measures come out to the
  frame: built 0.2/1.6/0.3 s lead/pause/trail, measured 0.20/1.60/0.30 s) and of the tiny random
  test voice;
- **facts of the format and of speech**: 25 semantic tokens per second (1280 samples at 32 kHz),
  narrated English at 9-12 phones per second, i.e. 2.1-2.8 tokens per phone, sentence-to-sentence
  rate varying by about +-20 %.

A take's score is the sum of the weights of its reasons; ``bad_score`` (1.0) is where a take is
re-rolled. Strong signals (token cap, loop, empty or silent audio) weigh >= 1 alone; weak ones
(edge silence, mild clipping) need to be far past their limit, or to come together, to reach it.
Graded reasons weigh ``base * excess`` capped at :attr:`TakeOptions.max_reason_weight`, so that of
several bad takes the least bad one is kept.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from renderer.errors import OptionsError

__all__ = ["TakeOptions"]


@dataclass(frozen=True)
class TakeOptions:
    """Limits of a good take (see the module docstring for how they were measured).

    Decoding end
      token_cap_weight: weight of a take that stopped at the token cap instead of at end-of-speech.
      A trained GPT ends every normal sentence with EOS; running to the cap means it never found
      the end (babble, a loop, or a chunk far too long). Alone it makes a take bad (2.0 >= 1.0).

    Speaking rate against the voice's norm (:class:`renderer.takes.norm.VoiceNorm`)
      slow_ratio / fast_ratio: tokens per phone, and speech seconds per phone, above
      ``slow_ratio`` x the norm (repetition, babble, drawl) or below ``fast_ratio`` x the norm
      (skipped words). Natural sentences vary by about +-20 % around a narrator's mean rate; a
      skipped clause or a repeated phrase moves it by 1.5-2x. 1.8 / 0.55 leave ~3 standard
      deviations of natural variation on each side (log-symmetric: 1/0.55 = 1.82).
      min_rate_phones: chunks with fewer phones ("Chapter one.") are not rate-checked: their
      length is dominated by the fixed onset and release, not by the text.

    Token loops (the signature of a GPT repetition loop)
      loop_min_period / loop_max_period: periods searched, in tokens (0.12-3 s): a repeated
      syllable up to a repeated short phrase. Periods 1-2 are sustains and silences, which the
      ``stuck_tokens`` and silence checks cover.
      loop_match_rate: share of positions equal to the token one period earlier, over a window
      of max(period, 12) positions, for a stretch to count as looping (a sampled loop is not
      exact: with a fraction m of its tokens mutated the rate is about (1 - m)^2, 0.64 at m = 0.2).
      Measured with 0.5: upstream's default sampling on the conformance GPT: 0 of 600 sequences;
      greedy without repetition penalty (which visibly loops): 58 % of 200; synthetic loops of 5
      repeats: 100 % with 10 % mutation and 80-100 % with 20 % (3 repeats: 68-100 % and 46-96 %).
      0.6 lost a third of the 20 %-mutated loops, 0.7 two thirds, with no false alarm gained.
      loop_min_repeats / loop_min_tokens: a stretch counts as a loop when it covers at least this
      many periods and this many tokens (3 repeats, 0.8 s): "no, no, no" read from the text is
      shorter than 20 tokens per repeat only when spoken fast, and is then at most 3 repeats.
      stuck_tokens: a stretch this long (2 s) drawn from at most two distinct tokens is a GPT
      stuck on one sound or a long dead pause.
      ngram / repeated_ngram_fraction: share of token n-grams (with at least 3 distinct tokens)
      that already occurred earlier in the take. Upstream's default sampling on the conformance
      GPT: 0.0 in every one of 600 sequences (greedy: median 0.026, 99th percentile 0.10); exact
      synthetic loops 0.10-0.70, with 10 % mutation 0.0-0.35. 0.15 fires on 0.5 % of the greedy
      sequences and adds the long mutated loops that the lag match misses.

    Silence (frames of ``frame_ms``; silent = ``silence_db`` below the take's active level,
    the 95th percentile frame level: the same -40 dB that export trims chunks at)
      pause_factor / min_pause_limit_s: an internal silence may last ``pause_factor`` x the pause
      export puts after this chunk's boundary, and never less than ``min_pause_limit_s``; a
      longer one is a hole (the GPT paused or lost its place). Commas give 0.2-0.5 s, sentence
      ends inside a chunk 0.4-0.7 s.
      edge_silence_s: leading or trailing silence beyond this is flagged (weak: export trims it,
      but it is time the GPT spent not speaking, often before babble).

    Level
      clip_level / clip_run / clipped_fraction: samples at or above ``clip_level`` in runs of at
      least ``clip_run`` are clipped (a lone peak normalised to full scale is not); more than
      ``clipped_fraction`` of the samples clipped is flagged.
      quiet_dbfs: an active level (95th percentile of frame RMS) below this is near-silent audio;
      speech renders at -30..-10 dBFS (the tiny random test voice's noise at -6 dBFS, the
      synthetic speech of the tests at -14 dBFS).
      min_audio_s: shorter audio (or no tokens at all) is empty.

    Speech recognition (only with ``--asr-model``)
      max_wer: a word error rate of the transcript against the chunk text above this is flagged;
      graded. Whisper-class models transcribe clean read speech at 3-10 % WER and a synthetic
      narrator at 5-15 %; a skipped clause or a repeated phrase adds 20 % or more.
    """

    bad_score: float = 1.0
    max_reason_weight: float = 3.0
    token_cap_weight: float = 2.0
    slow_ratio: float = 1.8
    fast_ratio: float = 0.55
    min_rate_phones: int = 8
    loop_min_period: int = 3
    loop_max_period: int = 75
    loop_match_rate: float = 0.5
    loop_min_repeats: float = 3.0
    loop_min_tokens: int = 20
    stuck_tokens: int = 50
    ngram: int = 4
    repeated_ngram_fraction: float = 0.15
    frame_ms: float = 20.0
    silence_db: float = -40.0
    pause_factor: float = 1.5
    min_pause_limit_s: float = 0.8
    edge_silence_s: float = 1.0
    clip_level: float = 0.99
    clip_run: int = 3
    clipped_fraction: float = 0.001
    quiet_dbfs: float = -45.0
    min_audio_s: float = 0.1
    max_wer: float = 0.35

    def __post_init__(self) -> None:
        checks = [
            (self.bad_score > 0, "bad_score must be > 0"),
            (self.max_reason_weight >= self.bad_score, "max_reason_weight must be >= bad_score"),
            (self.token_cap_weight >= 0, "token_cap_weight must be >= 0"),
            (self.slow_ratio > 1.0, "slow_ratio must be > 1"),
            (0.0 < self.fast_ratio < 1.0, "fast_ratio must be in (0, 1)"),
            (self.min_rate_phones >= 1, "min_rate_phones must be >= 1"),
            (3 <= self.loop_min_period <= self.loop_max_period, "need 3 <= loop_min_period <= loop_max_period"),
            (0.3 <= self.loop_match_rate <= 1.0, "loop_match_rate must be in [0.3, 1]"),
            (self.loop_min_repeats >= 2.0, "loop_min_repeats must be >= 2"),
            (self.loop_min_tokens >= 1, "loop_min_tokens must be >= 1"),
            (self.stuck_tokens >= 2, "stuck_tokens must be >= 2"),
            (2 <= self.ngram <= 16, "ngram must be in [2, 16]"),
            (0.0 < self.repeated_ngram_fraction <= 1.0, "repeated_ngram_fraction must be in (0, 1]"),
            (5.0 <= self.frame_ms <= 100.0, "frame_ms must be in [5, 100]"),
            (-80.0 <= self.silence_db <= -10.0, "silence_db must be in [-80, -10]"),
            (self.pause_factor >= 1.0, "pause_factor must be >= 1"),
            (self.min_pause_limit_s > 0, "min_pause_limit_s must be > 0"),
            (self.edge_silence_s > 0, "edge_silence_s must be > 0"),
            (0.5 <= self.clip_level <= 1.0, "clip_level must be in [0.5, 1]"),
            (self.clip_run >= 1, "clip_run must be >= 1"),
            (0.0 < self.clipped_fraction < 1.0, "clipped_fraction must be in (0, 1)"),
            (-120.0 <= self.quiet_dbfs <= 0.0, "quiet_dbfs must be in [-120, 0]"),
            (self.min_audio_s >= 0, "min_audio_s must be >= 0"),
            (0.0 < self.max_wer <= 2.0, "max_wer must be in (0, 2]"),
        ]
        for ok, message in checks:
            if not ok:
                raise OptionsError(f"take options: {message}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TakeOptions:
        """Build from a mapping; unknown keys are refused so typos do not pass silently."""
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise OptionsError(f"unknown take option(s): {', '.join(unknown)}")
        return cls(**data)
