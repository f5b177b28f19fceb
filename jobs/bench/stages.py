"""The stages of ``render bench``: full-size random voice, GPT, SoVITS and end-to-end runs."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from jobs.bench.measure import (
    ConvFlopCounter,
    Figure,
    RssPeak,
    figure,
    fixed_length_options,
    gpt_flops_per_token,
    gpt_prefill_flops,
)
from jobs.bench.voices import voice_shape
from renderer.engine.api import Engine
from renderer.engine.backend import VocodeItem
from renderer.engine.decode import BatchDecoder, PreparedRow

#: Target phones of a GPT-stage row (the reference phones and prompt tokens are the voice's: 60 and ≈ 150 for
#: the random bench voice, see jobs.bench.voices).
TARGET_PHONES = 60
#: Chapter benchmark: generated tokens per target phone (25 tokens/s over ~12.5 phones/s of speech).
TOKENS_PER_PHONE = 2

CHAPTER_TEXT = (
    "The rain had not stopped for three days, and the river was higher than anyone in the village could "
    "remember. Old Martha stood at her window and watched the water creep over the lower field. "
    "She had seen floods before, but never one that rose so quietly. By noon the road to town was gone, "
    "and the children had been sent up the hill to the schoolhouse with blankets and bread. "
    "Her grandson came back at four o'clock with news that the bridge was holding. "
    "Nobody believed him, and nobody wanted to be the first to walk across and find out. "
    "So they waited, as people always do, and told each other stories until the light was gone.\n\n"
    "In the morning the water had reached the steps of the church. "
    "The priest carried the old books up to the bell tower, one armful at a time, and would not let anyone help. "
    "Martha made soup for twenty people in a pot meant for six. "
    "Somebody found a radio that still worked, and for an hour they listened to a voice reading the names of "
    "towns further down the valley. "
    "Theirs was not among them. "
    "Whether that was good news or bad, nobody could say. "
    "At noon a boat came round the bend of the river, low in the water and rowed by two men in yellow coats. "
    "They brought bread, candles and a promise that the pumps were coming. "
    "Martha thanked them, gave them soup, and asked whether they had seen her sister's house on the far bank. "
    "They had not, and they did not say what that meant. "
    "By evening the rain had thinned to a drizzle, and the clouds in the west were edged with gold."
)


@dataclass
class GPTRun:
    prefill_positions_per_s: float
    decode_tokens_per_s: float
    #: tokens per second of the whole decode phase: the steps plus the host's per-token sampling, cache
    #: growth and compaction (what a worker gets; ``decode_tokens_per_s`` counts the steps alone)
    decode_wall_tokens_per_s: float
    prefill_gflops: float
    decode_gflops: float


def gpt_rows(voice: Any, batch: int, n_tokens: int, seed: int) -> list[PreparedRow]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(batch):
        target = rng.integers(1, 732, TARGET_PHONES)
        rows.append(PreparedRow(key=f"b{i}", phone_ids=np.concatenate([voice.ref_phone_ids, target]),
                                bert=np.zeros((1024, len(voice.ref_phone_ids) + TARGET_PHONES), np.float32), seed=i,
                                forced=rng.integers(0, 1024, n_tokens)))
    return rows


def gpt_run(engine: Engine, batch: int, n_tokens: int, dims: tuple[int, int]) -> GPTRun:
    """One wave of ``batch`` chunks decoding exactly ``n_tokens`` tokens each."""
    voice = engine.voice
    decoder = BatchDecoder(engine.backend, np.asarray(voice.prompt_semantic), fixed_length_options(n_tokens),
                           slots=batch)
    rows = gpt_rows(voice, batch, n_tokens, seed=batch)
    start = time.perf_counter()
    for _ in decoder.run(rows):
        pass
    wall = time.perf_counter() - start
    s = decoder.stats
    d, n_layer = dims
    positions = row_positions(voice)
    mean_keys = positions + n_tokens / 2
    decode_flops = s.row_steps * gpt_flops_per_token(d, n_layer, mean_keys)
    return GPTRun(prefill_positions_per_s=batch * positions / s.prefill_seconds,
                  decode_tokens_per_s=s.row_steps / s.step_seconds,
                  decode_wall_tokens_per_s=s.row_steps / max(wall - s.prefill_seconds, s.step_seconds),
                  prefill_gflops=gpt_prefill_flops(d, n_layer, positions, batch) / s.prefill_seconds / 1e9,
                  decode_gflops=decode_flops / s.step_seconds / 1e9)


def row_positions(voice: Any) -> int:
    """Prefill positions of a GPT-stage row: reference phones + target phones + prompt tokens."""
    ref_phones, prompt_tokens = voice_shape(voice)
    return ref_phones + TARGET_PHONES + prompt_tokens


def gpt_figures(engine: Engine, batches: list[int], n_tokens: int, runs: int) -> list[Figure]:
    gpt_dims = _gpt_dims(engine)
    out: list[Figure] = []
    for batch in batches:
        results: list[GPTRun] = []

        def decode_once(b: int = batch, sink: list[GPTRun] = results) -> float:
            sink.append(gpt_run(engine, b, n_tokens, gpt_dims))
            return sink[-1].decode_tokens_per_s

        gpt_run(engine, batch, min(n_tokens, 4), gpt_dims)  # warm-up (allocations, kernel selection)
        with RssPeak() as rss:
            dec = figure(f"gpt_decode_b{batch}", "tok/s", decode_once, runs=runs, warmup=0, batch=batch,
                         tokens_per_chunk=n_tokens)
        dec.extra["gflops"] = float(np.median([r.decode_gflops for r in results]))
        dec.extra["peak_rss_mb"] = rss.peak_mb
        out.append(Figure.from_values(f"gpt_prefill_b{batch}", "pos/s", [r.prefill_positions_per_s for r in results],
                                      {"batch": batch, "positions_per_row": row_positions(engine.voice),
                                       "gflops": float(np.median([r.prefill_gflops for r in results]))}))
        out.append(dec)
        out.append(Figure.from_values(f"gpt_decode_wall_b{batch}", "tok/s",
                                      [r.decode_wall_tokens_per_s for r in results],
                                      {"batch": batch, "tokens_per_chunk": n_tokens,
                                       "counts": "steps + per-token sampling + cache growth and compaction"}))
    return out


def _gpt_dims(engine: Engine) -> tuple[int, int]:
    sidecar = getattr(engine.backend, "sidecar", None)
    if sidecar is not None:
        return int(sidecar["gpt"]["d_model"]), int(sidecar["gpt"]["n_layer"])
    dims = engine.backend.gpt.config  # type: ignore[attr-defined]
    return dims.d_model, dims.n_layer


def _reference_flops(model: Any, run: Any) -> float:
    """FLOPs of one vocode call, counted by hooks on the reference modules: the fast CPU generator
    computes the same convolutions without calling those modules, so it is switched off while counting."""
    fast = getattr(model, "fast_dec", None)
    model.fast_dec = None
    counter = ConvFlopCounter(model)
    try:
        run()
        return counter.flops
    finally:
        counter.close()
        model.fast_dec = fast


def sovits_figures(engine: Engine, n_tokens: int, batch: int, runs: int) -> list[Figure]:
    """Real-time factor (wall / audio seconds) of SoVITS at batch 1 and ``batch``."""
    rng = np.random.default_rng(0)
    vocoder = getattr(engine.backend, "vocoder", None)
    model = getattr(vocoder, "model", None)
    out: list[Figure] = []
    for b in sorted({1, batch}):
        items = [VocodeItem(f"v{i}", rng.integers(0, 1024, n_tokens), rng.integers(1, 732, 50)) for i in range(b)]
        flops = _reference_flops(model, lambda its=items: engine.backend.vocode(
            its, speed=1.0, noise_scale=0.5, seeds=list(range(len(its))))) if model is not None else 0.0
        rates: list[float] = []

        def once(its: list[VocodeItem] = items, sink: list[float] = rates, n_flops: float = flops) -> float:
            start = time.perf_counter()
            audio = engine.backend.vocode(its, speed=1.0, noise_scale=0.5, seeds=list(range(len(its))))
            wall = time.perf_counter() - start
            if n_flops:
                sink.append(n_flops / wall / 1e9)
            return wall / (sum(len(a) for a in audio) / 32000)

        fig = figure(f"sovits_rtf_b{b}", "RTF", once, runs=runs, batch=b, audio_seconds_per_chunk=n_tokens / 25)
        if rates:
            fig.extra["gflops"] = float(np.median(rates))
        out.append(fig)
    return out


def chapter_figure(engine: Engine, quick: bool, runs: int) -> Figure:
    """Text -> chapter audio real-time factor (frontend + GPT + SoVITS), chunks decoded together.

    Random weights rarely emit EOS, so each chunk decodes a fixed number of random (teacher-forced)
    tokens proportional to its text, :data:`TOKENS_PER_PHONE` per phone (speech runs at ~12.5 phones and
    25 tokens per second): chunks of different lengths finish at different steps, as in a real book, so
    continuous batching, cache compaction and the vocoder overlap are exercised.
    """
    from renderer.engine.text_requests import requests_from_text
    from renderer.text import TextFrontend

    frontend = TextFrontend()
    text = CHAPTER_TEXT.split(". ")[0] + "." if quick else CHAPTER_TEXT
    options = fixed_length_options(24 if quick else 4 * TOKENS_PER_PHONE * TARGET_PHONES)
    audio_s: list[float] = []
    prepare = engine.prepare

    def prepare_forced(request: Any, opts: Any) -> PreparedRow:
        row = prepare(request, opts)
        n_tokens = 24 if quick else TOKENS_PER_PHONE * len(request.phone_ids)
        row.forced = np.random.default_rng(row.seed).integers(0, 1024, n_tokens)
        return row

    def once() -> float:
        start = time.perf_counter()
        requests = requests_from_text(frontend, "chapter", text, "en")
        total = sum(len(r.audio) for r in engine.synthesize(requests, options)) / 32000
        audio_s.append(total)
        return (time.perf_counter() - start) / total

    engine.prepare = prepare_forced  # type: ignore[method-assign,assignment]
    try:
        with RssPeak() as rss:
            fig = figure("chapter_rtf", "RTF", once, runs=runs, warmup=0 if quick else 1)
    finally:
        engine.prepare = prepare  # type: ignore[method-assign]
    fig.extra["peak_rss_mb"] = rss.peak_mb
    fig.extra["audio_seconds"] = float(np.median(audio_s))
    fig.extra["batch_size"] = engine.batch_size
    fig.extra["overlap"] = engine.overlaps
    return fig
