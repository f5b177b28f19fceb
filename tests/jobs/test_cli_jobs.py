"""The jobs commands end to end with the fake engine: plan, run, status, retry-failed, export, worker."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from jobs.cli import cli
from jobs.db import sqlite_url
from jobs.services import Services
from jobs.store import Store
from tests.fakes.engine import FakeEngineConfig
from tests.fakes.hooks import EnvHooks, disk_full_after
from tests.fakes.run_cli import fake_services
from tests.jobs.conftest import fake_env, render_cmd

ARGS = ["--voice", "narrator", "--format", "wav", "--preset", "none", "--batch-size", "3"]


def invoke(*args: str, services: Services | None = None, catch_exceptions: bool = False) -> Result:
    """`render ARGS` in this process, with the fake engine unless ``services`` says otherwise."""
    obj = services or fake_services(FakeEngineConfig(), EnvHooks())
    return CliRunner().invoke(cli, list(args), obj=obj, catch_exceptions=catch_exceptions)


def test_plan_prints_chapters_and_json(md_book: Path) -> None:
    result = invoke("plan", str(md_book))
    assert result.exit_code == 0, result.output
    assert "The Storm" in result.output and "total: 19 chunks" in result.output
    data = json.loads(invoke("plan", str(md_book), "--json", "--chapters", "2").output)
    assert [c["selected"] for c in data["chapters"]] == [False, True, False]
    assert data["chunks"] == 7 and data["book"]["title"] == "The Lighthouse Keeper"


def test_run_status_retry_export(md_book: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    failing = fake_services(FakeEngineConfig(fail_marker="gulls"), EnvHooks())
    result = invoke(str(md_book), "--out", str(out), *ARGS, services=failing)
    assert result.exit_code != 0 and "1 chunk(s) failed" in result.output
    assert "cannot speak" in result.output
    status = json.loads(invoke("status", str(md_book), "--out", str(out), "--json").output)[0]
    assert status["counts"] == {"pending": 0, "leased": 0, "done": 18, "failed": 1}
    assert status["failures"][0]["text"] == "The gulls were loud again."
    assert status["throughput"]["chunks_per_s"] > 0 and status["eta_s"] == 0.0
    assert set(status["stage_shares"]) >= {"frontend", "prefill", "decode", "vocode"}
    assert status["workers"] == []  # the run's worker stopped and said so
    assert len(list(out.glob("*.wav"))) == 2  # the chapter with the failure was not exported
    text_status = invoke("status", str(md_book), "--out", str(out)).output
    assert "FAILED chapter 3" in text_status and "done: 18" in text_status
    # The output folder alone also names the store.
    assert "done: 18" in invoke("status", str(out)).output

    assert "1 failed chunk(s) queued again" in invoke("retry-failed", str(md_book), "--out", str(out)).output
    result = invoke(str(md_book), "--out", str(out), *ARGS)
    assert result.exit_code == 0, result.output
    assert "19 chunks done, 0 failed" in result.output and "1 rendered now" in result.output
    assert len(list(out.glob("*.wav"))) == 3

    result = invoke("export", str(md_book), "--out", str(out), "--format", "flac", "--preset", "podcast")
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("*.flac"))) == 3
    assert json.loads((out / "report.json").read_text())["format"] == "flac"


def test_status_of_an_unknown_store_is_a_clear_error(tmp_path: Path) -> None:
    result = invoke("status", str(tmp_path / "nothing.epub"), catch_exceptions=True)
    assert result.exit_code != 0 and "no job store" in result.output
    result = invoke("status", catch_exceptions=True)
    assert result.exit_code != 0 and "give BOOK" in result.output


def test_disk_full_is_a_clear_error_and_rerun_completes(md_book: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    full = Services(engines=fake_services().engines, write_audio=disk_full_after(4))
    result = invoke(str(md_book), "--out", str(out), *ARGS, services=full, catch_exceptions=True)
    assert result.exit_code != 0 and "disk full while writing chunk audio" in result.output
    with Store(sqlite_url(out)) as store:
        counts = store.status.counts()
    assert counts == {"pending": 15, "leased": 0, "done": 4, "failed": 0}
    assert not list(out.rglob("*.tmp"))
    result = invoke(str(md_book), "--out", str(out), *ARGS)
    assert result.exit_code == 0 and "15 rendered now" in result.output


def test_sigint_releases_the_batch_and_rerun_resumes(md_book: Path, tmp_path: Path) -> None:
    out, claims = tmp_path / "out", tmp_path / "claims.log"
    env = fake_env(RENDER_FAKE_ENGINE=json.dumps({"delay_s": 0.4}), RENDER_TEST_CLAIM_LOG=str(claims))
    proc = subprocess.Popen(render_cmd(str(md_book), "--out", str(out), *ARGS), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    # signal once the first chunk is written: "finish the chunk in hand" then has one to finish
    # (a signal between the claim and the first chunk correctly leaves nothing done)
    while not list((out / "chunks").rglob("*.wav")) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert claims.exists()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "run the same command again" in err
    with Store(sqlite_url(out)) as store:
        counts = store.status.counts()
        rows = store.status.chunk_rows()
    assert counts["leased"] == 0 and 1 <= counts["done"] < 19
    assert all(r["attempts"] == 0 for r in rows if r["status"] == "pending")
    rerun = subprocess.run(render_cmd(str(md_book), "--out", str(out), *ARGS), env=fake_env(),
                           capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{19 - counts['done']} rendered now" in rerun.stdout


@pytest.mark.postgres
def test_postgresql_store_with_shared_audio_dir_and_two_workers(md_book: Path, tmp_path: Path, pg_url: str) -> None:
    out = tmp_path / "out"
    missing = invoke(str(md_book), "--out", str(out), "--db", pg_url, *ARGS, catch_exceptions=True)
    assert missing.exit_code != 0 and "--audio-dir" in missing.output
    shared = tmp_path / "shared-audio"
    result = invoke(str(md_book), "--out", str(out), "--db", pg_url, "--audio-dir", str(shared),
                    "--workers", "2", *ARGS)
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("*.wav"))) == 3 and not (out / "render.db").exists()
    status = json.loads(invoke("status", str(md_book), "--db", pg_url, "--json").output)[0]
    assert status["counts"]["done"] == 19
    assert len(list(shared.rglob("*.wav"))) == 19


def test_progress_bars_follow_the_store(md_book: Path, tmp_path: Path) -> None:
    from jobs.cli.progress import BookProgress
    from tests.jobs.util import plan_for, run_worker

    store = Store(sqlite_url(tmp_path))
    store.plans.sync_plan(plan_for(md_book))
    with BookProgress(enabled=True) as progress:
        run_worker(store, tmp_path / "chunks", batch_size=5)
        progress.update(store, 1, None)
        assert progress._progress is not None
        book_task = progress._progress.tasks[0]
        assert (book_task.completed, book_task.total) == (19, 19)
        assert "chunks/s" in book_task.fields["rate"]
    assert BookProgress(enabled=False).__enter__()._progress is None
    store.close()


def test_follow_worker_picks_up_new_books_and_stops_on_sigterm(md_book: Path, tmp_path: Path) -> None:
    from tests.jobs.util import plan_for

    url = sqlite_url(tmp_path / "db")
    store = Store(url)  # empty store: a following worker waits for work
    proc = subprocess.Popen(render_cmd("worker", "--db", url, "--audio-dir", str(tmp_path / "audio"), "--follow"),
                            env=fake_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store.plans.sync_plan(plan_for(md_book))
    deadline = time.monotonic() + 90
    while store.status.counts()["done"] < 19 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert store.status.counts()["done"] == 19
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "19 chunks done" in out
    assert store.workers.listed() == []
    store.close()
