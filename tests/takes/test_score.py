"""Scores and reasons of synthetic takes with known faults; the norm; the options."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from renderer.errors import OptionsError
from renderer.takes import REASONS, Take, TakeOptions, TakeScore, VoiceNorm, best_take, judge, score_take
from tests.takes import synthetic as syn


@pytest.fixture(scope="module")
def norm() -> VoiceNorm:
    return syn.norm()


def _score(take: Take, norm: VoiceNorm | None, **options: float) -> TakeScore:
    return score_take(take, norm, TakeOptions(**options))[1]  # type: ignore[arg-type]


def test_a_clean_take_scores_zero(norm: VoiceNorm) -> None:
    for seed in range(3):
        score = _score(syn.clean_take(40, seed), norm)
        assert score.score == 0.0 and not score.bad and score.codes == (), score.summary()


@pytest.mark.parametrize(("make", "expected"), [
    (syn.looping_take, {"loop", "repetition"}),
    (syn.capped_take, {"token_cap", "too_slow"}),
    (syn.short_take, {"too_fast", "speech_too_short"}),
    (syn.gap_take, {"long_pause"}),
])
def test_each_fault_makes_a_take_bad_for_its_own_reasons(make, expected, norm: VoiceNorm) -> None:  # type: ignore[no-untyped-def]
    score = _score(make(40), norm)
    assert score.bad
    assert expected <= set(score.codes), score.summary()
    assert set(score.codes) <= set(REASONS)


def test_silent_empty_and_clipped_audio(norm: VoiceNorm) -> None:
    clean = syn.clean_take(40)
    silent = dataclasses.replace(clean, audio=syn.quiet(4.0, dbfs=-60))
    assert _score(silent, norm).codes == ("near_silent",)
    empty = dataclasses.replace(clean, tokens=np.zeros(0, dtype=np.int64), audio=np.zeros(0, dtype=np.float32))
    assert _score(empty, norm).codes == ("empty",)
    clipped_audio = clean.audio.copy()
    clipped_audio[::50] = 1.0  # single hot samples: not clipping
    assert _score(dataclasses.replace(clean, audio=clipped_audio), norm).codes == ()
    clipped_audio = np.clip(clean.audio * 6.0, -1.0, 1.0)  # saturated: long runs at full scale
    clipped = _score(dataclasses.replace(clean, audio=clipped_audio), norm)
    assert clipped.codes == ("clipped",) and clipped.bad


def test_edge_silence_is_weak_alone_and_grows_with_its_length(norm: VoiceNorm) -> None:
    clean = syn.clean_take(40)
    longer = dataclasses.replace(clean, audio=np.concatenate([syn.quiet(1.4), clean.audio]))
    a = _score(longer, norm)
    assert a.codes == ("leading_silence",) and not a.bad
    much_longer = dataclasses.replace(clean, audio=np.concatenate([syn.quiet(3.0), clean.audio]))
    b = _score(much_longer, norm)
    assert b.codes == ("leading_silence",) and b.bad and b.score > a.score


def test_a_longer_loop_scores_worse_and_the_best_take_is_kept(norm: VoiceNorm) -> None:
    takes = [syn.looping_take(40, repeats=12), syn.looping_take(40, repeats=6), syn.clean_take(40, 2),
             syn.capped_take(40)]
    scores = [_score(t, norm) for t in takes]
    assert scores[0].score > scores[1].score > 0
    assert best_take(scores) == 2
    assert best_take([scores[1], scores[1]]) == 0  # the earliest of equals
    with pytest.raises(ValueError):
        best_take([])


def test_the_pause_limit_follows_the_boundary(norm: VoiceNorm) -> None:
    take = syn.gap_take(40, gap_s=1.2)
    assert "long_pause" in _score(take, norm).codes  # a sentence end allows 0.8 s
    assert _score(dataclasses.replace(take, pause_after_s=2.0), norm).codes == ()  # a scene break allows 3 s


def test_rates_are_not_judged_without_a_norm_or_for_very_short_chunks(norm: VoiceNorm) -> None:
    assert _score(syn.short_take(40), None).codes == ()
    assert "too_fast" not in _score(syn.short_take(6), norm).codes


def test_speech_recognition_adds_a_graded_reason(norm: VoiceNorm) -> None:
    _measures, clean = score_take(syn.clean_take(40), norm, wer=0.1)
    assert clean.codes == ()
    _measures, wrong = score_take(syn.clean_take(40), norm, wer=0.7)
    assert wrong.codes == ("asr_mismatch",) and wrong.bad and wrong.score == pytest.approx(2.0)


def test_stored_measures_are_judged_again_against_a_learned_norm() -> None:
    take = syn.clean_take(40)
    measures, _ = score_take(take, syn.norm())
    slow_voice = VoiceNorm(tokens_per_phone=6.0, speech_s_per_phone=0.25, weight=50, observations=50)
    again = judge(measures, slow_voice)
    assert {"too_fast", "speech_too_short"} <= set(again.codes)
    assert TakeScore.from_dict(again.to_dict()).codes == again.codes


def test_the_norm_starts_from_the_reference_and_learns() -> None:
    prior = VoiceNorm.from_reference(prompt_tokens=150, ref_phones=50)
    assert prior.tokens_per_phone == pytest.approx(3.0) and prior.observations == 0
    assert prior.tolerance == pytest.approx(prior.spread)
    learned = prior.learned([(2.0, 0.07)] * 200)
    assert learned.tokens_per_phone == pytest.approx(2.0, rel=0.05)
    assert learned.observations == 200 and 1.0 < learned.tolerance < 1.02
    assert prior.learned([(0.0, 0.1)]).observations == 0  # unusable rates are skipped
    with pytest.raises(ValueError):
        VoiceNorm.from_reference(0, 10)


def test_a_wrong_prior_widens_the_limits_until_chunks_are_known() -> None:
    clean = syn.clean_take(40)
    off_prior = VoiceNorm.from_reference(prompt_tokens=int(2.5 * 1.9 * 50), ref_phones=50)  # 1.9x too slow
    assert "too_fast" not in _score(clean, off_prior).codes  # tolerated at first ...
    settled = off_prior.learned([(2.5 * 1.9, off_prior.speech_s_per_phone)] * 200)
    assert "too_fast" in _score(clean, settled).codes  # ... not once the voice is known


def test_options_are_validated_in_one_place() -> None:
    with pytest.raises(OptionsError, match="slow_ratio"):
        TakeOptions(slow_ratio=0.9)
    with pytest.raises(OptionsError, match="unknown take option"):
        TakeOptions.from_dict({"slow_ration": 2.0})
    assert TakeOptions.from_dict(TakeOptions().to_dict()) == TakeOptions()
