"""Public synthesis API: ``Engine(voice, backend, tuning).synthesize(requests, options)`` -> iterator of results.

Build one with :func:`renderer.backends.open_engine` (voice + backend name + device + precision +
:class:`~renderer.tuning.EngineTuning`); the engine itself depends only on the backend protocol
(:class:`renderer.engine.backend.Backend`) and never imports ``renderer.backends``.

Results come out in completion order (continuous batching); each carries its request's ``key``. A
chunk's tokens and audio depend only on (voice, options, key, phones, bert), never on its neighbours.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from renderer.engine.backend import Backend, VocodeItem
from renderer.engine.batching import auto_batch_size
from renderer.engine.decode import BatchDecoder, DecodeStats, PreparedRow, RowResult
from renderer.engine.options import SamplingOptions, row_seed
from renderer.engine.overlap import BackgroundStage, shared_budget
from renderer.errors import OptionsError
from renderer.memory import release_free_memory
from renderer.tuning import EngineTuning, apply_process_settings

#: Output sample rate of every supported SoVITS model (Hz).
SAMPLE_RATE = 32000
#: Batch size of a backend whose cache size the engine cannot see.
DEFAULT_BATCH_SIZE = 8
#: Width of the BERT features the GPT expects per phone.
BERT_DIM = 1024

__all__ = ["Engine", "SynthesisRequest", "SynthesisResult", "VoiceParts", "SAMPLE_RATE"]


@dataclass(frozen=True)
class SynthesisRequest:
    """One chunk: ``phone_ids`` int64 [N] (v2 symbols), ``bert`` float32 [1024, N] or None (zeros)."""

    key: str
    phone_ids: np.ndarray
    bert: np.ndarray | None = None
    language: str = "en"


@dataclass
class SynthesisResult:
    """Generated semantic tokens, float32 mono audio at ``sample_rate``, why decoding stopped
    ('eos' | 'max_tokens') and per-chunk timings in seconds (prefill, decode, vocode; amortised
    over the batch)."""

    key: str
    tokens: np.ndarray
    audio: np.ndarray
    sample_rate: int
    stopped_by: str
    timings: dict[str, float] = field(default_factory=dict)


class VoiceLike(Protocol):
    """What the engine reads from a voice (``renderer.voice.Voice`` satisfies it)."""

    name: str
    gpt_path: Any
    sovits_path: Any
    prompt_semantic: np.ndarray
    ref_phone_ids: np.ndarray
    ref_bert: np.ndarray
    ge: np.ndarray | None


@dataclass
class VoiceParts:
    """A voice given as explicit parts (no voice folder needed)."""

    gpt_path: Path
    sovits_path: Path | None
    prompt_semantic: np.ndarray
    ref_phone_ids: np.ndarray
    ref_bert: np.ndarray
    ge: np.ndarray | None
    name: str = "voice"
    folder: Path | None = None

    @classmethod
    def from_arrays(cls, gpt_path: str | Path, sovits_path: str | Path | None, prompt_semantic: np.ndarray,
                    ref_phone_ids: np.ndarray, ref_bert: np.ndarray | None, ge: np.ndarray | None,
                    name: str = "voice") -> VoiceParts:
        """Parts from weight files + prompt arrays (``ref_bert`` None = zeros), converted to the engine's dtypes."""
        ref_phone_ids = np.asarray(ref_phone_ids, dtype=np.int64).reshape(-1)
        if ref_bert is None:
            ref_bert = np.zeros((BERT_DIM, len(ref_phone_ids)), dtype=np.float32)
        return cls(gpt_path=Path(gpt_path), sovits_path=None if sovits_path is None else Path(sovits_path),
                   prompt_semantic=np.asarray(prompt_semantic, dtype=np.int64).reshape(-1),
                   ref_phone_ids=ref_phone_ids, ref_bert=np.asarray(ref_bert, dtype=np.float32),
                   ge=None if ge is None else np.asarray(ge, dtype=np.float32), name=name)


class Engine:
    """Batched text-to-speech for one voice on one backend (see :func:`renderer.backends.open_engine`).

    ``tuning`` (None = :meth:`EngineTuning.resolve`: defaults and the environment) sets the batch size,
    threads and pipeline overlap here, and the process-wide settings when the engine is built; the backend
    was built with the same tuning.
    """

    def __init__(self, voice: VoiceLike, backend: Backend, tuning: EngineTuning | None = None) -> None:
        self.tuning = tuning if tuning is not None else EngineTuning.resolve()
        apply_process_settings(self.tuning)
        self.voice = voice
        self.backend: Backend = backend
        #: GPT rows decoded at once; automatic: as many as the KV-cache budget allows (renderer.engine.batching)
        self.batch_size = self.tuning.batch_size or self.automatic_batch_size()
        self.last_stats = DecodeStats()
        #: vocoder runs on a background thread while the GPT decodes (see ``overlaps``)
        self.overlap = self.tuning.overlap

    def automatic_batch_size(self) -> int:
        """As many rows as the KV-cache memory budget allows (:mod:`renderer.engine.batching`)."""
        cache = getattr(self.backend, "cache", None)
        if cache is None:
            return DEFAULT_BATCH_SIZE
        return auto_batch_size(cache.n_layer, cache.n_head * cache.head_dim, cache.dtype, self.backend.device,
                               self.tuning.kv_budget_mb)

    # ------------------------------------------------------------------ requests -> rows
    def prepare(self, request: SynthesisRequest, options: SamplingOptions) -> PreparedRow:
        """Reference phones ++ target phones (BERT likewise) and the chunk's seed."""
        phones = np.asarray(request.phone_ids, dtype=np.int64).reshape(-1)
        if phones.size == 0:
            raise OptionsError(f"chunk {request.key!r} has no phones")
        bert = request.bert
        if bert is None:
            bert = np.zeros((BERT_DIM, len(phones)), dtype=np.float32)
        bert = np.asarray(bert, dtype=np.float32)
        if bert.shape != (BERT_DIM, len(phones)):
            raise OptionsError(f"chunk {request.key!r}: bert must be [{BERT_DIM}, {len(phones)}], got {bert.shape}")
        ref_ids = np.asarray(self.voice.ref_phone_ids, dtype=np.int64).reshape(-1)
        ref_bert = np.asarray(self.voice.ref_bert, dtype=np.float32).reshape(BERT_DIM, len(ref_ids))
        return PreparedRow(key=request.key, phone_ids=np.concatenate([ref_ids, phones]),
                           bert=np.concatenate([ref_bert, bert], axis=1), seed=row_seed(options.seed, request.key))

    # ------------------------------------------------------------------ main entry points
    def generate_tokens(self, requests: Iterable[SynthesisRequest], options: SamplingOptions,
                        record: bool = False) -> Generator[RowResult, None, None]:
        """GPT only: semantic tokens per chunk (completion order)."""
        rows = [self.prepare(r, options) for r in requests]
        decoder = BatchDecoder(self.backend, np.asarray(self.voice.prompt_semantic), options,
                               slots=self.batch_size, record=record)
        self.last_stats = decoder.stats
        # heap pages the vocoder left behind go back before the cache is allocated, and the cache itself
        # after the run: it is not needed while the vocoder works (1.6 GB for 32 fp32 rows)
        release_free_memory()
        try:
            yield from decoder.run(rows)
        finally:  # also when the consumer stops early or a step raises (MemoryError): never keep the cache
            self.backend.release()
            release_free_memory()

    def synthesize(self, requests: Iterable[SynthesisRequest], options: SamplingOptions) -> Iterator[SynthesisResult]:
        """Tokens and audio per chunk, in completion order.

        With pipeline overlap (:attr:`overlaps`) the vocoder renders finished chunks on a background
        thread while the GPT decodes the rest, the two sharing the torch threads (see
        :mod:`renderer.engine.overlap`); otherwise SoVITS runs between decode steps on groups of
        finished chunks. Either way a chunk's audio is the same: it depends only on the chunk.
        """
        listed = list(requests)
        reqs = {r.key: r for r in listed}
        if len(reqs) != len(listed):
            raise OptionsError("synthesis requests must have distinct keys")
        if not reqs:
            return
        if self.overlaps:
            yield from self._synthesize_overlapped(reqs, options)
            return
        pending: list[RowResult] = []
        tokens = self.generate_tokens(reqs.values(), options)
        try:
            for result in tokens:
                pending.append(result)
                if len(pending) >= self.batch_size:
                    yield from self._vocode(pending, reqs, options)
                    pending = []
        finally:
            tokens.close()  # releases the backend's cache now, not whenever the generator is collected
        if pending:
            yield from self._vocode(pending, reqs, options)

    @property
    def overlaps(self) -> bool:
        """Whether ``synthesize`` overlaps vocoding with decoding: as :attr:`overlap` says (from
        ``EngineTuning.overlap``), when the backend has a vocoder. Off by default: slower on 2 CPU cores,
        where each stage ran ~2x slower on one thread than on two (BENCHMARKS.md)."""
        return bool(self.overlap) and getattr(self.backend, "vocoder", None) is not None

    def _synthesize_overlapped(self, reqs: dict[str, SynthesisRequest],
                               options: SamplingOptions) -> Iterator[SynthesisResult]:
        budget = shared_budget() if self.backend.device == "cpu" else None
        group = int(getattr(getattr(self.backend, "vocoder", None), "max_batch", self.batch_size) or 1)

        def render(rows: list[RowResult]) -> list[SynthesisResult]:
            return list(self._vocode(rows, reqs, options))

        stage: BackgroundStage[list[RowResult], list[SynthesisResult]] = BackgroundStage(render, budget, "vocoder")
        pending: list[RowResult] = []
        tokens = self.generate_tokens(reqs.values(), options)
        try:
            with budget.busy() if budget is not None else nullcontext():
                for result in tokens:
                    pending.append(result)
                    if len(pending) >= group:
                        stage.submit(pending)
                        pending = []
                    for done in stage.ready():
                        yield from done
            if pending:
                stage.submit(pending)
            for done in stage.finish():
                yield from done
        finally:
            tokens.close()
            stage.close()

    def _vocode(self, rows: list[RowResult], reqs: dict[str, SynthesisRequest],
                options: SamplingOptions) -> Iterator[SynthesisResult]:
        items = [VocodeItem(key=r.key, tokens=_nonempty(r.tokens),
                            phone_ids=np.asarray(reqs[r.key].phone_ids, dtype=np.int64)) for r in rows]
        seeds = [row_seed(options.seed, "sovits\x00" + r.key) for r in rows]
        start = time.perf_counter()
        audios = self.backend.vocode(items, speed=options.speed, noise_scale=options.noise_scale, seeds=seeds)
        per_chunk = (time.perf_counter() - start) / len(rows)
        for row, audio in zip(rows, audios, strict=True):
            yield SynthesisResult(key=row.key, tokens=row.tokens, audio=audio, sample_rate=SAMPLE_RATE,
                                  stopped_by=row.stopped_by,
                                  timings={"prefill": row.prefill_seconds, "decode": row.decode_seconds,
                                           "vocode": per_chunk})


def _nonempty(tokens: np.ndarray) -> np.ndarray:
    """SoVITS needs at least one token (upstream pads a lone zero the same way)."""
    return tokens if len(tokens) else np.zeros(1, dtype=np.int64)
