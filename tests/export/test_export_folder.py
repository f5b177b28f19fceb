"""The output folder holds exactly the current export (stale chapter files go, foreign files stay), and a
full disk during export is a clear error (exit 2) that leaves the previous export as it was."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from export.publish import MANIFEST_NAME
from tests.export.outputs_kit import SAMPLE, plan_json, render
from tests.fakes.run_cli import RUN_CLI

pytestmark = pytest.mark.slow
WAV = ["--voice", "narrator", "--format", "wav", "--preset", "none"]


def _names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("render.db")}


def _chapter_file(number: int, title: str, ext: str) -> str:
    return f"{number:02d} - {title}.{ext}"


def test_stale_chapter_files_are_replaced_and_foreign_files_kept(tmp_path: Path) -> None:
    chapters = {c["number"]: c["title"] for c in plan_json(SAMPLE)["chapters"]}
    assert len(chapters) >= 4
    out = tmp_path / "out"
    out.mkdir()
    foreign = {"my notes.txt": "mine", _chapter_file(1, "My own recording", "wav"): "not written by render"}
    for name, text in foreign.items():
        (out / name).write_text(text, encoding="utf-8")
    render(str(SAMPLE), "--out", str(out), "--chapters", "3-4", *WAV)
    partial = {_chapter_file(n, chapters[n], "wav") for n in (3, 4)}
    assert _names(out) == set(foreign) | partial | {"report.json", "report.txt", MANIFEST_NAME}

    render(str(SAMPLE), "--out", str(out), *WAV)  # the whole book: numbered by plan chapter, no duplicates
    whole = {_chapter_file(n, t, "wav") for n, t in chapters.items()}
    assert _names(out) == set(foreign) | whole | {"report.json", "report.txt", MANIFEST_NAME}

    render("export", str(SAMPLE), "--out", str(out), "--format", "flac", "--preset", "none", "--subtitles", "srt")
    flac = {_chapter_file(n, t, ext) for n, t in chapters.items() for ext in ("flac", "srt")}
    assert _names(out) == set(foreign) | flac | {"report.json", "report.txt", MANIFEST_NAME}
    for name, text in foreign.items():
        assert (out / name).read_text(encoding="utf-8") == text
    assert not list(out.glob(".export-*"))


@pytest.fixture()
def small_tmpfs(tmp_path: Path) -> Path:
    """A 3 MB tmpfs (root only; the test skips, with the reason, where mounting is not allowed)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a full disk is simulated with a small tmpfs, which needs root (and `mount`)")
    target = tmp_path / f"tiny-{uuid.uuid4().hex[:6]}"
    target.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(target)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield target
    subprocess.run(["umount", str(target)], check=False)


def test_disk_full_during_export_is_a_clear_error_and_keeps_the_previous_export(tmp_path: Path,
                                                                                 small_tmpfs: Path) -> None:
    out = tmp_path / "out"
    render(str(SAMPLE), "--out", str(out), "--chapters", "4", *WAV)
    render("export", str(SAMPLE), "--out", str(out), "--format", "mp3", "--preset", "none", "--to", str(small_tmpfs))
    (small_tmpfs / "keep me.txt").write_text("mine", encoding="utf-8")
    before = {p.name: p.read_bytes() for p in small_tmpfs.iterdir() if p.is_file()}
    assert any(name.endswith(".mp3") for name in before)

    render(str(SAMPLE), "--out", str(out), *WAV)  # every chapter now: too much for 3 MB
    result = subprocess.run([*RUN_CLI, "export", str(SAMPLE), "--out", str(out), "--format", "mp3", "--preset",
                             "none", "--to", str(small_tmpfs)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    message = result.stderr
    assert f"disk full while exporting to {small_tmpfs}:" in message and "needs about" in message, message
    assert "Traceback" not in message
    after = {p.name: p.read_bytes() for p in small_tmpfs.iterdir() if p.is_file()}
    assert after == before  # nothing half-written in place of the previous export
    assert [p.name for p in small_tmpfs.iterdir() if p.is_dir()] == []  # no staging or temp folder left
