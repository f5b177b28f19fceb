"""Measurements behind the defaults of ``renderer.takes.options.TakeOptions`` (a script, not a test).

    .venv/bin/python tests/takes/measure_thresholds.py [--chunks 200] [--seeds 3]

Prints, for token sequences from upstream's sampler on the conformance GPT (random weights, the same
sampling code as upstream) at the default sampling and greedy without repetition penalty, and for
synthetic loops (a phrase repeated with mutated tokens), the loop, stuck-run and repeated-n-gram
figures, and how often each default threshold fires. Also the silence measures of synthetic audio
with known pauses, and the levels of the tiny random test voice.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from renderer.takes.measure import (  # noqa: E402
    repeated_ngram_fraction,
    silence_profile,
    stuck_run,
    token_loop,
)
from renderer.takes.options import TakeOptions  # noqa: E402

CONFORMANCE = Path("/work/shared/conformance/public")


def conformance_sequences(chunks: int, seeds: int, greedy: bool) -> list[np.ndarray]:
    """Generated tokens of ``chunks`` random-phone chunks per seed from the conformance GPT."""
    from renderer.backends import open_engine
    from renderer.engine.api import SynthesisRequest, VoiceParts
    from renderer.engine.options import SamplingOptions
    from renderer.tuning import EngineTuning

    v = dict(np.load(CONFORMANCE / "vectors.npz"))
    voice = VoiceParts.from_arrays(CONFORMANCE / "gpt_v2.ckpt", None, v["gpt_prompt_semantic"],
                                   v["gpt_prompt_phones"], v["gpt_prompt_bert"], None)
    engine = open_engine(voice, backend="torch", precision="fp32", tuning=EngineTuning(batch_size=32, measure=False))
    rng = np.random.default_rng(7)
    requests = [SynthesisRequest(key=f"c{i}", phone_ids=rng.integers(1, 732, size=int(rng.integers(8, 80))))
                for i in range(chunks)]
    out = []
    for seed in range(1 if greedy else seeds):
        options = (SamplingOptions(top_k=1, repetition_penalty=1.0, max_tokens=400, seed=seed) if greedy
                   else SamplingOptions(max_tokens=400, seed=seed))
        out += [r.tokens for r in engine.generate_tokens(requests, options)]
    return out


def synthetic_loop(rng: np.random.Generator, period: int, repeats: int, mutation: float) -> np.ndarray:
    """Random context, then a phrase of ``period`` tokens said ``repeats`` times with mutated tokens."""
    phrase = rng.integers(0, 1024, size=period)
    body = np.tile(phrase, repeats)
    flip = rng.random(body.size) < mutation
    body[flip] = rng.integers(0, 1024, size=int(flip.sum()))
    return np.concatenate([rng.integers(0, 1024, size=20), body, rng.integers(0, 1024, size=20)])


def _loop(tokens: np.ndarray, o: TakeOptions):  # type: ignore[no-untyped-def]
    return token_loop(tokens, o.loop_min_period, o.loop_max_period, o.loop_match_rate, o.loop_min_tokens)


def token_figures(name: str, sequences: list[np.ndarray], o: TakeOptions) -> None:
    loops = [_loop(s, o) for s in sequences]
    repeats = np.array([lp.repeats for lp in loops])
    spans = np.array([lp.span for lp in loops])
    ngrams = np.array([repeated_ngram_fraction(s, o.ngram) for s in sequences])
    stuck = np.array([stuck_run(s) for s in sequences])
    lengths = np.array([len(s) for s in sequences])
    loop_fired = (repeats >= o.loop_min_repeats) & (spans >= o.loop_min_tokens)
    print(f"\n{name}: {len(sequences)} sequences, length median {np.median(lengths):.0f} (max {lengths.max()})")
    print(f"  loop repeats  p50 {np.median(repeats):.2f} p99 {np.percentile(repeats, 99):.2f} max {repeats.max():.2f}"
          f"  -> loop fires on {loop_fired.mean():.1%}")
    print(f"  repeated {o.ngram}-grams p50 {np.median(ngrams):.3f} p99 {np.percentile(ngrams, 99):.3f} "
          f"max {ngrams.max():.3f} -> repetition fires on {(ngrams >= o.repeated_ngram_fraction).mean():.1%}")
    print(f"  stuck run p50 {np.median(stuck):.0f} max {stuck.max()} "
          f"-> stuck fires on {(stuck >= o.stuck_tokens).mean():.1%}")


def synthetic_figures(o: TakeOptions) -> None:
    rng = np.random.default_rng(3)
    print("\nsynthetic loops (20 random tokens, phrase x repeats with mutation, 20 random tokens), 50 each:")
    print(f"  {'period':>6} {'repeats':>7} {'mutation':>8}  loop  repetition  either  ngram-fraction p10")
    for period in (4, 8, 16, 32, 60):
        for repeats in (3, 5):
            for mutation in (0.0, 0.1, 0.2, 0.3):
                seqs = [synthetic_loop(rng, period, repeats, mutation) for _ in range(50)]
                loops = [_loop(s, o) for s in seqs]
                lf = np.array([lp.repeats >= o.loop_min_repeats and lp.span >= o.loop_min_tokens for lp in loops])
                ng = np.array([repeated_ngram_fraction(s, o.ngram) for s in seqs])
                rf = ng >= o.repeated_ngram_fraction
                print(f"  {period:>6} {repeats:>7} {mutation:>8.1f}  {lf.mean():4.0%}  {rf.mean():10.0%}  "
                      f"{(lf | rf).mean():6.0%}  {np.percentile(ng, 10):.2f}")


def audio_figures(o: TakeOptions) -> None:
    rate = 32000
    rng = np.random.default_rng(5)

    def burst(seconds: float) -> np.ndarray:
        t = np.arange(int(seconds * rate)) / rate
        return (0.3 * np.sin(2 * np.pi * 180 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))).astype(np.float32)

    def quiet(seconds: float, db: float) -> np.ndarray:
        return (10 ** (db / 20) * rng.standard_normal(int(seconds * rate))).astype(np.float32)

    print("\nsilence measures of synthetic audio (0.3 amplitude speech-like bursts, noise floor -70 dBFS):")
    for lead, pause, trail in ((0.2, 0.5, 0.3), (1.5, 0.5, 0.3), (0.2, 1.6, 0.3), (0.2, 0.3, 2.0)):
        audio = np.concatenate([quiet(lead, -70), burst(1.0), quiet(pause, -70), burst(1.0), quiet(trail, -70)])
        p = silence_profile(audio, rate, o.frame_ms, o.silence_db)
        print(f"  built lead {lead:.1f} pause {pause:.1f} trail {trail:.1f} -> measured lead {p.leading_s:.2f} "
              f"pause {p.longest_pause_s:.2f} trail {p.trailing_s:.2f}, active {p.active_dbfs:.1f} dBFS")


def random_voice_figures(o: TakeOptions) -> None:
    import tempfile

    from renderer.backends import open_engine
    from renderer.engine.api import SynthesisRequest
    from renderer.engine.options import SamplingOptions
    from renderer.tuning import EngineTuning
    from renderer.voice import VoiceStore
    from renderer.voice_random import make_random_voice

    with tempfile.TemporaryDirectory() as tmp:
        voice = make_random_voice("calibration", store=VoiceStore(Path(tmp) / "voices"), cache_dir=Path(tmp)).voice
        tuning = EngineTuning(batch_size=8, measure=False)
        engine = open_engine(voice, backend="torch", precision="fp32", tuning=tuning)
        rng = np.random.default_rng(1)
        requests = [SynthesisRequest(key=f"r{i}", phone_ids=rng.integers(1, 300, size=30)) for i in range(8)]
        results = list(engine.synthesize(requests, SamplingOptions(max_tokens=75)))
    per_phone = voice.prompt_semantic.size / voice.ref_phone_ids.size
    print(f"\ntiny random voice: prompt tokens per reference phone {per_phone:.2f}")
    for r in results:
        p = silence_profile(r.audio, r.sample_rate, o.frame_ms, o.silence_db)
        peak = float(np.abs(r.audio).max())
        print(f"  {r.key}: {r.stopped_by} {len(r.tokens)} tokens, active {p.active_dbfs:.1f} dBFS, peak {peak:.2f}, "
              f"speech {p.speech_s:.2f} of {r.audio.size / r.sample_rate:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--skip-voice", action="store_true", help="skip the tiny random voice's audio levels")
    args = parser.parse_args()
    options = TakeOptions()
    token_figures("conformance GPT, default sampling (top-k 15, repetition penalty 1.35)",
                  conformance_sequences(args.chunks, args.seeds, greedy=False), options)
    token_figures("conformance GPT, greedy, no repetition penalty",
                  conformance_sequences(args.chunks, 1, greedy=True), options)
    synthetic_figures(options)
    audio_figures(options)
    if not args.skip_voice:
        random_voice_figures(options)


if __name__ == "__main__":
    main()
