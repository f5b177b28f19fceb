"""Reference runs and backend drivers shared by the engine tests."""

from __future__ import annotations

import numpy as np
import torch

from renderer.engine.decode import BatchDecoder, PreparedRow, RowResult
from renderer.engine.options import SamplingOptions, row_seed
from renderer.models.reference import generate_reference


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
