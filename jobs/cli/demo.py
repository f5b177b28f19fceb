"""`render demo`: the sample voice (made on first use) and the sample book shipped in samples/."""

from __future__ import annotations

from pathlib import Path

import click

from jobs.errors import JobsError

SAMPLE_VOICE = "sample"


def sample_book() -> Path:
    """samples/sample-book.epub of the source checkout."""
    root = Path(__file__).resolve().parents[2]
    book = root / "samples" / "sample-book.epub"
    if not book.is_file():
        raise JobsError(f"the sample book is missing: {book}")
    return book


def ensure_sample_voice(ctx: click.Context, voices_dir: Path | None) -> None:
    """Create the tiny random sample voice with `render voice make-random` unless it exists."""
    from renderer.errors import VoiceError
    from renderer.voice import VoiceStore
    from renderer.voice import voices_dir as default_voices_dir

    store = VoiceStore(default_voices_dir(voices_dir))
    try:
        store.get(SAMPLE_VOICE)
        return
    except VoiceError:
        pass
    root = ctx.find_root().command
    assert isinstance(root, click.Group)
    args = ["voice", "make-random", SAMPLE_VOICE, "--size", "tiny"]
    if voices_dir is not None:
        args += ["--voices-dir", str(voices_dir)]
    click.echo("creating the sample voice (tiny random weights)...", err=True)
    sub_ctx = root.make_context("render", args, parent=None)
    with sub_ctx:
        root.invoke(sub_ctx)
