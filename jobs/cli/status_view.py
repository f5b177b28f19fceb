"""What `render status` shows: counts per state, per-chapter progress, failures, throughput, ETA."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import click

from jobs.store import BookInfoRow, Store


def status_json(store: Store, book: BookInfoRow) -> dict[str, Any]:
    counts = store.status.counts(book.id)
    speed = store.stats.throughput(book.id)
    remaining = counts["pending"] + counts["leased"]
    eta_s = remaining / speed.chunks_per_s if speed.chunks_per_s > 0 and remaining else (0.0 if not remaining else None)
    stage_total = sum(speed.stage_s.values())
    chapters = [
        {
            "number": c.number,
            "title": c.title,
            "skipped": c.skipped,
            "skip_reason": c.skip_reason,
            "selected": c.selected,
            "counts": c.counts,
            "complete": c.complete,
        }
        for c in store.status.chapters(book.id)
    ]
    return {
        "book": {"id": book.id, "path": book.source_path, "title": book.title, "voice": book.voice_name},
        "counts": counts,
        "total": sum(counts.values()),
        "failures": [
            {"chapter": f.chapter_number, "chunk": f.idx, "text": f.text, "error": f.error, "attempts": f.attempts}
            for f in store.status.failures(book.id)
        ],
        "throughput": {
            "batches": speed.batches,
            "chunks_per_s": round(speed.chunks_per_s, 4),
            "audio_s_per_s": round(speed.audio_s_per_s, 4),
            "tokens": speed.tokens,
            "audio_s": round(speed.audio_s, 3),
        },
        "stage_shares": {k: round(v / stage_total, 4) for k, v in speed.stage_s.items()} if stage_total else {},
        "eta_s": None if eta_s is None else round(eta_s, 1),
        "takes": store.takes.counts(book.id).to_dict(),
        "workers": [asdict(w) for w in store.workers.listed()],
        "chapters": chapters,
    }


def print_status(store: Store, book: BookInfoRow) -> None:
    data = status_json(store, book)
    counts = data["counts"]
    click.echo(f"[{book.id}] {book.title} ({book.source_path}) voice={book.voice_name}")
    click.echo("  " + "  ".join(f"{state}: {n}" for state, n in counts.items()) + f"  total: {data['total']}")
    speed = data["throughput"]
    if speed["batches"]:
        click.echo(f"  throughput: {speed['chunks_per_s']:.2f} chunks/s, {speed['audio_s_per_s']:.2f} audio-s/s "
                   f"(last {speed['batches']} batches)")
        shares = ", ".join(f"{k} {v:.0%}" for k, v in data["stage_shares"].items())
        if shares:
            click.echo(f"  time spent: {shares}")
    for worker in data["workers"]:
        click.echo(f"  worker {worker['id']} ({worker['state']}, heartbeat {worker['heartbeat_age_s']:.0f} s ago)")
    takes = data["takes"]
    if any(takes.values()):
        click.echo(f"  takes: {takes['rerolled']} re-rolled, {takes['doubtful']} chunk(s) still doubtful "
                   f"(`render review`), {takes['accepted']} accepted by a person")
    if data["eta_s"] is not None and (counts["pending"] or counts["leased"]):
        click.echo(f"  ETA: {data['eta_s'] / 60:.1f} min (at the recent rate)")
    for chapter in data["chapters"]:
        c = chapter["counts"]
        if chapter["skipped"]:
            line = f"skipped ({chapter['skip_reason']})"
        elif not chapter["selected"]:
            line = "not selected"
        else:
            total = sum(c.values())
            line = f"{c['done']}/{total} done" + (f", {c['failed']} failed" if c["failed"] else "")
        click.echo(f"  {chapter['number']:3d}. {chapter['title'][:40]:40s} {line}")
    for failure in data["failures"]:
        click.echo(f"  FAILED chapter {failure['chapter']} chunk {failure['chunk']}: {failure['error']}")
