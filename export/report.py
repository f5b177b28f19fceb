"""The export report: per-file measurements and compliance, per-chapter figures, chunk coverage."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from export.assemble import ChunkPlacement
from export.verify import Compliance, Measurement


@dataclass
class FileReport:
    name: str
    kind: str  # 'chapter' | 'book'
    measurement: Measurement
    compliance: Compliance
    encode_attempts: int = 1

    @property
    def passed(self) -> bool:
        return self.compliance.passed

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "passed": self.passed,
                "failed_rules": self.compliance.failed_rules, "encode_attempts": self.encode_attempts,
                "measurement": self.measurement.to_dict(),
                "checks": [c.to_dict() for c in self.compliance.checks]}


@dataclass
class SuspiciousChunk:
    key: str
    chapter: int
    reason: str
    seconds_per_phone: float | None = None
    tokens_per_phone: float | None = None


@dataclass
class ChapterReport:
    index: int
    title: str
    file: str
    book_offset_s: float  # start of this chapter in a single-file book / M4B (0 for per-chapter files)
    measurement: Measurement
    mastering: dict[str, float]
    chunks: list[ChunkPlacement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # why a figure differs from the preset's target, etc.

    def to_dict(self) -> dict[str, Any]:
        chunks = [{"key": c.key, "start_s": round(c.start_s, 4), "end_s": round(c.end_s, 4),
                   "book_start_s": round(self.book_offset_s + c.start_s, 4),
                   "book_end_s": round(self.book_offset_s + c.end_s, 4), "gain_db": round(c.gain_db, 2),
                   "loudness_lufs": round(c.loudness_lufs, 2), "n_phones": c.n_phones, "n_tokens": c.n_tokens,
                   "trimmed_head_s": round(c.trimmed_head_s, 3), "trimmed_tail_s": round(c.trimmed_tail_s, 3),
                   "silent": c.silent} for c in self.chunks]
        return {"index": self.index, "title": self.title, "file": self.file,
                "book_offset_s": round(self.book_offset_s, 3), "measurement": self.measurement.to_dict(),
                "mastering": {k: round(v, 3) for k, v in self.mastering.items()}, "notes": list(self.notes),
                "chunks": chunks}


@dataclass
class Coverage:
    n_chunks: int
    n_placed: int
    duplicate_keys: list[str] = field(default_factory=list)
    overlapping: list[str] = field(default_factory=list)
    suspicious: list[SuspiciousChunk] = field(default_factory=list)
    missing_parts: list[str] = field(default_factory=list)  # parts of the book that could not be read

    @property
    def complete(self) -> bool:
        """Every chunk in exactly one audio interval, intervals in order and disjoint, and no part of the
        book missing (a book read with missing parts never passes coverage)."""
        return (self.n_chunks == self.n_placed and not self.duplicate_keys and not self.overlapping
                and not self.missing_parts)

    def to_dict(self) -> dict[str, Any]:
        return {"complete": self.complete, "n_chunks": self.n_chunks, "n_placed": self.n_placed,
                "missing_parts": self.missing_parts,
                "duplicate_keys": self.duplicate_keys, "overlapping": self.overlapping,
                "suspicious": [asdict(s) for s in self.suspicious]}


@dataclass(frozen=True)
class TakeSummary:
    """The take check's figures for the book (from the job store): takes rendered again because their check
    failed, chunks whose best take is still doubtful (listed in ``review``), chunks a person decided on."""

    rerolled: int = 0
    doubtful: int = 0
    accepted: int = 0
    review: str = "review.html"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_text(self) -> str:
        line = (f"Takes: {self.rerolled} re-rolled, {self.doubtful} chunk(s) still doubtful, "
                f"{self.accepted} accepted by a person")
        return line + (f" (listen to the doubtful ones in {self.review})" if self.doubtful else "")


@dataclass
class ExportReport:
    book_title: str
    author: str
    preset: str
    format: str
    options: dict[str, Any]
    files: list[FileReport] = field(default_factory=list)
    chapters: list[ChapterReport] = field(default_factory=list)
    coverage: Coverage = field(default_factory=lambda: Coverage(0, 0))
    out_dir: Path | None = None
    listener_files: list[dict[str, Any]] = field(default_factory=list)  # subtitles, the read-along EPUB
    takes: TakeSummary | None = None  # None: rendered without take checks (or exported outside the jobs layer)

    @property
    def passed(self) -> bool:
        return all(f.passed for f in self.files) and self.coverage.complete

    def to_dict(self) -> dict[str, Any]:
        return {"book": {"title": self.book_title, "author": self.author}, "preset": self.preset,
                "format": self.format, "passed": self.passed, "options": self.options,
                "files": [f.to_dict() for f in self.files], "chapters": [c.to_dict() for c in self.chapters],
                "coverage": self.coverage.to_dict(), "listener_files": list(self.listener_files),
                "takes": None if self.takes is None else self.takes.to_dict()}

    def to_text(self) -> str:
        lines = [f"Export report: {self.book_title} — {self.author}",
                 f"format {self.format}, preset {self.preset}: {'PASS' if self.passed else 'FAIL'}", "",
                 f"{'file':<44} {'dur':>8} {'LUFS':>6} {'RMS':>6} {'dBTP':>6} {'floor':>6} "
                 f"{'head':>5} {'tail':>5}  result"]
        for f in self.files:
            m = f.measurement
            verdict = "ok" if f.passed else "FAIL: " + ", ".join(f.compliance.failed_rules)
            lines.append(f"{f.name[:44]:<44} {_clock(m.duration_s):>8} {m.loudness_lufs:6.1f} {m.rms_db:6.1f} "
                         f"{m.true_peak_dbtp:6.1f} {m.noise_floor_db:6.1f} {m.head_room_tone_s:5.2f} "
                         f"{m.tail_room_tone_s:5.2f}  {verdict}")
            for c in f.compliance.checks:
                if not c.passed:
                    lines.append(f"    {c.rule}: {c.value} (required {c.limit})")
        lines += ["", f"{'chapter':<44} {'start':>8} {'dur':>8} {'LUFS':>6} {'dBTP':>6} {'gain':>6} {'chunks':>6}"]
        for ch in self.chapters:
            cm = ch.measurement
            label = f"{ch.index}. {ch.title}"[:44]
            lines.append(f"{label:<44} {_clock(ch.book_offset_s):>8} {_clock(cm.duration_s):>8} "
                         f"{cm.loudness_lufs:6.1f} {cm.true_peak_dbtp:6.1f} {ch.mastering.get('gain_db', 0.0):6.1f} "
                         f"{len(ch.chunks):6d}")
            lines += [f"    note: {n}" for n in ch.notes]
        cov = self.coverage
        lines += ["", f"Coverage: {cov.n_placed}/{cov.n_chunks} chunks placed, each in one interval: "
                      f"{'yes' if cov.complete else 'NO'}"]
        lines += [f"    MISSING from the book (not rendered): {m}" for m in cov.missing_parts]
        lines += [f"    duplicate chunk key: {k}" for k in cov.duplicate_keys]
        lines += [f"    overlapping interval: {k}" for k in cov.overlapping]
        if cov.suspicious:
            lines.append(f"Suspicious chunks (possible skipped or repeated speech): {len(cov.suspicious)}")
            lines += [f"    ch {s.chapter} {s.key}: {s.reason}" for s in cov.suspicious]
        for extra in self.listener_files:
            detail = (f": {extra['synced_sentences']} sentences synchronised, {extra['unsynced_sentences']} not found "
                      "in the book's text" if extra["kind"] == "read-along" else "")
            lines.append(f"{extra['kind']}: {extra['name']}{detail}")
        if self.takes is not None:
            lines.append(self.takes.to_text())
        return "\n".join(lines) + "\n"

    def write(self, out_dir: Path) -> tuple[Path, Path]:
        json_path, text_path = out_dir / "report.json", out_dir / "report.txt"
        json_path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
        text_path.write_text(self.to_text(), encoding="utf-8")
        return json_path, text_path


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}"


def find_suspicious(chapter: int, chunks: list[ChunkPlacement], ratio: float,
                    norm_seconds_per_phone: float | None = None) -> list[SuspiciousChunk]:
    """Chunks whose speech time (or token count) per phone is far from the norm.

    A model that skips words produces too little audio for its phones; one that loops produces too much.
    The norm is the voice's (``norm_seconds_per_phone``) when known, else the chapter's median, which
    needs a few chunks to mean anything: then ratio flags need >= 3 measurable chunks.
    """
    found: list[SuspiciousChunk] = []
    for c in chunks:
        if c.silent:
            found.append(SuspiciousChunk(c.key, chapter, "no speech found in the chunk audio"))
    measurable = [c for c in chunks if not c.silent and c.n_phones > 0]
    if len(measurable) < 3 and norm_seconds_per_phone is None:
        return found
    spp = {c.key: c.speech_s / c.n_phones for c in measurable}
    with_tokens = [c for c in measurable if c.n_tokens > 0]
    tpp = {c.key: c.n_tokens / c.n_phones for c in with_tokens}
    med_s = norm_seconds_per_phone or statistics.median(spp.values())
    med_t = statistics.median(tpp.values()) if len(tpp) >= 3 else None
    for c in measurable:
        s, t = spp[c.key], tpp.get(c.key)
        reasons = []
        if med_s > 0 and not (med_s / ratio <= s <= med_s * ratio):
            reasons.append(f"{s:.3f} s/phone vs norm {med_s:.3f}")
        if med_t and t is not None and not (med_t / ratio <= t <= med_t * ratio):
            reasons.append(f"{t:.2f} tokens/phone vs norm {med_t:.2f}")
        if reasons:
            found.append(SuspiciousChunk(c.key, chapter, "; ".join(reasons), round(s, 4),
                                         None if t is None else round(t, 3)))
    return found


def check_coverage(chapters: list[tuple[int, list[ChunkPlacement]]], n_chunks: int, ratio: float,
                   norm_seconds_per_phone: float | None = None) -> Coverage:
    seen: set[str] = set()
    cov = Coverage(n_chunks=n_chunks, n_placed=0)
    for chapter, placements in chapters:
        previous_end = -1.0
        for c in placements:
            cov.n_placed += 1
            if c.key in seen:
                cov.duplicate_keys.append(c.key)
            seen.add(c.key)
            if c.start_s < previous_end - 1e-9 or c.end_s < c.start_s:
                cov.overlapping.append(c.key)
            previous_end = max(previous_end, c.end_s)
        cov.suspicious += find_suspicious(chapter, placements, ratio, norm_seconds_per_phone)
    return cov
