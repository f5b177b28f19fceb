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


def sample_voice_name(version: str = "v2") -> str:
    """``sample`` for v2 (as before), ``sample-v2ProPlus`` etc. for the other SoVITS versions."""
    return SAMPLE_VOICE if version == "v2" else f"{SAMPLE_VOICE}-{version}"


def ensure_sample_voice(ctx: click.Context, voices_dir: Path | None, version: str = "v2") -> str:
    """Create the tiny random sample voice of ``version`` with `render voice make-random` unless it
    exists; returns its name."""
    from renderer.errors import VoiceError
    from renderer.voice import VoiceStore
    from renderer.voice import voices_dir as default_voices_dir

    name = sample_voice_name(version)
    store = VoiceStore(default_voices_dir(voices_dir))
    try:
        store.get(name)
        return name
    except VoiceError:
        pass
    root = ctx.find_root().command
    assert isinstance(root, click.Group)
    args = ["voice", "make-random", name, "--size", "tiny", "--version", version]
    if voices_dir is not None:
        args += ["--voices-dir", str(voices_dir)]
    click.echo(f"creating the sample voice (tiny random {version} weights)...", err=True)
    sub_ctx = root.make_context("render", args, parent=None)
    with sub_ctx:
        root.invoke(sub_ctx)
    return name
