"""A lost, damaged or unwritable store, a full disk and the store password (issues 24.5, 24.7 and 20.4).

Each case runs `render BOOK` in this process with the fake engine and checks what the user is told
(which file, what is wrong, what to do) and that nothing rendered is lost.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from click.testing import Result

from jobs.events import JobHooks, Point
from jobs.pipeline import RenderSettings, _spawn_workers
from jobs.services import Services
from tests.fakes.engine import FakeEngineConfig
from tests.fakes.hooks import EnvHooks
from tests.fakes.run_cli import fake_services
from tests.jobs.test_cli_jobs import ARGS, invoke


def _run(book: Path, out: Path, services: Services | None = None) -> Result:
    return invoke(str(book), "--out", str(out), *ARGS, catch_exceptions=True, services=services)


def _logging(log: Path) -> Services:
    """Fake engine that appends one line per chunk it synthesises to ``log``."""
    return fake_services(FakeEngineConfig(log_path=str(log)), EnvHooks())


def _lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def _remove_store(out: Path) -> None:
    for name in ("render.db", "render.db-wal", "render.db-shm"):
        (out / name).unlink(missing_ok=True)


def _chapters(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.wav"))}


def test_lost_store_reuses_the_chunk_audio_on_disk_after_checking_it(md_book: Path, tmp_path: Path) -> None:
    out, log = tmp_path / "out", tmp_path / "synth.log"
    assert _run(md_book, out, _logging(log)).exit_code == 0
    first, rendered = _chapters(out), len(_lines(log))
    assert rendered == 19
    _remove_store(out)
    damaged = sorted((out / "chunks").rglob("*.wav"))[0]
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])  # a truncated chunk file

    again = _run(md_book, out, _logging(log))
    assert again.exit_code == 0, again.output
    assert "reused 18 chunk(s) whose audio was already on disk" in again.output
    assert len(_lines(log)) == rendered + 1  # only the damaged chunk was rendered again
    assert _chapters(out) == first


def _damage(db: Path) -> None:
    """Overwrite every page after the header page with garbage (SQLite: "database disk image is malformed")."""
    data = bytearray(db.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[page:] = b"\xa5" * (len(data) - page)
    db.write_bytes(bytes(data))


def test_damaged_store_names_the_file_and_the_remedy_which_works(md_book: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _run(md_book, out).exit_code == 0
    _damage(out / "render.db")

    failed = _run(md_book, out)
    assert failed.exit_code != 0
    db = out.resolve() / "render.db"
    assert f"the job store {db} is damaged" in failed.output and f"mv {db} {db}.damaged" in failed.output

    (out / "render.db").rename(out / "render.db.damaged")  # what the message says to do
    (out / "render.db-shm").unlink(missing_ok=True)
    again = _run(md_book, out)
    assert again.exit_code == 0, again.output
    assert "reused 19 chunk(s)" in again.output


@pytest.fixture
def mount_point(tmp_path: Path) -> Iterator[Path]:
    """An empty folder where the test may mount a tmpfs (root only); unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small or read-only tmpfs needs root")
    folder = tmp_path / "mnt"
    folder.mkdir()
    yield folder
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _mount(folder: Path, options: str) -> None:
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


def test_read_only_output_folder_says_read_only(md_book: Path, mount_point: Path) -> None:
    _mount(mount_point, "size=1m,ro")
    result = _run(md_book, mount_point / "out")
    assert result.exit_code != 0
    assert "read-only" in result.output and str(mount_point) in result.output, result.output
    assert "unable to open database file" not in result.output.split("read-only")[0]


def test_full_disk_names_the_folder_and_the_same_command_completes_after_space_is_freed(
    md_book: Path, mount_point: Path
) -> None:
    _mount(mount_point, "size=640k")
    out = mount_point / "out"
    full = _run(md_book, out)
    assert full.exit_code != 0
    assert "full" in full.output and str(mount_point) in full.output, full.output
    assert "run the same command again" in full.output
    resized = subprocess.run(["mount", "-o", "remount,size=64m", str(mount_point)], capture_output=True)
    assert resized.returncode == 0
    again = _run(md_book, out)
    assert again.exit_code == 0, again.output
    assert len(list(out.glob("*.wav"))) == 3 and not list(out.rglob("*.tmp"))


class _DeleteStoreOnce(JobHooks):
    """Deletes the run's SQLite store the first time a chunk is marked done (a store lost mid-run)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.fired = False

    def at(self, point: Point) -> None:
        if point == "done" and not self.fired:
            self.fired = True
            _remove_store(self.out)


def test_store_lost_mid_run_is_not_reported_as_success(md_book: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    services = fake_services(FakeEngineConfig(), EnvHooks())
    services = Services(engines=services.engines, hooks=_DeleteStoreOnce(out), write_audio=services.write_audio,
                        worker_command=services.worker_command)
    result = _run(md_book, out, services)
    assert result.exit_code != 0
    assert f"the job store {out.resolve() / 'render.db'} was deleted while this run used it" in result.output
    again = _run(md_book, out)
    assert again.exit_code == 0, again.output
    assert "reused" in again.output


def test_helper_workers_get_the_store_url_from_the_environment_not_their_command_line(tmp_path: Path) -> None:
    url = "postgresql+psycopg://render:s3cret-Pa55@db.example:5432/books"
    settings = RenderSettings(book=tmp_path / "b.md", voice="narrator", out_dir=tmp_path)
    # Stand-in children that live long enough to be looked at; they get the worker's arguments.
    sleeper = (sys.executable, "-c", "import time; time.sleep(30)")
    children = _spawn_workers(settings, sleeper, url, tmp_path / "audio", 2)
    try:
        for child in children:
            seen = psutil.Process(child.pid)
            command_line = " ".join(seen.cmdline())
            assert "worker" in command_line and "--audio-dir" in command_line
            assert "s3cret-Pa55" not in command_line and "--db" not in command_line
            assert seen.environ()["RENDER_DB"] == url  # readable by the owner only
    finally:
        for child in children:
            child.kill()
            child.wait()
