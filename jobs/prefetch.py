"""Text frontend for the next claim, prepared while the engine renders the current one.

The worker peeks at the chunks its next claim will most likely take (without leasing them) and
phonemises them and computes their BERT features on a background thread. The thread is one stage of the
process's torch thread budget (:func:`renderer.engine.overlap.shared_budget`), so BERT and the GPT
share the cores instead of oversubscribing them. Results are a cache keyed by render key: a chunk that
another worker claims first is simply never asked for, and anything that fails here is left to the
normal (synchronous) path, which reports it against the chunk.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from jobs.records import ClaimedChunk

log = logging.getLogger(__name__)

#: Prepared chunks kept at most (older ones are dropped first).
MAX_PREPARED = 4096


@dataclass(frozen=True)
class Prepared:
    """Phonemes and BERT features of one render key."""

    phonemes: Any
    bert: Any


def prepare_texts(frontend: Any, texts: dict[str, tuple[str, str]]) -> dict[str, Prepared]:
    """render key -> (normalized text, language) to prepared chunks; keys that fail are left out."""
    phonemes: dict[str, Any] = {}
    for key, (text, language) in texts.items():
        try:
            ph = frontend.phonemize(text, language)
        except Exception:  # noqa: BLE001 - the synchronous path reports it against the chunk
            continue
        if list(ph.phone_ids):
            phonemes[key] = ph
    keys = list(phonemes)
    try:
        berts = frontend.bert_features([phonemes[k] for k in keys])
    except Exception as exc:  # noqa: BLE001 - same: recomputed (and reported) when the chunk is claimed
        log.debug("frontend prefetch: BERT features failed (%s); left to the claim", exc)
        return {}
    return {k: Prepared(phonemes[k], b) for k, b in zip(keys, berts, strict=True)}


class FrontendPrefetch:
    """A background stage plus the prepared chunks it produced; one per worker."""

    def __init__(self) -> None:
        self._stage: Any = None
        self._ready: dict[str, Prepared] = {}
        self.hits = 0

    def start(self, frontend: Any, chunks: list[ClaimedChunk]) -> None:
        """Prepare ``chunks`` (those not prepared yet) in the background."""
        texts = {c.render_key: (c.normalized, c.language) for c in chunks if c.render_key not in self._ready}
        if not texts:
            return
        if self._stage is None:
            from renderer.engine.overlap import BackgroundStage, shared_budget

            self._stage = BackgroundStage(lambda job: prepare_texts(*job), shared_budget(),
                                          name="frontend-prefetch")
        self._stage.submit((frontend, texts))

    def take(self, render_key: str) -> Prepared | None:
        """The prepared chunk for ``render_key`` (waiting for work in flight), or None."""
        self._collect()
        found = self._ready.pop(render_key, None)
        if found is not None:
            self.hits += 1
        return found

    def _collect(self) -> None:
        if self._stage is None or not self._stage.pending:
            return
        try:
            for prepared in self._stage.finish():
                self._ready.update(prepared)
        except Exception as exc:  # noqa: BLE001 - a cache: the claim recomputes what is missing
            log.warning("frontend prefetch failed: %s", exc)
        while len(self._ready) > MAX_PREPARED:
            self._ready.pop(next(iter(self._ready)))

    def close(self) -> None:
        if self._stage is not None:
            self._stage.close()
            self._stage = None
