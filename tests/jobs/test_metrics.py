"""Run metrics: `render BOOK --metrics FILE --metrics-port N` scraped over HTTP while it renders, and the
file `render worker --metrics FILE` leaves; both parsed with prometheus_client's own parser."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobs.cli import cli
from jobs.db import sqlite_url
from jobs.metrics import CONTENT_TYPE, STAGES
from tests.fakes.engine import FakeEngineConfig
from tests.fakes.hooks import EnvHooks
from tests.fakes.run_cli import fake_services
from tests.jobs.conftest import fake_env, render_cmd
from tests.jobs.util import planned_store

parser = pytest.importorskip("prometheus_client.parser", reason="prometheus-client (a dev dependency) is missing")
ARGS = ["--voice", "narrator", "--format", "wav", "--preset", "none", "--batch-size", "2"]


def _families(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Metric samples by name, through the reference parser (it raises on a malformed page)."""
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in parser.text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


def _value(families: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return next(v for found, v in families[name] if all(found.get(k) == x for k, x in labels.items()))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(url: str) -> tuple[str, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.headers["Content-Type"], response.read().decode("utf-8")


def test_render_serves_metrics_while_it_runs_and_leaves_the_final_file(md_book: Path, tmp_path: Path) -> None:
    out, prom, port = tmp_path / "out", tmp_path / "metrics" / "render.prom", _free_port()
    env = fake_env(RENDER_FAKE_ENGINE=json.dumps({"delay_s": 0.15}))
    proc = subprocess.Popen(render_cmd(str(md_book), "--out", str(out), *ARGS, "--metrics", str(prom),
                                       "--metrics-port", str(port)),
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        seen: list[dict[str, list[tuple[dict[str, str], float]]]] = []
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                content_type, text = _scrape(f"http://127.0.0.1:{port}/metrics")
            except OSError:
                time.sleep(0.2)  # not listening yet
                continue
            assert content_type == CONTENT_TYPE
            seen.append(_families(text))
            time.sleep(0.3)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    running = [f for f in seen if "render_chunks" in f and 0 < _value(f, "render_chunks", state="pending")]
    assert running, "no scrape caught the run with chunks still pending"
    final = _families(prom.read_text(encoding="utf-8"))
    total = sum(v for _, v in final["render_chunks"])
    assert total == 19 and _value(final, "render_chunks", state="done") == 19
    assert _value(final, "render_chunks", state="pending") == 0 and _value(final, "render_chunks", state="failed") == 0
    assert final["render_chunks_done_total"][0][1] == 19
    assert final["render_audio_seconds_total"][0][1] > 0 and final["render_tokens_per_second"][0][1] > 0
    assert 0 < final["render_batch_fill_ratio"][0][1] <= 1
    assert {labels["stage"] for labels, _ in final["render_stage_seconds_total"]} == set(STAGES)
    assert final["render_rerolled_takes_total"][0][1] == 0
    assert final["render_peak_rss_bytes"][0][1] > 10e6
    assert all(labels["worker"] for samples in final.values() for labels, _ in samples)
    assert not list(prom.parent.glob(".*.tmp"))  # written atomically, no temp file left


def test_worker_keeps_a_metrics_file_for_the_whole_queue(md_book: Path, tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    store, _ = planned_store(url, md_book)
    store.close()
    prom = tmp_path / "worker.prom"
    result = CliRunner().invoke(cli, ["worker", "--db", url, "--audio-dir", str(tmp_path / "audio"),
                                      "--batch-size", "4", "--metrics", str(prom)],
                                obj=fake_services(FakeEngineConfig(), EnvHooks()), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    final = _families(prom.read_text(encoding="utf-8"))
    assert _value(final, "render_chunks", state="done") == final["render_chunks_done_total"][0][1] == 19
    assert final["render_batches_total"][0][1] >= 19 / 8
    worker_ids = {labels["worker"] for labels, _ in final["render_chunks_done_total"]}
    assert len(worker_ids) == 1 and worker_ids.pop().count(":") == 2  # host:pid:id


def test_a_taken_metrics_port_is_a_clear_error(md_book: Path, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli, [str(md_book), "--out", str(tmp_path), *ARGS, "--metrics-port", str(port)],
                                    obj=fake_services(FakeEngineConfig(), EnvHooks()))
    assert result.exit_code != 0 and f"cannot serve metrics on 127.0.0.1:{port}" in result.output


def test_gpu_figures_appear_on_a_cuda_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """The GPU lines' format, with torch.cuda stood in for (no GPU here; a real one is read the same way)."""
    from types import SimpleNamespace

    from jobs.metrics import RunMetrics

    cuda = SimpleNamespace(is_available=lambda: True, memory_allocated=lambda i: 2.5e9,
                           max_memory_allocated=lambda i: 3.0e9, utilization=lambda i: 87)
    monkeypatch.setitem(__import__("sys").modules, "torch",
                        SimpleNamespace(cuda=cuda, device=lambda name: SimpleNamespace(index=0)))
    families = _families(RunMetrics("w1", device="cuda:0").render())
    assert families["render_gpu_utilization_ratio"] == [({"worker": "w1"}, 0.87)]
    assert families["render_gpu_memory_used_bytes"][0][1] == 2.5e9
    assert families["render_gpu_memory_peak_bytes"][0][1] == 3.0e9
    assert "render_gpu_utilization_ratio" not in _families(RunMetrics("w1", device="cpu").render())
