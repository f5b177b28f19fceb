"""Plain records the store returns (snapshots; no database session attached)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobs.db import DONE, BookRow


@dataclass(frozen=True)
class ClaimedChunk:
    id: int
    book_id: int
    chapter_id: int
    chapter_position: int
    idx: int
    render_key: str
    text: str
    normalized: str
    language: str
    attempts: int
    worker_deaths: int = 0  # times a worker died holding it (jobs.store.deaths); at the limit it is claimed alone
    boundary: str = "sentence"
    take: int = 1  # the take to render (jobs.takes): 1, or a re-roll's number


@dataclass(frozen=True)
class SyncReport:
    """What ``store.plans.sync_plan`` changed. ``added`` includes invalidated chunks (new render key)."""

    book_id: int
    added: int = 0
    removed: int = 0
    kept: int = 0
    moved: int = 0
    chapters_changed: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.moved or self.chapters_changed)


@dataclass(frozen=True)
class BookInfoRow:
    id: int
    source_path: str
    source_hash: str
    title: str
    author: str
    language: str
    identifier: str | None
    cover: bytes | None
    cover_mime: str | None
    voice_name: str
    voice_id: str
    engine_version: str
    options: dict[str, Any]
    # Beside the chapters (see BookPlan.meta_json): "navigation" marks and "missing_parts" of the book.
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ManifestChunk:
    id: int
    idx: int
    audio_path: str
    boundary: str
    text: str
    render_key: str
    n_phones: int
    n_tokens: int
    duration_s: float


@dataclass(frozen=True)
class ChapterState:
    id: int
    position: int
    number: int
    title: str
    href: str
    anchor: str | None
    skipped: bool
    skip_reason: str | None
    selected: bool
    counts: dict[str, int]
    chunks: list[ManifestChunk] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def complete(self) -> bool:
        return self.selected and not self.skipped and self.total > 0 and self.counts.get(DONE, 0) == self.total


@dataclass(frozen=True)
class Failure:
    chunk_id: int
    chapter_number: int
    idx: int
    text: str
    error: str
    attempts: int
    kind: str | None = None  # jobs.db.ERROR_KINDS: input, engine or worker
    worker_deaths: int = 0


@dataclass(frozen=True)
class AudioEstimate:
    """What is left of a book: chunks and characters, and the seconds of audio per character so far (None
    before any chunk is done)."""

    chunks_left: int
    chars_left: int
    seconds_per_char: float | None


@dataclass(frozen=True)
class RetryReport:
    """What ``store.queue.retry_failed`` did: chunks queued again (of them, failed by their workers'
    deaths) and failed chunks left alone because their text cannot be spoken."""

    retried: int = 0
    after_worker_deaths: int = 0
    kept_input_errors: int = 0


@dataclass(frozen=True)
class BatchRecord:
    """Figures of one rendered batch, as a worker records them (times in seconds since the epoch, durations
    in seconds): what it produced and where its time went (``jobs.db.BatchRow``)."""

    worker_id: str
    book_id: int
    started_at: float
    finished_at: float
    batch_size: int
    chunks: int
    tokens: int
    audio_s: float
    frontend_s: float
    prefill_s: float
    decode_s: float
    vocode_s: float
    write_s: float


@dataclass(frozen=True)
class Throughput:
    batches: int
    chunks: int
    tokens: int
    audio_s: float
    busy_s: float
    span_s: float
    stage_s: dict[str, float]

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.span_s if self.span_s > 0 else 0.0

    @property
    def audio_s_per_s(self) -> float:
        return self.audio_s / self.span_s if self.span_s > 0 else 0.0


def book_info_from_row(row: BookRow) -> BookInfoRow:
    return BookInfoRow(
        id=row.id,
        source_path=row.source_path,
        source_hash=row.source_hash,
        title=row.title,
        author=row.author,
        language=row.language,
        identifier=row.identifier,
        cover=row.cover,
        cover_mime=row.cover_mime,
        voice_name=row.voice_name,
        voice_id=row.voice_id,
        engine_version=row.engine_version,
        options=dict(row.options or {}),
        meta=dict(row.meta or {}),
    )


def claimed_from_row(row: Any) -> ClaimedChunk:
    return ClaimedChunk(
        id=row.id,
        book_id=row.book_id,
        chapter_id=row.chapter_id,
        chapter_position=row.chapter_position,
        idx=row.idx,
        render_key=row.render_key,
        text=row.text,
        normalized=row.normalized,
        language=row.language,
        attempts=row.attempts,
        worker_deaths=row.worker_deaths,
        boundary=row.boundary,
        take=row.take,
    )
