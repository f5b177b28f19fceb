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
from typing import TYPE_CHECKING

from jobs.records import ClaimedChunk

if TYPE_CHECKING:
    from renderer.engine.api import SynthesisRequest
    from renderer.engine.overlap import BackgroundStage
    from renderer.protocols import Frontend

    Texts = dict[str, tuple[str, str]]

log = logging.getLogger(__name__)

#: Prepared chunks kept at most (older ones are dropped first).
MAX_PREPARED = 4096


def prepare_quietly(frontend: Frontend, texts: Texts) -> dict[str, SynthesisRequest]:
    """render key -> (normalized text, language) to requests; keys that fail are left out (the claim reports them)."""
    from renderer.engine.text_requests import prepare_requests

    return prepare_requests(frontend, texts).requests


class FrontendPrefetch:
    """A background stage plus the prepared chunks it produced; one per worker."""

    def __init__(self) -> None:
        self._stage: BackgroundStage[tuple[Frontend, Texts], dict[str, SynthesisRequest]] | None = None
        self._ready: dict[str, SynthesisRequest] = {}
        self.hits = 0

    def start(self, frontend: Frontend, chunks: list[ClaimedChunk]) -> None:
        """Prepare ``chunks`` (those not prepared yet) in the background."""
        texts = {c.render_key: (c.normalized, c.language) for c in chunks if c.render_key not in self._ready}
        if not texts:
            return
        if self._stage is None:
            from renderer.engine.overlap import BackgroundStage, shared_budget

            self._stage = BackgroundStage(lambda job: prepare_quietly(*job), shared_budget(),
                                          name="frontend-prefetch")
        self._stage.submit((frontend, texts))

    def take(self, render_key: str) -> SynthesisRequest | None:
        """The prepared request for ``render_key`` (waiting for work in flight), or None."""
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
