"""Takes: every rendering of a chunk with its seed, score and reasons; the re-roll loop's state (``store.takes``).

A chunk's ``take`` column is the take being rendered while it is pending or leased, and the take in use
once it is done; ``take_state`` says how that take came to be (see :data:`jobs.db.TAKE_STATES`). The
decision after each take (:func:`jobs.takes.decide`) is taken inside the transaction that records it,
from every take of the chunk, so two workers can never both re-roll or both keep one chunk.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from jobs.db import (
    DONE,
    LEASED,
    PENDING,
    TAKE_ACCEPTED,
    TAKE_CLEAN,
    TAKE_DOUBTFUL,
    TAKE_REQUESTED,
    TAKE_REROLLED,
    ChapterRow,
    ChunkRow,
    TakeRow,
)
from jobs.errors import JobsError
from jobs.records import ClaimedChunk
from jobs.store.session import Database
from jobs.takes import TakeDecision, decide
from renderer.takes import Reason, TakeScore

__all__ = ["DoubtfulChunk", "NewTake", "StoredTake", "TakeCounts", "TakeOutcome", "TakeStore"]

#: Clean takes of a voice the norm learns from (the most recent ones).
NORM_SAMPLE = 500


@dataclass(frozen=True)
class NewTake:
    """A rendered, scored take as the worker hands it over (``audio_path`` relative to the audio root)."""

    take: int
    seed: int
    score: TakeScore
    measures: dict[str, Any]
    audio_path: str
    duration_s: float
    n_tokens: int
    n_phones: int
    timings: dict[str, float]
    voice_id: str


@dataclass(frozen=True)
class StoredTake:
    take: int
    seed: int
    score: float
    bad: bool
    reasons: tuple[tuple[str, str], ...]
    audio_path: str | None
    duration_s: float


@dataclass(frozen=True)
class TakeOutcome:
    """What recording a take decided; ``recorded`` False when the worker no longer owns the chunk.
    ``discarded``: audio paths whose takes were dropped (the caller deletes the files)."""

    recorded: bool
    decision: TakeDecision | None = None
    discarded: tuple[str, ...] = ()


@dataclass(frozen=True)
class TakeCounts:
    """Per book: takes rendered again automatically, chunks still doubtful, chunks a person decided."""

    rerolled: int = 0
    doubtful: int = 0
    accepted: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"rerolled": self.rerolled, "doubtful": self.doubtful, "accepted": self.accepted}


@dataclass(frozen=True)
class DoubtfulChunk:
    id: int
    chapter_number: int
    chapter_title: str
    idx: int
    text: str
    render_key: str
    take: int
    takes: tuple[StoredTake, ...]


class TakeStore:
    """Queries of the take loop and of the review (``store.takes``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------------------------ the loop

    def record(self, worker_id: str, chunk: ClaimedChunk, new: NewTake, max_takes: int) -> TakeOutcome:
        """Store one take of a leased chunk and act on :func:`jobs.takes.decide`: back to the queue for the
        next take, or done with the best take (the others' audio discarded unless the chunk stays doubtful)."""
        with self.db.transaction() as s:
            row = s.execute(select(ChunkRow).where(
                ChunkRow.id == chunk.id, ChunkRow.lease_owner == worker_id, ChunkRow.status == LEASED,
                ChunkRow.render_key == chunk.render_key, ChunkRow.take == new.take)).scalar_one_or_none()
            if row is None:
                return TakeOutcome(recorded=False)
            s.execute(delete(TakeRow).where(TakeRow.chunk_id == chunk.id, TakeRow.take == new.take))
            s.add(_take_row(chunk.id, worker_id, new))
            s.flush()
            takes = _takes_of(s, chunk.id)
            # a take a person asked for is the last: then the best of all takes is kept
            cap = len(takes) if row.take_state == TAKE_REQUESTED else max_takes
            decision = decide([_score(t) for t in takes], cap)
            if decision.reroll:
                _requeue(row, decision.next_take)
                return TakeOutcome(recorded=True, decision=decision)
            kept = takes[decision.keep - 1]
            state = TAKE_DOUBTFUL if decision.doubtful else (TAKE_REROLLED if len(takes) > 1 else TAKE_CLEAN)
            _complete(row, worker_id, kept, new, state)
            discarded = () if decision.doubtful else _discard(takes, keep=kept.take)
            return TakeOutcome(recorded=True, decision=decision, discarded=discarded)

    def norm_rates(self, voice_id: str, limit: int = NORM_SAMPLE) -> list[tuple[float, float]]:
        """(tokens per phone, speech seconds per phone) of this voice's latest clean takes."""
        stmt = (select(TakeRow.tokens_per_phone, TakeRow.speech_s_per_phone)
                .where(TakeRow.voice_id == voice_id, TakeRow.bad.is_(False),
                       TakeRow.tokens_per_phone.is_not(None), TakeRow.speech_s_per_phone.is_not(None))
                .order_by(TakeRow.id.desc()).limit(limit))
        with self.db.transaction() as s:
            return [(float(a or 0.0), float(b or 0.0)) for a, b in s.execute(stmt).all()]

    # ------------------------------------------------------------------------------ figures

    def counts(self, book_id: int) -> TakeCounts:
        with self.db.transaction() as s:
            rerolled = s.execute(select(func.count()).select_from(TakeRow)
                                 .join(ChunkRow, ChunkRow.id == TakeRow.chunk_id)
                                 .where(ChunkRow.book_id == book_id, TakeRow.take > 1)).scalar_one()
            states = dict(s.execute(select(ChunkRow.take_state, func.count())
                                    .where(ChunkRow.book_id == book_id, ChunkRow.status == DONE)
                                    .group_by(ChunkRow.take_state)).all())
        return TakeCounts(rerolled=int(rerolled), doubtful=int(states.get(TAKE_DOUBTFUL, 0)),
                          accepted=int(states.get(TAKE_ACCEPTED, 0)))

    def doubtful(self, book_id: int) -> list[DoubtfulChunk]:
        """Done chunks whose kept take is still bad and that no person decided on, in reading order."""
        stmt = (select(ChunkRow, ChapterRow.number, ChapterRow.title)
                .join(ChapterRow, ChapterRow.id == ChunkRow.chapter_id)
                .where(ChunkRow.book_id == book_id, ChunkRow.status == DONE, ChunkRow.take_state == TAKE_DOUBTFUL)
                .order_by(ChunkRow.chapter_position, ChunkRow.idx))
        with self.db.transaction() as s:
            rows = s.execute(stmt).all()
            return [DoubtfulChunk(id=c.id, chapter_number=int(number), chapter_title=str(title), idx=c.idx,
                                  text=c.text, render_key=c.render_key, take=c.take,
                                  takes=tuple(_stored(t) for t in _takes_of(s, c.id)))
                    for c, number, title in rows]

    def in_use(self, chunk_id: int) -> tuple[int, str | None]:
        """(take rendered next or in use, take state) of a chunk."""
        with self.db.transaction() as s:
            row = s.execute(select(ChunkRow.take, ChunkRow.take_state).where(ChunkRow.id == chunk_id)).one_or_none()
        if row is None:
            raise JobsError(f"no chunk {chunk_id} in this job store")
        return int(row[0]), row[1]

    def takes(self, chunk_id: int) -> list[StoredTake]:
        with self.db.transaction() as s:
            return [_stored(t) for t in _takes_of(s, chunk_id)]

    # ------------------------------------------------------------------------------ a person decides

    def accept(self, book_id: int, chunk_id: int, take: int | None = None) -> tuple[str, ...]:
        """Keep take ``take`` (None: the one in use) of a done chunk as a person's choice; returns the audio
        paths of the other takes, now discarded (the caller deletes the files)."""
        with self.db.transaction() as s:
            row = _done_chunk(s, book_id, chunk_id)
            takes = _takes_of(s, chunk_id)
            number = row.take if take is None else take
            chosen = next((t for t in takes if t.take == number), None)
            if chosen is None:
                known = ", ".join(str(t.take) for t in takes) or "none"
                raise JobsError(f"chunk {chunk_id} has no take {number} (its takes: {known})")
            if chosen.audio_path is None:
                raise JobsError(f"the audio of take {number} of chunk {chunk_id} was deleted when another take "
                                "was kept; use --reroll to render a new take")
            row.take, row.take_state = chosen.take, TAKE_ACCEPTED
            row.audio_path, row.duration_s = chosen.audio_path, chosen.duration_s
            row.n_tokens = chosen.n_tokens
            return _discard(takes, keep=chosen.take)

    def reroll(self, book_id: int, chunk_id: int) -> int:
        """Queue one more take of a done chunk (beyond the automatic cap); returns its number. The takes so
        far stay: when it is rendered, the best of all of them is kept."""
        with self.db.transaction() as s:
            row = _done_chunk(s, book_id, chunk_id)
            last = s.execute(select(func.max(TakeRow.take)).where(TakeRow.chunk_id == chunk_id)).scalar_one()
            next_take = int(last or row.take) + 1
            _requeue(row, next_take)
            row.attempts = 0
            row.take_state = TAKE_REQUESTED
            return next_take


def _take_row(chunk_id: int, worker_id: str, new: NewTake) -> TakeRow:
    m = new.measures
    n_phones = max(1, int(m.get("n_phones") or new.n_phones or 1))
    return TakeRow(chunk_id=chunk_id, take=new.take, seed=int(new.seed), score=float(new.score.score),
                   bad=bool(new.score.bad), reasons=[r.to_dict() for r in new.score.reasons], measures=dict(m),
                   audio_path=new.audio_path, duration_s=float(new.duration_s), n_tokens=int(new.n_tokens),
                   n_phones=int(new.n_phones), timings=dict(new.timings),
                   tokens_per_phone=int(new.n_tokens) / n_phones,
                   speech_s_per_phone=float(m.get("speech_s", 0.0)) / n_phones,
                   voice_id=new.voice_id, worker_id=worker_id, created_at=time.time())


def _takes_of(s: Session, chunk_id: int) -> list[TakeRow]:
    return list(s.execute(select(TakeRow).where(TakeRow.chunk_id == chunk_id).order_by(TakeRow.take)).scalars())


def _score(t: TakeRow) -> TakeScore:
    return TakeScore(score=t.score, bad=t.bad, reasons=tuple(Reason.from_dict(r) for r in t.reasons or []))


def _stored(t: TakeRow) -> StoredTake:
    reasons = tuple((str(r.get("code", "")), str(r.get("detail", ""))) for r in t.reasons or [])
    return StoredTake(take=t.take, seed=int(t.seed), score=t.score, bad=t.bad, reasons=reasons,
                      audio_path=t.audio_path, duration_s=t.duration_s)


def _requeue(row: ChunkRow, next_take: int) -> None:
    """Back to the queue for another take; the claim's attempt is given back (a re-roll is no crash)."""
    row.status, row.take = PENDING, next_take
    row.lease_owner = row.lease_expires = None
    row.attempts = max(0, row.attempts - 1)


def _complete(row: ChunkRow, worker_id: str, kept: TakeRow, new: NewTake, state: str) -> None:
    row.status, row.take, row.take_state = DONE, kept.take, state
    row.audio_path, row.duration_s = kept.audio_path, kept.duration_s
    row.n_tokens, row.n_phones = kept.n_tokens, new.n_phones
    row.timings = kept.timings
    row.lease_owner = row.lease_expires = row.last_error = None
    row.completed_by, row.completed_at = worker_id, time.time()


def _discard(takes: Sequence[TakeRow], keep: int) -> tuple[str, ...]:
    paths = []
    for t in takes:
        if t.take != keep and t.audio_path is not None:
            paths.append(t.audio_path)
            t.audio_path = None
    return tuple(paths)


def _done_chunk(s: Session, book_id: int, chunk_id: int) -> ChunkRow:
    row = s.execute(select(ChunkRow).where(ChunkRow.id == chunk_id, ChunkRow.book_id == book_id)).scalar_one_or_none()
    if row is None:
        raise JobsError(f"chunk {chunk_id} is not part of this book (see `render review BOOK` for chunk numbers)")
    if row.status != DONE:
        raise JobsError(f"chunk {chunk_id} is {row.status}, not done: render the book first")
    return row

