"""Progress bars for `render run`: one for the book, one per chapter in progress (rich, TTY only)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

if TYPE_CHECKING:
    from jobs.store import Store
    from jobs.worker import WorkerReport


class BookProgress:
    """Call :meth:`update` after each batch; silent when stderr is not a terminal."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._progress: Progress | None = None
        self._book: TaskID | None = None
        self._chapters: dict[int, TaskID] = {}

    def __enter__(self) -> BookProgress:
        if self.enabled:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, store: Store, book_id: int, report: WorkerReport | None) -> None:
        if self._progress is None:
            return
        counts = store.status.counts(book_id)
        total = sum(counts.values())
        finished = counts["done"] + counts["failed"]
        speed = store.stats.throughput(book_id)
        rate = f"{speed.chunks_per_s:.2f} chunks/s {speed.audio_s_per_s:.2f} audio-s/s"
        if self._book is None:
            self._book = self._progress.add_task("book", total=total, rate=rate)
        self._progress.update(self._book, completed=finished, total=total, rate=rate)
        for chapter in store.status.chapters(book_id):
            if not chapter.selected or chapter.skipped or chapter.total == 0:
                continue
            done = chapter.counts["done"] + chapter.counts["failed"]
            task = self._chapters.get(chapter.id)
            if task is None:
                if done == 0 or done == chapter.total:
                    continue
                task = self._progress.add_task(f"  {chapter.number}. {chapter.title[:30]}", total=chapter.total,
                                               rate="")
                self._chapters[chapter.id] = task
            self._progress.update(task, completed=done)
