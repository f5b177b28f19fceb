"""Crash test: a real `render` process killed with SIGKILL at many points; reruns finish the book.

Checks: every chunk ends done exactly once; a chunk done before a kill is never synthesised again;
the export covers every chunk once; the final chapter audio equals an uninterrupted run's.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from jobs.db import sqlite_url
from jobs.store import Store
from tests.jobs.conftest import fake_env, render_cmd, write_book

pytestmark = pytest.mark.slow

# (point, n-th passage in that process). Rendering-phase points first, then the export phase.
KILL_POINTS = [
    ("plan", 1),  # inside the transaction that stores the plan
    ("claim", 1),  # inside the claim transaction
    ("synth", 2),  # audio made, nothing written
    ("write", 2),  # temporary file half written
    ("rename", 3),  # file in place, chunk not marked done
    ("done", 2),  # batch partly marked done
    ("random", 0),  # a random moment
    ("export", 1),  # chapter files in the staging folder
    ("publish", 1),  # some chapter files moved into place
]


def _args(book: Path, out: Path, max_attempts: int = 10) -> list[str]:
    # Several kills may hit the same chunk; the attempt cap has its own test below.
    return render_cmd(str(book), "--voice", "narrator", "--out", str(out), "--batch-size", "2",
                      "--format", "wav", "--preset", "none", "--max-attempts", str(max_attempts))


def _kill_at(book: Path, out: Path, point: str, nth: int, log: Path, seed: int) -> tuple[int, bool]:
    marker = out.parent / f"paused-{point}"
    env = fake_env(RENDER_FAKE_ENGINE=json.dumps({"log_path": str(log), "delay_s": 0.01}))
    if point != "random":
        env.update(RENDER_TEST_PAUSE_AT=f"{point}:{nth}", RENDER_TEST_PAUSE_FILE=str(marker))
    proc = subprocess.Popen(_args(book, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    if point == "random":
        time.sleep(2.5 + random.Random(seed).random())
    else:
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    reached = marker.exists() or point == "random"
    still_running = proc.poll() is None
    if still_running:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert reached, f"never reached pause point {point}:{nth}; stderr:\n{stderr}"
    assert still_running or point == "random", f"exited before the kill at {point}; stderr:\n{stderr}"
    return proc.pid, still_running


def _done_keys(out: Path) -> set[str]:
    if not (out / "render.db").exists():
        return set()
    with Store(sqlite_url(out)) as store:
        return {r["render_key"] for r in store.status.chunk_rows() if r["status"] == "done"}


def _synthesised_by(log: Path, pid: int) -> list[str]:
    if not log.exists():
        return []
    return [line.split()[1] for line in log.read_text().splitlines() if line.split()[0] == str(pid)]


def _chapter_audio(out: Path) -> dict[str, np.ndarray]:
    return {p.name: sf.read(p, dtype="float32")[0] for p in sorted(out.glob("*.wav"))}


def test_killed_render_resumes_to_the_same_result(tmp_path: Path) -> None:
    book = write_book(tmp_path / "src")
    log = tmp_path / "synth.log"

    baseline = tmp_path / "baseline"
    done = subprocess.run(_args(book, baseline), env=fake_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    expected = _chapter_audio(baseline)
    assert len(expected) == 3

    out = tmp_path / "crashy"
    killed_points = []
    for seed, (point, nth) in enumerate(KILL_POINTS):
        before = _done_keys(out)
        pid, killed = _kill_at(book, out, point, nth, log, seed)
        if killed:
            killed_points.append(point)
        # a chunk finished before this run was never synthesised again
        assert not before & set(_synthesised_by(log, pid)), point
        if point in ("export", "publish"):
            assert len(_done_keys(out)) == 19
    assert len(killed_points) >= 8

    before = _done_keys(out)
    final = subprocess.Popen(_args(book, out), env=fake_env(RENDER_FAKE_ENGINE=json.dumps({"log_path": str(log)})),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, stderr = final.communicate(timeout=120)
    assert final.returncode == 0, stderr
    assert not before & set(_synthesised_by(log, final.pid))

    with Store(sqlite_url(out)) as store:
        rows = store.status.chunk_rows()
        assert len(rows) == 19 and all(r["status"] == "done" for r in rows)
        assert len({(r["chapter_position"], r["idx"]) for r in rows}) == 19
        assert all(1 <= r["attempts"] <= len(KILL_POINTS) for r in rows)
        for r in rows:
            assert (out / "chunks" / r["audio_path"]).is_file()
    report = json.loads((out / "report.json").read_text())
    coverage = report["coverage"]
    assert coverage["complete"] and coverage["n_chunks"] == coverage["n_placed"] == 19
    assert not coverage["duplicate_keys"]
    assert not list(out.glob(".export-staging*")) and not list((out / "chunks").rglob("*.tmp"))

    produced = _chapter_audio(out)
    assert produced.keys() == expected.keys()
    for name, audio in expected.items():
        assert np.array_equal(produced[name], audio), name


def test_chunk_that_keeps_killing_the_worker_ends_failed(tmp_path: Path) -> None:
    book = write_book(tmp_path / "src")
    out = tmp_path / "out"
    env = fake_env(RENDER_FAKE_ENGINE=json.dumps({"crash_marker": "great lamp"}))
    args = _args(book, out, max_attempts=2)
    codes = [subprocess.run(args, env=env, capture_output=True, text=True, timeout=120) for _ in range(3)]
    assert [c.returncode for c in codes[:2]] == [-signal.SIGKILL, -signal.SIGKILL]
    last = codes[2]
    assert last.returncode == 2 and "1 chunk(s) failed" in last.stderr, last.stderr
    with Store(sqlite_url(out)) as store:
        failures = store.status.failures()
        counts = store.status.counts()
    assert [f.text for f in failures] == ["He lit the great lamp."]
    assert "2 times" in failures[0].error
    assert counts["done"] == 18 and counts["leased"] == 0
    # chapters without the failed chunk were exported, the one with it was not
    names = sorted(p.name for p in out.glob("*.wav"))
    assert len(names) == 2 and "The Ship" in names[0] and "The Morning" in names[1]
