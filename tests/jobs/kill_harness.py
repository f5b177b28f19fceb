"""Independent kill harness (issue 20, "Done when"): SIGKILL `render BOOK` at random moments, then run it once more.

    python -m tests.jobs.kill_harness [--kills 20] [--workers 3] [--db postgresql://...] [--seed N]
    make kill-harness                       # 20 kills, one worker; KILL_ARGS="--workers 3" for more

Unlike ``test_crash.py`` it uses no pause points: each kill lands at a random time after a run started
(from its first instruction to past the end of an uninterrupted run), on the `render` process or, with
``--workers N``, on any one of its worker processes (a killed `render` leaves its helpers running on, as
a real crash would). When a run ends before its next kill, the next run starts. After the last kill one
plain run of the same command must exit 0 with the book complete, every chunk rendered once (extra claims
only for recorded worker deaths), chapter files byte-identical to an uninterrupted run's and no temporary
files left (the same checks as ``test_crash.py``). The fake engine (``tests/fakes/engine.py``) stands in
for the model, so a run takes seconds. Exit status 0 when every check passed.
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from jobs.db import sqlite_url
from tests.jobs.conftest import fake_env, write_book
from tests.jobs.test_crash import _args, _book_text, _chapter_files, _check_book, _env


def _run_processes(proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    """The `render` process and its worker processes, those still alive."""
    try:
        root = psutil.Process(proc.pid)
        return [root, *root.children()]
    except psutil.Error:
        return []


def _kill_runs(book: Path, out: Path, extra: list[str], kills: int, moment_s: float, rng: random.Random,
               claims: Path, synth_log: Path) -> tuple[int, int, list[psutil.Process]]:
    """Start the command again and again, SIGKILLing one of its processes at random moments, until
    ``kills`` kills hit a live process. Returns (kills, runs started, orphaned workers still running)."""
    hit = runs = 0
    orphans: list[psutil.Process] = []
    while hit < kills:
        proc = subprocess.Popen(_args(book, out, *extra), env=_env(claims, synth_log, delay_s="0.1"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        runs += 1
        started = time.monotonic()
        while hit < kills and proc.poll() is None:
            at = started + rng.uniform(0.0, moment_s)
            while proc.poll() is None and time.monotonic() < at:
                time.sleep(0.01)
            alive = [p for p in _run_processes(proc) if p.is_running()]
            if proc.poll() is not None or not alive:
                break
            victim = rng.choice(alive)
            try:
                victim.send_signal(signal.SIGKILL)
                hit += 1
            except psutil.NoSuchProcess:
                continue
            started = time.monotonic()
            if victim.pid == proc.pid:
                orphans += [p for p in alive if p.pid != proc.pid]
        proc.wait(timeout=600)
    return hit, runs, [p for p in orphans if p.is_running()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs that must hit a live process.")
    parser.add_argument("--workers", type=int, default=1, help="`render --workers N`: kills hit any of them.")
    parser.add_argument("--db", help="Job store URL (default: render.db in the output folder).")
    parser.add_argument("--seed", type=int, default=time.time_ns() % 1_000_000, help="Random seed.")
    parser.add_argument("--dir", type=Path, help="Work folder (default: a new temporary one, kept).")
    options = parser.parse_args(argv)
    work = options.dir or Path(tempfile.mkdtemp(prefix="kill-harness-"))
    rng = random.Random(options.seed)
    book = write_book(work / "src", _book_text())

    started = time.monotonic()
    base = subprocess.run(_args(book, work / "baseline"), env=fake_env(), capture_output=True, text=True)
    if base.returncode != 0:
        print(f"uninterrupted run failed: {base.stderr}", file=sys.stderr)
        return 1
    moment_s = 1.2 * (time.monotonic() - started) + 0.1 * 39 / max(1, options.workers)
    expected = _chapter_files(work / "baseline")

    out, claims, synth_log = work / "out", work / "claims.log", work / "synth.log"
    audio = work / "shared-audio" if options.db else out / "chunks"
    extra = ["--workers", str(options.workers)] + (["--db", options.db, "--audio-dir", str(audio)] if options.db
                                                    else [])
    hit, runs, orphans = _kill_runs(book, out, extra, options.kills, moment_s, rng, claims, synth_log)
    psutil.wait_procs(orphans, timeout=600)  # helpers of a killed `render` finish the queue and stop

    final = subprocess.run(_args(book, out, *extra), env=_env(claims, synth_log), capture_output=True, text=True)
    print(f"seed {options.seed}: {hit} SIGKILLs over {runs} runs (kill moments 0-{moment_s:.1f} s after each "
          f"start), then one plain run: exit {final.returncode}; work folder {work}")
    if final.returncode != 0:
        print(final.stderr, file=sys.stderr)
        return 1
    _check_book(options.db or sqlite_url(out), claims, out, audio, expected)
    print("book complete: every chunk done once, chapter files byte-identical to an uninterrupted run, "
          "no temporary files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
