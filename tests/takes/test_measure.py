"""The measures behind take scores, one signal at a time, on inputs with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from renderer.takes.measure import (
    Take,
    TakeMeasures,
    clipped_fraction,
    measure_take,
    repeated_ngram_fraction,
    silence_profile,
    stuck_run,
    token_loop,
)
from tests.takes import synthetic as syn


def test_an_exact_loop_is_found_with_its_period_and_repeats() -> None:
    rng = np.random.default_rng(0)
    phrase = rng.permutation(1024)[:9]
    tokens = np.concatenate([rng.permutation(1024)[:30] + 0, np.tile(phrase, 5), rng.permutation(1024)[:30]])
    loop = token_loop(tokens, 3, 75, 0.5, 20)
    assert loop.period == 9
    assert 5.0 <= loop.repeats <= 5.5  # the context may continue the phrase by a token by chance


def test_a_sampled_loop_with_mutated_tokens_is_still_a_loop() -> None:
    rng = np.random.default_rng(1)
    body = np.tile(rng.permutation(1024)[:16], 6)
    flip = rng.random(body.size) < 0.15
    body[flip] = rng.integers(0, 1024, size=int(flip.sum()))
    loop = token_loop(np.concatenate([syn.distinct_tokens(20, 5), body]), 3, 75, 0.5, 20)
    assert loop.period == 16 and loop.repeats >= 4.5


def test_distinct_tokens_hold_no_loop_and_no_repeated_ngrams() -> None:
    tokens = syn.distinct_tokens(600, 3)
    assert token_loop(tokens, 3, 75, 0.5, 20).span == 0
    assert repeated_ngram_fraction(tokens, 4) == 0.0


def test_sustains_and_silences_are_left_to_the_stuck_run() -> None:
    tokens = np.concatenate([syn.distinct_tokens(20, 1), np.tile([7, 7, 8], 30), syn.distinct_tokens(20, 2)])
    assert token_loop(tokens, 3, 75, 0.5, 20).span == 0  # a period of two distinct tokens is not a loop
    assert stuck_run(tokens) == 90
    assert stuck_run(np.array([1, 2, 3, 4])) == 2
    assert stuck_run(np.array([], dtype=np.int64)) == 0


def test_repeated_ngrams_count_only_earlier_non_overlapping_occurrences() -> None:
    phrase = [10, 11, 12, 13]
    tokens = np.array(phrase + [20, 21, 22, 23] + phrase)  # 9 four-grams, the last one repeats the first
    assert repeated_ngram_fraction(tokens, 4) == pytest.approx(1 / 9)
    assert repeated_ngram_fraction(np.arange(3), 4) == 0.0


def test_silences_are_measured_to_the_frame() -> None:
    audio = np.concatenate([syn.quiet(0.5), syn.speech(1.0), syn.quiet(0.9), syn.speech(1.0), syn.quiet(1.3)])
    profile = silence_profile(audio, syn.RATE, 20.0, -40.0)
    assert profile.leading_s == pytest.approx(0.5, abs=0.021)
    assert profile.longest_pause_s == pytest.approx(0.9, abs=0.041)
    assert profile.trailing_s == pytest.approx(1.3, abs=0.021)
    assert profile.speech_s == pytest.approx(2.0, abs=0.041)
    assert -20 < profile.active_dbfs < -8


def test_a_click_does_not_break_a_silence() -> None:
    pause = syn.quiet(1.0)
    pause[16000:16300] = 0.5  # ~10 ms click in the middle of the pause
    audio = np.concatenate([syn.speech(0.5), pause, syn.speech(0.5)])
    assert silence_profile(audio, syn.RATE, 20.0, -40.0).longest_pause_s == pytest.approx(1.0, abs=0.041)


def test_digital_silence_and_empty_audio() -> None:
    silent = silence_profile(np.zeros(32000, dtype=np.float32), syn.RATE, 20.0, -40.0)
    assert silent.active_dbfs == -120.0 and silent.speech_s == 0.0 and silent.leading_s == pytest.approx(1.0)
    assert silence_profile(np.zeros(0, dtype=np.float32), syn.RATE, 20.0, -40.0).speech_s == 0.0


def test_clipping_counts_runs_at_full_scale_not_single_peaks() -> None:
    audio = np.zeros(10000, dtype=np.float32)
    audio[100] = 1.0  # a normalised peak
    assert clipped_fraction(audio, 0.99, 3) == 0.0
    audio[2000:2050] = -1.0
    assert clipped_fraction(audio, 0.99, 3) == pytest.approx(50 / 10000)
    assert clipped_fraction(np.zeros(0, dtype=np.float32), 0.99, 3) == 0.0


def test_measure_take_gathers_every_figure_and_round_trips() -> None:
    take = syn.gap_take(40, gap_s=2.0)
    m = measure_take(Take(**{**take.__dict__, "pause_after_s": 0.9}))
    assert m.n_phones == 40 and m.n_tokens == take.tokens.size and m.stopped_by == "eos"
    assert m.longest_pause_s == pytest.approx(2.0, abs=0.041)
    assert m.pause_limit_s == pytest.approx(1.35)  # 1.5 x the paragraph pause, above the 0.8 s floor
    assert m.tokens_per_phone == pytest.approx(take.tokens.size / 40)
    assert TakeMeasures.from_dict(m.to_dict()) == m
