"""Reference runs and backend drivers shared by the engine tests."""

from __future__ import annotations

import numpy as np
import torch

from renderer.engine.decode import BatchDecoder, PreparedRow, RowResult
from renderer.engine.options import SamplingOptions, row_seed
from tests.oracles.gpt_reference import generate_reference


def make_rows(vectors, chunks: dict[str, tuple[np.ndarray, np.ndarray]], seed: int = 0) -> list[PreparedRow]:
    """Reference phones/BERT of the conformance prompt ++ each chunk's target phones/BERT."""
    pp, pb = vectors["gpt_prompt_phones"], vectors["gpt_prompt_bert"]
    return [PreparedRow(key=k, phone_ids=np.concatenate([pp, ph]), bert=np.concatenate([pb, bt], axis=1),
                        seed=row_seed(seed, k)) for k, (ph, bt) in chunks.items()]


def run_backend(backend, vectors, rows: list[PreparedRow], options: SamplingOptions, slots: int,
                record: bool = False) -> tuple[dict[str, RowResult], BatchDecoder]:
    decoder = BatchDecoder(backend, vectors["gpt_prompt_semantic"], options, slots=slots, record=record)
    return {r.key: r for r in decoder.run(rows)}, decoder


def run_reference(model, vectors, row: PreparedRow, options: SamplingOptions):
    """The models helper's single-sequence upstream path with the row's own generator."""
    early = -1 if options.early_stop_tokens is None else options.early_stop_tokens
    return generate_reference(model, torch.from_numpy(row.phone_ids), torch.from_numpy(row.bert),
                              torch.from_numpy(vectors["gpt_prompt_semantic"]), options, early_stop_num=early,
                              generator=torch.Generator().manual_seed(row.seed))


def penalised_reference_logits(raw: np.ndarray, prompt: np.ndarray, tokens: np.ndarray, penalty: float
                               ) -> np.ndarray:
    """Per step: the raw reference logits with upstream's repetition penalty and EOS block applied."""
    out = raw.astype(np.float32).copy()
    for step in range(len(out)):
        seen = np.unique(np.concatenate([prompt, tokens[:step]]).astype(np.int64))
        row = out[step]
        sc = row[seen]
        row[seen] = np.where(sc < 0, sc * np.float32(penalty), sc / np.float32(penalty))
        if step < 11:
            row[1024] = -np.inf
    return out


def check_logits(result: RowResult, ref_raw: np.ndarray, prompt: np.ndarray, penalty: float,
                 atol: float = 1e-4) -> float:
    """Compare a recorded row with reference raw logits [steps, V]: raw logits when the backend gave
    them, and always the top-K candidates against the penalised reference (values at the returned ids,
    and no better candidate missed). Returns the worst difference."""
    assert result.candidates is not None
    assert len(result.candidates) == len(ref_raw)
    worst = 0.0
    if result.logits:
        worst = float(np.abs(np.stack(result.logits) - ref_raw).max())
    tokens = result.tokens if len(result.tokens) >= len(ref_raw) else np.concatenate([result.tokens, [0]])
    penalised = penalised_reference_logits(ref_raw, prompt, tokens, penalty)
    for step, (vals, idx, _lse) in enumerate(result.candidates):
        finite = np.isfinite(vals)
        worst = max(worst, float(np.abs(vals[finite] - penalised[step, idx[finite]]).max()))
        kth = np.sort(penalised[step])[::-1][len(vals) - 1]
        assert vals[-1] >= kth - atol  # the K best were returned
    assert worst <= atol, worst
    return worst


def check_step_writes_one_position(backend, vectors) -> None:
    """A step keeps the cache buffers (no reallocation) and changes exactly position cache_len of each row."""
    from renderer.engine.backend import StepInputs

    rows = make_rows(vectors, {"a": (vectors["gpt_target_phones"][:5], vectors["gpt_target_bert"][:, :5]),
                               "b": (vectors["gpt_target_phones"], vectors["gpt_target_bert"]),
                               "c": (vectors["gpt_target_phones"][:9], vectors["gpt_target_bert"][:, :9])})
    decoder = BatchDecoder(backend, vectors["gpt_prompt_semantic"], SamplingOptions(max_tokens=2), slots=3)
    list(decoder.run(rows))  # allocates and fills the cache
    ptrs = [t.data_ptr() for t in backend.cache.keys + backend.cache.values]
    before_k = [t.clone() for t in backend.cache.keys]
    before_v = [t.clone() for t in backend.cache.values]
    lens = np.array([7, 30, 12], dtype=np.int64)
    v = backend.vocab_size
    backend.step(StepInputs(tokens=np.array([3, 4, 5]), positions=np.array([1, 2, 3]), cache_lens=lens,
                            presence=np.zeros((3, v), np.float32), penalty=np.ones(3, np.float32),
                            eos_block=np.zeros(3, np.float32)))
    assert ptrs == [t.data_ptr() for t in backend.cache.keys + backend.cache.values]
    for layer in range(len(before_k)):
        changed_k = (backend.cache.keys[layer] != before_k[layer]).any(dim=1).any(dim=1)  # [B, cap]
        changed_v = (backend.cache.values[layer] != before_v[layer]).any(dim=1).any(dim=2)
        for row, pos in enumerate(lens):
            assert changed_k[row].nonzero().flatten().tolist() == [int(pos)]
            assert changed_v[row].nonzero().flatten().tolist() == [int(pos)]
