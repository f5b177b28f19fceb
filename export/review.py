"""``review.html``: the doubtful chunks of a book, worst first, for a person to listen to and decide.

One self-contained page (inline CSS and a few lines of JS, no server, no network): per chunk its text,
chapter and time in the chapter file, and per take the reasons it was doubted, a waveform picture
(inline SVG) and an ``<audio>`` player, with the exact commands to re-roll, accept or choose a take.

Audio is linked by a path relative to the page, not embedded: a doubtful chunk has up to three takes
of 32-bit float WAV at 32 kHz (128 kB per second), so embedding a hundred doubtful chunks would make a
page of hundreds of MB that browsers open slowly; linked files load only when played (``preload=
"metadata"`` reads the header for the duration). The page therefore stays next to the chunk audio
(``<out>/review.html`` and ``<out>/chunks/``); move the folder as a whole. ``embed_audio=True`` gives
a portable single file instead (16-bit PCM data URIs: half the size of float, fine for listening).

The input is plain data (:class:`ReviewPage`); the job layer fills it from the store.
"""

from __future__ import annotations

import base64
import html
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from export.errors import ExportError

__all__ = ["ReviewChunk", "ReviewPage", "ReviewTake", "waveform_svg", "write_review"]

#: Columns of the waveform picture (one min/max pair each).
WAVEFORM_COLUMNS = 240
WAVEFORM_HEIGHT = 48


@dataclass(frozen=True)
class ReviewTake:
    """One take of a chunk: its number (1 = first rendering), seed, score and reasons ((code, detail)
    pairs), its audio file (None once deleted), whether it is the take in use, and the command that
    chooses it."""

    number: int
    seed: int
    score: float
    reasons: tuple[tuple[str, str], ...]
    audio: Path | None
    kept: bool
    use_command: str


@dataclass(frozen=True)
class ReviewChunk:
    """A doubtful chunk: where it is, what it says, its takes and the commands that resolve it.

    ``start_s`` is the time of the chunk's speech in ``chapter_file`` (None before export)."""

    chunk_id: int
    chapter_number: int
    chapter_title: str
    text: str
    score: float
    takes: tuple[ReviewTake, ...]
    reroll_command: str
    accept_command: str
    chapter_file: str | None = None
    start_s: float | None = None


@dataclass(frozen=True)
class ReviewPage:
    """Everything on the page: the book, counts for the summary line, and the doubtful chunks."""

    book_title: str
    author: str
    chunks: tuple[ReviewChunk, ...]
    counts: dict[str, int] = field(default_factory=dict)  # e.g. rerolled, doubtful, accepted, chunks
    notes: tuple[str, ...] = ()


def write_review(page: ReviewPage, path: str | Path, *, embed_audio: bool = False) -> Path:
    """Write the page to ``path`` (chunks worst first) and return it; written whole, then renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ordered = sorted(page.chunks, key=lambda c: (-c.score, c.chapter_number, c.chunk_id))
    body = "\n".join(_chunk_html(c, rank, path.parent, embed_audio) for rank, c in enumerate(ordered, start=1))
    document = _PAGE.format(title=_e(f"Review: {page.book_title}"), book=_e(page.book_title), author=_e(page.author),
                            summary=_summary(page, len(ordered)), notes=_notes(page.notes), chunks=body or _EMPTY,
                            css=_CSS, js=_JS)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(document, encoding="utf-8")
    os.replace(tmp, path)
    return path


# ------------------------------------------------------------------------------------------ pieces

def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _summary(page: ReviewPage, n_doubtful: int) -> str:
    counts = dict(page.counts)
    parts = [f"<b>{n_doubtful}</b> doubtful chunk{'s' if n_doubtful != 1 else ''}, worst first"]
    labels = (("chunks", "chunks in the book"), ("rerolled", "takes re-rolled automatically"),
              ("accepted", "accepted by a person"))
    parts += [f"{counts[key]} {label}" for key, label in labels if key in counts]
    return " · ".join(parts)


def _notes(notes: tuple[str, ...]) -> str:
    if not notes:
        return ""
    return "<ul class='notes'>" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>"


def _clock(seconds: float) -> str:
    minutes, rest = divmod(max(0.0, seconds), 60.0)
    return f"{int(minutes)}:{rest:04.1f}"


def _chunk_html(chunk: ReviewChunk, rank: int, page_dir: Path, embed: bool) -> str:
    where = f"Chapter {chunk.chapter_number}"
    if chunk.chapter_title:
        where += f" · {_e(chunk.chapter_title)}"
    if chunk.chapter_file and chunk.start_s is not None:
        where += f" · at <b>{_clock(chunk.start_s)}</b> in {_e(chunk.chapter_file)}"
    else:
        where += " · not exported yet"
    takes = "\n".join(_take_html(chunk, take, page_dir, embed) for take in chunk.takes)
    return (f"<section class='chunk' id='chunk-{chunk.chunk_id}' data-chunk='{chunk.chunk_id}'>"
            f"<h2><span class='rank'>#{rank}</span> chunk {chunk.chunk_id} "
            f"<span class='score'>score {chunk.score:.2f}</span></h2>"
            f"<p class='where'>{where}</p><blockquote>{_e(chunk.text)}</blockquote>"
            f"<div class='takes'>{takes}</div>"
            f"<p class='commands'>{_command(chunk.reroll_command, 'render another take')} "
            f"{_command(chunk.accept_command, 'accept the kept take as it is')}</p></section>")


def _take_html(chunk: ReviewChunk, take: ReviewTake, page_dir: Path, embed: bool) -> str:
    reasons = "".join(f"<li><code>{_e(code)}</code> {_e(detail)}</li>" for code, detail in take.reasons)
    if not reasons:
        reasons = "<li>no doubts</li>"
    if take.audio is not None and take.audio.is_file():
        samples, rate = _read_audio(take.audio)
        picture = waveform_svg(samples, rate)
        src = _data_uri(samples, rate) if embed else _relative_url(take.audio, page_dir)
        player = f"<audio controls preload='metadata' src='{_e(src)}'></audio>"
    else:
        picture, player = "<div class='gone'>audio deleted</div>", ""
    kept = " kept" if take.kept else ""
    badge = "<span class='badge'>in use</span>" if take.kept else ""
    return (f"<div class='take{kept}' data-take='{take.number}'>"
            f"<div class='head'>take {take.number} {badge} <span class='seed'>seed {take.seed}</span> "
            f"<span class='score'>score {take.score:.2f}</span></div>"
            f"{picture}{player}<ul class='reasons'>{reasons}</ul>"
            f"{_command(take.use_command, f'use take {take.number}')}</div>")


def _command(command: str, title: str) -> str:
    return (f"<span class='cmd' title='{_e(title)}'><code>{_e(command)}</code>"
            f"<button type='button' class='copy' data-command='{_e(command)}'>copy</button></span>")


def _read_audio(path: Path) -> tuple[np.ndarray, int]:
    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (OSError, RuntimeError) as exc:
        raise ExportError(f"{path}: cannot read take audio for the review page ({exc})") from None
    return samples.mean(axis=1), int(rate)


def _relative_url(audio: Path, page_dir: Path) -> str:
    relative = os.path.relpath(audio.resolve(), page_dir.resolve())
    return "/".join(_url_part(part) for part in Path(relative).parts)


def _url_part(part: str) -> str:
    from urllib.parse import quote

    return quote(part, safe="")


def _data_uri(samples: np.ndarray, rate: int) -> str:
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(samples, -1.0, 1.0), rate, format="WAV", subtype="PCM_16")
    return "data:audio/wav;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def waveform_svg(samples: np.ndarray, rate: int, columns: int = WAVEFORM_COLUMNS,
                 height: int = WAVEFORM_HEIGHT) -> str:
    """An inline SVG of the waveform: the min/max of each of ``columns`` slices, full scale = ``height``."""
    seconds = samples.size / float(rate) if rate else 0.0
    label = f"waveform, {seconds:.2f} s"
    if samples.size == 0:
        return f"<svg class='wave' role='img' aria-label='{label}' viewBox='0 0 {columns} {height}'></svg>"
    edges = np.linspace(0, samples.size, columns + 1).astype(np.int64)
    highs = np.array([samples[a:max(b, a + 1)].max() for a, b in zip(edges[:-1], edges[1:], strict=True)])
    lows = np.array([samples[a:max(b, a + 1)].min() for a, b in zip(edges[:-1], edges[1:], strict=True)])
    middle = height / 2.0
    top = [f"{x},{middle - middle * float(np.clip(v, -1, 1)):.1f}" for x, v in enumerate(highs)]
    bottom = [f"{x},{middle - middle * float(np.clip(v, -1, 1)):.1f}" for x, v in reversed(list(enumerate(lows)))]
    points = " ".join(top + bottom)
    return (f"<svg class='wave' role='img' aria-label='{label}' viewBox='0 0 {columns} {height}' "
            f"preserveAspectRatio='none'><line x1='0' y1='{middle}' x2='{columns}' y2='{middle}'/>"
            f"<polygon points='{points}'/></svg>")


_EMPTY = "<p class='empty'>No doubtful chunks: every take passed its checks or was accepted.</p>"

_CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:980px;padding:1em 1.5em;color:#1d232a;
background:#f6f7f9}
header h1{font-size:1.5em;margin:.2em 0}header p{margin:.2em 0;color:#4a5561}
.notes{color:#7a4b00;background:#fff6e0;border:1px solid #f0d9a0;padding:.5em 1.5em;border-radius:6px}
.chunk{background:#fff;border:1px solid #d8dde3;border-radius:8px;padding:.8em 1.2em;margin:1.2em 0}
.chunk h2{font-size:1.05em;margin:.1em 0}.rank{color:#8a94a0}.score{color:#b3261e;font-weight:600}
.where{margin:.2em 0;color:#4a5561}blockquote{margin:.6em 0;padding:.4em .9em;border-left:4px solid #4a7bd0;
background:#f0f4fb;font-size:1.05em}
.takes{display:grid;grid-template-columns:repeat(auto-fill,minmax(290px,1fr));gap:.8em}
.take{border:1px solid #e1e5ea;border-radius:6px;padding:.5em .7em;background:#fbfcfd}
.take.kept{border-color:#4a7bd0;box-shadow:0 0 0 1px #4a7bd0 inset}
.head{font-weight:600;margin-bottom:.3em}.seed{color:#8a94a0;font-weight:400;font-size:.85em}
.badge{background:#4a7bd0;color:#fff;border-radius:4px;padding:0 .4em;font-size:.8em}
svg.wave{display:block;width:100%;height:48px;background:#eef1f5;border-radius:4px}
svg.wave polygon{fill:#4a7bd0}svg.wave line{stroke:#b9c3cf;stroke-width:.5}
audio{width:100%;margin:.3em 0;height:36px}.gone{color:#8a94a0;font-style:italic}
.reasons{margin:.3em 0;padding-left:1.2em;font-size:.9em}.reasons code{color:#b3261e}
.cmd{display:inline-flex;align-items:center;gap:.3em;margin:.2em .6em .2em 0;max-width:100%}
.cmd code{background:#1d232a;color:#e8edf2;padding:.15em .5em;border-radius:4px;font-size:.85em;user-select:all;
white-space:nowrap;overflow-x:auto;min-width:0}
button.copy{font-size:.75em;padding:.1em .5em;cursor:pointer}
.empty{font-size:1.2em;color:#2f6b2f}
"""

_JS = """
document.addEventListener('click', function (event) {
  var button = event.target.closest('button.copy');
  if (!button) { return; }
  var text = button.getAttribute('data-command');
  function done() { button.textContent = 'copied'; setTimeout(function () { button.textContent = 'copy'; }, 1200); }
  function fallback() {
    var area = document.createElement('textarea');
    area.value = text; document.body.appendChild(area); area.select();
    try { document.execCommand('copy'); done(); } catch (e) { button.textContent = 'select it'; }
    document.body.removeChild(area);
  }
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, fallback);
  } else { fallback(); }
});
document.addEventListener('play', function (event) {
  document.querySelectorAll('audio').forEach(function (other) { if (other !== event.target) { other.pause(); } });
}, true);
"""

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{title}</title><style>{css}</style></head>
<body><header><h1>{book}</h1><p>{author}</p><p class="summary">{summary}</p>{notes}
<p>Listen to each take; then run one of the commands under it. Re-export the book afterwards.</p></header>
<main>
{chunks}
</main>
<script>{js}</script>
</body></html>
"""
