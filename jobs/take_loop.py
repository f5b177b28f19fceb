"""The worker's part of the re-roll loop: score each take, record it, act on the decision.

Per batch, :meth:`TakeKeeper.begin` reads the book's take policy (``options["takes"]``, from
``--max-takes``) and the voice's norm: the prior from the voice's reference clip, then every clean take
of this voice in the store; clean takes of the batch teach it further as they finish. Per result,
:meth:`TakeKeeper.keep` scores the take once (from its tokens, audio and why decoding stopped, plus the
word error rate when a transcriber is set) and records it for every chunk that shares its render key;
the store decides (:meth:`jobs.store.takes.TakeStore.record`) and the discarded takes' files are deleted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.records import BookInfoRow, ClaimedChunk
from jobs.store import Store
from jobs.store.takes import NewTake, TakeOutcome
from jobs.takes import DEFAULT_MAX_TAKES, TakePolicy, take_key

if TYPE_CHECKING:
    from renderer.engine.api import SynthesisResult
    from renderer.takes import Transcriber, VoiceNorm

__all__ = ["ScoredTake", "TakeKeeper", "policy_of"]

log = logging.getLogger(__name__)


def policy_of(book: BookInfoRow) -> TakePolicy:
    """The book's take policy as stored with its options (books planned before takes: the default)."""
    stored = dict(book.options.get("takes") or {})
    return TakePolicy(max_takes=int(stored.get("max_takes", DEFAULT_MAX_TAKES)))


def request_key(chunk: ClaimedChunk) -> str:
    """The engine request key of the take this chunk is claimed for (its random stream; its file name)."""
    return take_key(chunk.render_key, chunk.take)


@dataclass(frozen=True)
class ScoredTake:
    take: int
    seed: int
    measures: dict[str, Any]
    score: Any  # renderer.takes.TakeScore


class TakeKeeper:
    """Scores and records takes for one worker (see the module docstring)."""

    def __init__(self, store: Store, worker_id: str, audio_root: Path,
                 transcriber: Transcriber | None = None) -> None:
        self.store = store
        self.worker_id = worker_id
        self.audio_root = Path(audio_root)
        self.transcriber = transcriber
        self.policy = TakePolicy()
        self._norm: VoiceNorm | None = None
        self._voice_id = ""

    def begin(self, book: BookInfoRow, voice: object) -> None:
        """Policy and norm for a batch of this book (``voice``: the loaded voice, for the prior)."""
        from renderer.takes import VoiceNorm

        self.policy = policy_of(book)
        self._voice_id = book.voice_id
        prior = None
        if getattr(voice, "prompt_semantic", None) is not None and getattr(voice, "ref_phone_ids", None) is not None:
            try:
                prior = VoiceNorm.from_voice(voice)  # type: ignore[arg-type]
            except ValueError:
                prior = None
        rates = self.store.takes.norm_rates(book.voice_id)
        if prior is None and rates:  # no reference clip: the first clean takes are the prior
            first_t, first_s = rates[-1]
            prior = VoiceNorm(tokens_per_phone=first_t, speech_s_per_phone=first_s, weight=1.0)
        self._norm = None if prior is None else prior.learned(rates)

    def score(self, chunk: ClaimedChunk, result: SynthesisResult, n_phones: int, base_seed: int) -> ScoredTake:
        """Measure and judge one result (the take ``chunk`` was claimed for)."""
        from export.options import PauseOptions
        from renderer.engine.options import row_seed
        from renderer.takes import Take, score_take, transcript_error_rate

        take = Take(tokens=result.tokens, audio=result.audio, sample_rate=result.sample_rate,
                    stopped_by=result.stopped_by, n_phones=n_phones,
                    pause_after_s=PauseOptions().after(chunk.boundary), text=chunk.normalized,
                    language=chunk.language)
        wer = None
        if self.transcriber is not None:
            wer = transcript_error_rate(self.transcriber, result.audio, result.sample_rate, chunk.normalized,
                                        chunk.language)
        measures, score = score_take(take, self._norm, self.policy.options, wer)
        if not score.bad and self._norm is not None and measures.tokens_per_phone and measures.speech_s_per_phone:
            self._norm = self._norm.learned([(measures.tokens_per_phone, measures.speech_s_per_phone)])
        return ScoredTake(take=chunk.take, seed=row_seed(base_seed, result.key), measures=measures.to_dict(),
                          score=score)

    def keep(self, chunk: ClaimedChunk, scored: ScoredTake, relpath: str, duration_s: float, n_tokens: int,
             n_phones: int, timings: dict[str, float]) -> TakeOutcome:
        """Record the take for ``chunk``; delete the files of takes the decision discarded."""
        new = NewTake(take=scored.take, seed=scored.seed, score=scored.score, measures=scored.measures,
                      audio_path=relpath, duration_s=duration_s, n_tokens=n_tokens, n_phones=n_phones,
                      timings=timings, voice_id=self._voice_id)
        outcome = self.store.takes.record(self.worker_id, chunk, new, self.policy.max_takes)
        for path in outcome.discarded:
            self.delete_audio(path)
        return outcome

    def delete_audio(self, relpath: str) -> None:
        try:
            (self.audio_root / relpath).unlink(missing_ok=True)
        except OSError as exc:  # a file left behind costs disk space, nothing else
            log.warning("could not delete a discarded take %s: %s", relpath, exc)
