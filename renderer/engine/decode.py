"""The decode loop, written once over the backend protocol, with continuous batching.

The backend's cache has ``slots`` rows. Each iteration (1) prefills waiting chunks into free slots
(chunks are taken in length order, so a prefill batch has little padding) and samples their first
token, then (2) runs one step for all slots and samples one token per live row. A row that stops frees
its slot for the next waiting chunk, so the batch stays full while work remains. A step costs in
proportion to the slots the cache holds, so there are never more slots than chunks, and once nothing
waits and at most half the slots are live the cache is compacted to the live rows (a drained batch of 64
rows with 5 left steps 5 rows, not 64).

Sampling is per row with the row's own generator (seeded from the chunk key), so a chunk's tokens do
not depend on its neighbours: the graphs are row-independent and every random draw is the row's own.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from renderer.engine.backend import Backend, PrefillBatch, StepInputs
from renderer.engine.options import SamplingOptions
from renderer.engine.sampling import MIN_STEPS_BEFORE_EOS, sample_candidates
from renderer.rounding import round_up

#: Rows per prefill call (more rows are prefilled in several calls).
PREFILL_MAX_ROWS = 8


@dataclass
class PreparedRow:
    """One chunk ready for the GPT: text = reference phones ++ target phones (bert likewise).

    phone_ids [Lx] int64, bert [1024, Lx] float32; seed: the row's generator seed;
    forced: optional teacher-forced tokens (tests): the row feeds these instead of samples and stops
    after ``len(forced)`` steps.
    """

    key: str
    phone_ids: np.ndarray
    bert: np.ndarray
    seed: int
    forced: np.ndarray | None = None


@dataclass
class RowResult:
    """Generated tokens (EOS removed) of one row, why it stopped, and amortised timings (seconds)."""

    key: str
    tokens: np.ndarray
    stopped_by: str
    steps: int
    prefill_seconds: float
    decode_seconds: float
    logits: list[np.ndarray] | None = None
    candidates: list[tuple[np.ndarray, np.ndarray, float]] | None = None


@dataclass
class DecodeStats:
    """Counters for one run: batch steps, prefill calls, sum of per-row steps."""

    steps: int = 0
    prefills: int = 0
    row_steps: int = 0
    max_live: int = 0
    compactions: int = 0
    step_seconds: float = 0.0
    prefill_seconds: float = 0.0


@dataclass
class _Row:
    prepared: PreparedRow
    generator: torch.Generator
    tokens: list[int] = field(default_factory=list)
    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0
    logits: list[np.ndarray] | None = None
    candidates: list[tuple[np.ndarray, np.ndarray, float]] | None = None


class BatchDecoder:
    """Runs :class:`PreparedRow` s through a backend; one instance per run (owns the slot state)."""

    def __init__(self, backend: Backend, prompt: np.ndarray, options: SamplingOptions, slots: int = 8,
                 record: bool = False) -> None:
        self.backend = backend
        self.prompt = np.asarray(prompt, dtype=np.int64).reshape(-1)
        self.options = options
        self.n_slots = max(1, int(slots))
        self.record = record
        self.stats = DecodeStats()
        self._prompt_presence = np.zeros(backend.vocab_size, dtype=np.float32)
        self._prompt_presence[self.prompt] = 1.0
        self._allocate_state(self.n_slots)

    def _allocate_state(self, slots: int) -> None:
        """Per-slot host state for ``slots`` rows (all free)."""
        v = self.backend.vocab_size
        self.rows: list[_Row | None] = [None] * slots
        self.presence = np.zeros((slots, v), dtype=np.float32)
        self.tokens = np.zeros(slots, dtype=np.int64)
        self.positions = np.zeros(slots, dtype=np.int64)
        self.cache_lens = np.zeros(slots, dtype=np.int64)
        self.penalty = np.full(slots, self.options.repetition_penalty, dtype=np.float32)
        self.eos_block = np.ones(slots, dtype=np.float32)

    def run(self, rows: Iterable[PreparedRow]) -> Iterator[RowResult]:
        """Yield one :class:`RowResult` per input row, in completion order."""
        waiting = sorted(rows, key=lambda r: len(r.phone_ids))
        if not waiting:
            return
        # never more slots than rows: a step costs in proportion to the rows the cache holds
        slots = min(self.n_slots, len(waiting))
        self._allocate_state(slots)
        first = max(len(r.phone_ids) for r in waiting[:slots]) + len(self.prompt)
        self.backend.start(slots, round_up(first + 1, 64))
        while waiting or any(r is not None for r in self.rows):
            free = [s for s, r in enumerate(self.rows) if r is None]
            if free and waiting:
                take, waiting = waiting[: len(free)], waiting[len(free):]
                # bounded prefill batches: the transient K/V and attention scores grow with rows x length^2
                for start in range(0, len(take), PREFILL_MAX_ROWS):
                    part = take[start: start + PREFILL_MAX_ROWS]
                    slots_now = np.asarray(free[start: start + len(part)], dtype=np.int64)
                    yield from self._prefill(slots_now, part)
            if any(r is not None for r in self.rows):
                self.backend.ensure_capacity(int(self.cache_lens.max()) + 1, allow_shrink=True)
                yield from self._step()
                if not waiting:
                    self._compact_if_drained()

    def _compact_if_drained(self) -> None:
        """Once nothing waits and at most half the slots are live, keep only the live rows."""
        live = [s for s, r in enumerate(self.rows) if r is not None]
        if not live or len(live) > len(self.rows) // 2:
            return
        keep = np.asarray(live, dtype=np.int64)
        self.backend.compact(keep)
        self.rows = [self.rows[s] for s in live]
        self.presence = self.presence[keep]
        self.tokens = self.tokens[keep]
        self.positions = self.positions[keep]
        self.cache_lens = self.cache_lens[keep]
        self.penalty = self.penalty[keep]
        self.eos_block = self.eos_block[keep]
        self.stats.compactions += 1

    # ------------------------------------------------------------------ prefill
    def _prefill(self, slots: np.ndarray, take: list[PreparedRow]) -> Iterator[RowResult]:
        b = len(take)
        lens = np.array([len(r.phone_ids) for r in take], dtype=np.int64)
        x = int(lens.max())
        phone_ids = np.zeros((b, x), dtype=np.int64)
        bert = np.zeros((b, take[0].bert.shape[0], x), dtype=np.float32)
        for i, r in enumerate(take):
            phone_ids[i, : lens[i]] = r.phone_ids
            bert[i, :, : lens[i]] = r.bert
        y = len(self.prompt)
        batch = PrefillBatch(
            phone_ids=phone_ids, bert=bert, text_lens=lens, prompt=np.tile(self.prompt, (b, 1)).reshape(b, y),
            presence=np.tile(self._prompt_presence, (b, 1)), penalty=np.full(b, self.options.repetition_penalty,
                                                                            dtype=np.float32),
            eos_block=np.ones(b, dtype=np.float32))
        start = time.perf_counter()
        cand = self.backend.prefill(slots, batch, return_logits=self.record)
        elapsed = time.perf_counter() - start
        self.stats.prefills += 1
        self.stats.prefill_seconds += elapsed
        for i, (slot, prepared) in enumerate(zip(slots.tolist(), take, strict=True)):
            row = _Row(prepared=prepared, generator=torch.Generator().manual_seed(prepared.seed),
                       prefill_seconds=elapsed / b, logits=[] if self.record else None,
                       candidates=[] if self.record else None)
            self.rows[slot] = row
            self.presence[slot] = self._prompt_presence
            self.cache_lens[slot] = lens[i] + y
            done = self._advance(slot, row, cand.values[i], cand.indices[i], float(cand.lse[i]),
                                 None if cand.logits is None else cand.logits[i])
            if done is not None:
                yield done

    # ------------------------------------------------------------------ step
    def _step(self) -> Iterator[RowResult]:
        inputs = StepInputs(tokens=self.tokens, positions=self.positions, cache_lens=self.cache_lens,
                            presence=self.presence, penalty=self.penalty, eos_block=self.eos_block)
        start = time.perf_counter()
        cand = self.backend.step(inputs, return_logits=self.record)
        elapsed = time.perf_counter() - start
        live = [s for s, r in enumerate(self.rows) if r is not None]
        self.stats.steps += 1
        self.stats.row_steps += len(live)
        self.stats.max_live = max(self.stats.max_live, len(live))
        self.stats.step_seconds += elapsed
        for slot in live:
            row = self.rows[slot]
            assert row is not None
            row.decode_seconds += elapsed / len(live)
            self.cache_lens[slot] += 1
            done = self._advance(slot, row, cand.values[slot], cand.indices[slot], float(cand.lse[slot]),
                                 None if cand.logits is None else cand.logits[slot])
            if done is not None:
                yield done

    # ------------------------------------------------------------------ per-row sampling + stop rules
    def _advance(self, slot: int, row: _Row, values: np.ndarray, indices: np.ndarray, lse: float,
                 logits: np.ndarray | None) -> RowResult | None:
        """Sample the row's next token, apply upstream's stop rules; returns a result when it stops."""
        idx = len(row.tokens)
        if row.logits is not None and logits is not None:
            row.logits.append(logits.copy())
        if row.candidates is not None:
            row.candidates.append((values.copy(), indices.copy(), lse))
        draw = sample_candidates(values, indices, lse, self.options, idx, row.generator,
                                 vocab_size=self.backend.vocab_size)
        forced = row.prepared.forced
        token = int(forced[idx]) if forced is not None else draw.token
        row.tokens.append(token)
        eos = self.backend.eos
        stopped_by = None
        if forced is not None:
            stopped_by = "forced" if len(row.tokens) >= len(forced) else None
        elif draw.argmax == eos or token == eos:
            row.tokens.pop()  # upstream drops the last sampled token on an EOS stop
            stopped_by = "eos"
        elif len(row.tokens) >= self.options.token_limit():
            stopped_by = "max_tokens"
        if stopped_by is None:
            self.tokens[slot] = token
            self.presence[slot, token] = 1.0
            self.positions[slot] = len(self.prompt) + idx
            self.eos_block[slot] = 1.0 if idx + 1 < MIN_STEPS_BEFORE_EOS else 0.0
            return None
        self._free(slot)
        return RowResult(key=row.prepared.key, tokens=np.asarray(row.tokens, dtype=np.int64),
                         stopped_by=stopped_by, steps=idx + 1, prefill_seconds=row.prefill_seconds,
                         decode_seconds=row.decode_seconds, logits=row.logits, candidates=row.candidates)

    def _free(self, slot: int) -> None:
        self.rows[slot] = None
        self.tokens[slot] = 0
        self.positions[slot] = 0
        self.cache_lens[slot] = 0
        self.presence[slot] = 0.0
        self.eos_block[slot] = 1.0
