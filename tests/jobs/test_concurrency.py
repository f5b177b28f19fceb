"""Four worker processes on one store (SQLite file, then PostgreSQL): no chunk claimed twice, all done."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from jobs.db import sqlite_url
from jobs.store import Store
from tests.jobs.conftest import fake_env, render_cmd, write_book
from tests.jobs.util import plan_for

pytestmark = pytest.mark.slow

N_WORKERS = 4


def _long_book() -> str:
    chapters = []
    for c in range(4):
        sentences = " ".join(f"Sentence {i} of chapter {c} is here." for i in range(14))
        chapters.append(f"## Part {c + 1}\n\n{sentences}\n")
    return "# Many Sentences\n\n" + "\n".join(chapters)


def _run_workers(url: str, tmp_path: Path) -> tuple[Store, list[str]]:
    book = write_book(tmp_path / "src", _long_book())
    store = Store(url)
    store.plans.sync_plan(plan_for(book))
    gate, claims = tmp_path / "go", tmp_path / "claims.log"
    env = fake_env(RENDER_TEST_START_GATE=str(gate), RENDER_TEST_CLAIM_LOG=str(claims),
                   RENDER_FAKE_ENGINE=json.dumps({"delay_s": 0.03}))
    procs = [
        subprocess.Popen(render_cmd("worker", "--db", url, "--audio-dir", str(tmp_path / "audio"), "--batch-size", "2"),
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(N_WORKERS)
    ]
    deadline = time.monotonic() + 120
    while len(store.workers.local()) < N_WORKERS and time.monotonic() < deadline:
        time.sleep(0.05)
    gate.touch()
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    return store, claims.read_text().splitlines()


def _check(store: Store, claim_lines: list[str]) -> None:
    rows = store.status.chunk_rows()
    assert len(rows) == 4 * 15
    claimed = Counter(int(line.split()[1]) for line in claim_lines)
    assert set(claimed) == {r["id"] for r in rows}
    assert max(claimed.values()) == 1, "a chunk was claimed twice"
    claimer = {int(line.split()[1]): line.split()[0] for line in claim_lines}
    assert all(r["status"] == "done" and r["attempts"] == 1 for r in rows)
    assert all(r["completed_by"] == claimer[r["id"]] for r in rows)  # the claimer completed it
    assert len({r["completed_by"] for r in rows}) == N_WORKERS  # every worker did some of the work
    assert store.stats.batch_totals()["chunks"] == len(rows)  # no lost update in the figures either
    assert sum(1 for _ in store.workers.local()) == 0  # all stopped cleanly


def test_four_workers_on_sqlite(tmp_path: Path) -> None:
    store, claims = _run_workers(sqlite_url(tmp_path / "db"), tmp_path)
    _check(store, claims)
    store.close()


@pytest.mark.postgres
def test_four_workers_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    store, claims = _run_workers(pg_url, tmp_path)
    _check(store, claims)
    store.close()
