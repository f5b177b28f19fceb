"""``export_book``: chapters of chunk audio → delivered, tagged, verified files plus report.json/report.txt.

Per chapter: pass 1 assembles the chunks into a temp file, pass 2 masters it (loudness, resampling,
true-peak limiting, room tone) into a second temp, which is encoded, decoded again and measured. Lossy
codecs overshoot peaks, so the limiter runs below the ceiling by a margin; if the decoded file still
exceeds the ceiling, mastering is redone with a lower limiter ceiling (loudness is kept). Memory holds
one chunk and a few blocks at any time; temp files live in a hidden folder inside ``out_dir``.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from export.assemble import Assembly, ChunkPlacement, assemble_chapter
from export.encode import ChapterMark, ffmpeg_path, write_m4b, write_soundfile
from export.errors import DiskFullError, ExportError
from export.filenames import book_filename, chapter_filename
from export.listener import ListenerChapter, write_listener_outputs
from export.loudness import SILENCE_DB
from export.master import RMS_GUARD_MARGIN_DB, Mastered, master_chapter
from export.model import BookInfo, ChapterManifest
from export.options import ExportOptions
from export.readalong import ReadAlongSource, check_source
from export.report import ChapterReport, ExportReport, FileReport, TakeSummary, check_coverage
from export.space import estimate_bytes, free_bytes, is_disk_full
from export.tags import tag_file
from export.verify import Measurement, check_compliance, measure, measure_file

# Initial limiter margin below the ceiling per codec (dB): MP3/AAC reconstruct peaks above the input's.
_CODEC_MARGIN_DB = {"mp3": 0.6, "m4b": 1.0, "flac": 0.05, "wav": 0.05}
_MAX_ENCODE_ATTEMPTS = 4
_EXTRA_MARGIN_DB = 0.15  # added to the measured overshoot on a retry
_READ_ALONG_KBPS = 64  # spoken word, mono: ample, and keeps the EPUB small
_ENCODED_LOUDNESS_TOLERANCE_LU = 0.3  # the decoded file must be this close to the target (spec: 0.5)


def _loudness_error(measured: float, target: float | None) -> float:
    if target is None or measured <= SILENCE_DB:
        return 0.0
    return measured - target


def _rms_in_window(rms_db: float, window: tuple[float, float] | None) -> bool:
    """Whether a decoded file's RMS meets the preset's window (True when the preset has none).

    A miss is codec drift (MP3's low-pass takes energy from bright material): the chapter is mastered
    again with the measured drift in the RMS prediction, so the guard engages or corrects its shift.
    """
    if window is None or rms_db <= SILENCE_DB:
        return True
    return window[0] <= rms_db <= window[1]


def _rms_guard_notes(mastered: Mastered, options: ExportOptions) -> list[str]:
    """The report's explanation when the RMS guard moved the loudness target (empty when it did not)."""
    window = options.rules.get("rms_db")
    if mastered.rms_shift_db == 0.0 or window is None or options.target_lufs is None:
        return []
    target = options.target_lufs
    return [f"loudness target moved {mastered.rms_shift_db:+.2f} dB (from {target:.1f} to "
            f"{target + mastered.rms_shift_db:.1f} LUFS) for the {options.preset.upper()} RMS rule: at {target:.1f} "
            f"LUFS this chapter's RMS would be {mastered.rms_at_target_db:.1f} dB, outside {window[0]}..{window[1]} "
            f"dB less a {RMS_GUARD_MARGIN_DB} dB margin ({options.preset.upper()} has no loudness rule)"]


@dataclass
class _Done:
    chapter: ChapterManifest
    name: str
    mastered: Mastered
    report: ChapterReport
    mp3: Path | None = None  # the chapter as MP3, for the read-along EPUB


def _check_numbers(chapters: list[ChapterManifest]) -> None:
    if not chapters:
        raise ExportError("nothing to export: the book has no chapters")
    numbers = [ch.index for ch in chapters]
    if len(set(numbers)) != len(numbers) or numbers != sorted(numbers):
        raise ExportError(f"chapter numbers must be unique and in reading order, got {numbers}")


def export_book(book: BookInfo, chapters: list[ChapterManifest], out_dir: Path, options: ExportOptions,
                read_along: ReadAlongSource | None = None, *, takes: TakeSummary | None = None) -> ExportReport:
    """Write one file per chapter (or one M4B / single file), verify each, write report.json + report.txt;
    subtitles when ``options.subtitles`` asks for them, and the read-along EPUB when ``read_along`` is given.
    ``takes``: the take check's figures, copied into the report.

    Files are named and numbered by each chapter's plan number (``ChapterManifest.index``). A full disk
    raises :class:`DiskFullError` with the space needed; the caller's folder may hold partial files then
    (write into a staging folder and publish it, as :mod:`export.publish` does)."""
    _check_numbers(chapters)
    if options.format == "m4b":
        ffmpeg_path()  # fail before hours of work, with the message saying what to install
    if read_along is not None:
        check_source(read_along.epub, read_along.sha256)  # an EPUB 2, a changed book: say so before the work
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = ExportReport(book.title, book.author, options.preset, options.format, options.to_dict(), out_dir=out_dir,
                          takes=takes)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=out_dir))
    try:
        _export_all(book, chapters, out_dir, tmp, options, report, read_along)
        report.write(out_dir)
    except (OSError, ExportError, sf.LibsndfileError) as exc:
        if isinstance(exc, DiskFullError) or not is_disk_full(exc, out_dir):
            raise
        shutil.rmtree(tmp, ignore_errors=True)  # what was half-written must not count against the space
        raise DiskFullError(out_dir, estimate_bytes(chapters, options), free_bytes(out_dir)) from exc
    finally:
        if not options.keep_temp:
            shutil.rmtree(tmp, ignore_errors=True)
    return report


def _export_all(book: BookInfo, chapters: list[ChapterManifest], out_dir: Path, tmp: Path, options: ExportOptions,
                report: ExportReport, read_along: ReadAlongSource | None) -> None:
    learned: dict[str, float] = {}
    total = book.chapter_count or max(ch.index for ch in chapters)
    done = [_export_chapter(book, ch, total, out_dir, tmp, options, report, learned, read_along is not None)
            for ch in chapters]
    report.chapters = [d.report for d in done]
    book_file = None
    if options.format == "m4b" or options.single_file:
        book_file = _export_single(book, done, out_dir, options, report)
    n_chunks = sum(len(ch.chunks) for ch in chapters)
    report.coverage = check_coverage([(d.chapter.index, d.report.chunks) for d in done], n_chunks,
                                     options.suspicious_ratio, options.norm_seconds_per_phone)
    report.coverage.missing_parts = list(book.missing_parts)
    listener = [ListenerChapter(d.chapter.index, d.name, d.report.chunks, d.report.book_offset_s, d.mp3)
                for d in done]
    report.listener_files = write_listener_outputs(listener, book_file, out_dir, options.subtitles, read_along)


def _export_chapter(book: BookInfo, chapter: ChapterManifest, total: int, out_dir: Path, tmp: Path,
                    options: ExportOptions, report: ExportReport, learned: dict[str, float], want_mp3: bool) -> _Done:
    track = chapter.index
    assembly = assemble_chapter(chapter, options, tmp / f"{track:05d}.pass1.f32")
    per_chapter_file = options.format != "m4b"
    name = chapter_filename(track, total, chapter.title, options.format) if per_chapter_file else ""
    ceiling = float(options.true_peak_dbtp if options.true_peak_dbtp is not None else -1.0)
    # Start from what the codec did to the previous chapter (its errors are systematic), not from scratch.
    margin, offset = learned.get("margin_db", _CODEC_MARGIN_DB[options.format]), learned.get("offset_db", 0.0)
    rms_offset = learned.get("rms_offset_db", 0.0)
    measurement: Measurement | None = None
    for attempt in range(1, _MAX_ENCODE_ATTEMPTS + 1):
        mastered = master_chapter(assembly, tmp / f"{track:05d}.master.f32", options, ceiling - margin, track, offset,
                                  rms_offset)
        if not per_chapter_file:
            break
        path = out_dir / name
        write_soundfile([mastered.path], path, options.format, mastered.sample_rate, int(options.bitrate_kbps or 192),
                        mastered.post_gain_db)
        tag_file(path, options.format, book, chapter.title or f"Chapter {track}", track, total)
        _, measurement = measure_file(path, options.format)
        peak_over = measurement.true_peak_dbtp - ceiling
        # The target includes the RMS guard's shift. A silent chapter has no level to fix (room tone only).
        silent = assembly.loudness_lufs <= SILENCE_DB or options.target_lufs is None
        target = None if options.target_lufs is None or silent else options.target_lufs + mastered.rms_shift_db
        loudness_error = _loudness_error(measurement.loudness_lufs, target)
        rms_ok = silent or _rms_in_window(measurement.rms_db, options.rules.get("rms_db"))
        # When the RMS guard set the level, loudness is not what the file is judged by: RMS is.
        loudness_ok = mastered.rms_shift_db != 0.0 or abs(loudness_error) <= _ENCODED_LOUDNESS_TOLERANCE_LU
        settled = peak_over <= 0 and loudness_ok and rms_ok
        if settled or attempt == _MAX_ENCODE_ATTEMPTS:
            report.files.append(FileReport(name, "chapter", measurement,
                                           check_compliance(measurement, options.preset, options.rules), attempt))
            learned["margin_db"], learned["offset_db"] = margin, offset - 0.5 * loudness_error
            if not silent:  # what the codec does to RMS is systematic too: predict the next chapter with it
                learned["rms_offset_db"] = measurement.rms_db - mastered.rms_after_post_gain
            break
        # The codec moved the figures (peak overshoot, low-pass taking high-frequency energy): re-master
        # with the measured error folded into the limiter ceiling, the loudness target and the RMS guess.
        if peak_over > 0:
            margin += peak_over + _EXTRA_MARGIN_DB
        offset -= loudness_error
        if not rms_ok:
            rms_offset = measurement.rms_db - mastered.rms_after_post_gain
    assembly.path.unlink(missing_ok=True)
    chapter_report = _chapter_report(chapter, name, assembly, mastered, measurement, options,
                                     {"limiter_ceiling_dbtp": ceiling - margin, "target_offset_db": offset})
    mp3 = _read_along_mp3(name, mastered, out_dir, tmp, options, track) if want_mp3 else None
    if per_chapter_file and not options.single_file:
        mastered.path.unlink(missing_ok=True)
    return _Done(chapter, name, mastered, chapter_report, mp3)


def _read_along_mp3(name: str, mastered: Mastered, out_dir: Path, tmp: Path, options: ExportOptions,
                    track: int) -> Path:
    """The chapter as MP3 for the read-along EPUB (EPUB's audio types are MP3 and AAC in MP4): the chapter
    file itself when it is one, else a 64 kb/s encoding of the mastered signal."""
    if options.format == "mp3" and name:
        return out_dir / name
    path = tmp / f"{track:05d}.readalong.mp3"
    write_soundfile([mastered.path], path, "mp3", mastered.sample_rate, _READ_ALONG_KBPS, mastered.post_gain_db)
    return path


def _chapter_report(chapter: ChapterManifest, name: str, assembly: Assembly, mastered: Mastered,
                    measurement: Measurement | None, options: ExportOptions, extra: dict[str, float]) -> ChapterReport:
    mastering = {"assembled_lufs": assembly.loudness_lufs, "gain_db": mastered.gain_db,
                 "mastered_lufs": mastered.loudness_lufs, "mastered_true_peak_dbtp": mastered.true_peak_dbtp,
                 "limiter_reduction_db": mastered.limiter_reduction_db, "post_gain_db": mastered.post_gain_db,
                 "passes": float(mastered.passes), "rms_shift_db": mastered.rms_shift_db, **extra}
    notes = _rms_guard_notes(mastered, options)
    if notes:
        mastering["rms_at_target_db"] = mastered.rms_at_target_db
    if measurement is None:  # M4B: figures are filled from the book file later
        measurement = Measurement(mastered.n_samples / mastered.sample_rate, mastered.sample_rate, 1,
                                  mastered.loudness_lufs, mastered.rms_after_post_gain, 0.0, mastered.true_peak_dbtp,
                                  0.0, 0.0, 0.0, 0.0)
    return ChapterReport(chapter.index, chapter.title, name, 0.0, measurement, mastering, assembly.chunks, notes)


def chapter_marks(chapter: ChapterManifest, placements: list[ChunkPlacement], start_s: float,
                  end_s: float) -> list[ChapterMark]:
    """The chapter's marks in a whole-book file: one per navigation mark (each starting half-way through
    the pause before its chunk), with the chapter's own title first when no mark opens the chapter."""
    title = chapter.title or f"Chapter {chapter.index}"
    starts: list[tuple[str, float]] = []
    for mark in chapter.marks:
        at = start_s
        if mark.chunk > 0 and mark.chunk < len(placements):
            at += 0.5 * (placements[mark.chunk - 1].end_s + placements[mark.chunk].start_s)
        if not starts or at > starts[-1][1]:
            starts.append((mark.title or title, at))
    if not starts or starts[0][1] > start_s:
        starts.insert(0, (title, start_s))
    ends = [at for _, at in starts[1:]] + [end_s]
    return [ChapterMark(name, at, end) for (name, at), end in zip(starts, ends, strict=True)]


def _export_single(book: BookInfo, done: list[_Done], out_dir: Path, options: ExportOptions,
                   report: ExportReport) -> str:
    """Concatenate the mastered chapters into one file (M4B with chapter marks, or MP3/FLAC/WAV); its name."""
    fmt = options.format
    name = book_filename(book.title, fmt)
    path = out_dir / name
    marks: list[ChapterMark] = []
    spans, offset = [], 0.0
    for d in done:
        duration = d.mastered.n_samples / d.mastered.sample_rate
        marks += chapter_marks(d.chapter, d.report.chunks, offset, offset + duration)
        spans.append((offset, offset + duration))
        d.report.book_offset_s = offset
        offset += duration
    rates = {d.mastered.sample_rate for d in done}
    if len(rates) != 1:
        raise ExportError(f"chapters were mastered at different rates {sorted(rates)}; set ExportOptions.sample_rate")
    rate, ceiling = rates.pop(), float(options.true_peak_dbtp if options.true_peak_dbtp is not None else -1.0)
    raws, safety_db = [d.mastered.path for d in done], 0.0
    for attempt in range(1, _MAX_ENCODE_ATTEMPTS + 1):
        gains = [d.mastered.post_gain_db + safety_db for d in done]
        if fmt == "m4b":
            write_m4b(raws, path, rate, int(options.bitrate_kbps or 128), book.title, book.author, marks, gains)
        else:
            write_soundfile(raws, path, fmt, rate, int(options.bitrate_kbps or 192), gains)
        tag_file(path, fmt, book, book.title, 1, 1, marks)
        stats, measurement = measure_file(path, fmt)
        if measurement.true_peak_dbtp <= ceiling or attempt == _MAX_ENCODE_ATTEMPTS:
            break
        # Chapters are already limited; a plain gain trim costs a fraction of a LU of loudness.
        safety_db -= measurement.true_peak_dbtp - ceiling + _EXTRA_MARGIN_DB
    report.files.append(FileReport(name, "book", measurement,
                                   check_compliance(measurement, options.preset, options.rules), attempt))
    if fmt == "m4b":
        for d, (start_s, end_s) in zip(done, spans, strict=True):
            m = measure(stats, start_s, end_s)
            m.format, m.bitrate_mode, m.bitrate_kbps = fmt, measurement.bitrate_mode, measurement.bitrate_kbps
            d.report.measurement, d.report.file = m, name
            d.report.mastering["book_safety_gain_db"] = safety_db
    for d in done:
        d.mastered.path.unlink(missing_ok=True)
    return name
