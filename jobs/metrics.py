"""Run metrics in the Prometheus text format: a file rewritten atomically (node-exporter textfile style)
and, optionally, an HTTP endpoint on loopback.

    render book.epub --voice v --metrics /var/lib/node_exporter/textfile/render.prom --metrics-port 9464

The format is written here rather than through ``prometheus_client``: a handful of gauges and counters
need no dependency in the product, and a per-run registry avoids that library's process-global state
(two workers in one test process, restarts). Values come from the worker after each batch (what this
process did) and from the job store on every refresh (what the whole queue looks like).

Every metric carries ``worker="<id>"`` so several workers' files can sit in one textfile folder.
"""

from __future__ import annotations

import logging
import os
import resource
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from jobs.errors import JobsError

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
STAGES = ("frontend", "prefill", "decode", "vocode", "write")


@dataclass(frozen=True)
class MetricsOptions:
    """file: where to keep the text file (None: no file). port: serve /metrics there (None: no server; 0: any
    free port). host: the address to listen on, loopback unless said otherwise. interval_s: refresh period."""

    file: Path | None = None
    port: int | None = None
    host: str = "127.0.0.1"
    interval_s: float = 5.0

    def __post_init__(self) -> None:
        if self.port is not None and not 0 <= self.port <= 65535:
            raise JobsError(f"--metrics-port must be 0..65535, got {self.port}")
        if self.interval_s <= 0:
            raise JobsError(f"the metrics interval must be > 0 s, got {self.interval_s}")

    @property
    def enabled(self) -> bool:
        return self.file is not None or self.port is not None


@dataclass
class _Figures:
    """What this process has done (updated from the worker's batch reports)."""

    batches: int = 0
    done: int = 0
    failed: int = 0
    audio_s: float = 0.0
    tokens: int = 0
    rerolled: int = 0  # takes rendered again because their check failed (WorkerReport.rerolled)
    stage_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    last_tokens_per_s: float = 0.0
    last_batch_fill: float = 0.0
    last_batch_at: float = 0.0
    seen_batch: int = 0


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return repr(float(value)) if value == value else "NaN"


class RunMetrics:
    """Collects figures and renders them as Prometheus text (thread-safe)."""

    def __init__(self, worker_id: str = "", device: str = "cpu") -> None:
        self.worker_id = worker_id
        self.device = device
        self.started_at = time.time()
        self._figures = _Figures()
        self._counts: dict[str, int] = {}
        self._counts_fn: Callable[[], dict[str, int]] | None = None
        self._lock = threading.Lock()

    def watch_counts(self, counts: Callable[[], dict[str, int]] | None) -> None:
        """Where chunk counts come from on each refresh (e.g. ``lambda: store.counts(book_id)``)."""
        self._counts_fn = counts

    def refresh_counts(self) -> None:
        fn = self._counts_fn
        if fn is None:
            return
        try:
            counts = fn()
        except Exception as exc:  # noqa: BLE001 - a store that is busy or gone keeps the last counts
            log.debug("metrics: chunk counts unavailable: %s", exc)
            return
        with self._lock:
            self._counts = dict(counts)

    def on_batch(self, report: Any) -> None:
        """Fold a worker report in (``jobs.worker.WorkerReport``; its ``last_batch`` holds the batch figures)."""
        with self._lock:
            f = self._figures
            if report.worker_id and not self.worker_id:
                self.worker_id = report.worker_id
            f.batches, f.done, f.failed, f.audio_s = report.batches, report.done, report.failed, report.audio_s
            f.rerolled = getattr(report, "rerolled", 0)  # takes queued again (jobs.take_loop)
            batch = getattr(report, "last_batch", None)
            if batch is None or id(batch) == f.seen_batch:
                return
            f.seen_batch = id(batch)
            f.tokens += batch.tokens
            for stage in STAGES:
                seconds = batch.frontend_s if stage == "frontend" else (
                    batch.write_s if stage == "write" else batch.stages.get(stage, 0.0))
                f.stage_s[stage] += seconds
            wall = max(1e-9, batch.finished_at - batch.started_at)
            f.last_tokens_per_s = batch.tokens / wall
            f.last_batch_fill = batch.claimed / batch.capacity if batch.capacity else 0.0
            f.last_batch_at = batch.finished_at

    def render(self) -> str:
        """The metrics page (Prometheus text exposition format 0.0.4)."""
        with self._lock:
            f, counts = self._figures, dict(self._counts)
            stage_s = dict(f.stage_s)
        labels = f'worker="{_escape(self.worker_id)}"'
        out: list[str] = []

        def metric(name: str, kind: str, text: str, samples: list[tuple[str, float]]) -> None:
            out.append(f"# HELP {name} {text}")
            out.append(f"# TYPE {name} {kind}")
            for extra, value in samples:
                out.append(f"{name}{{{labels}{extra}}} {_number(value)}")

        metric("render_chunks", "gauge", "Chunks of the job queue this process works on, by state.",
               [(f',state="{state}"', n) for state, n in sorted(counts.items())])
        metric("render_chunks_done_total", "counter", "Chunks this process rendered.", [("", f.done)])
        metric("render_chunks_failed_total", "counter", "Chunks this process marked failed.", [("", f.failed)])
        metric("render_batches_total", "counter", "Batches this process rendered.", [("", f.batches)])
        metric("render_audio_seconds_total", "counter", "Seconds of audio this process rendered.", [("", f.audio_s)])
        metric("render_tokens_total", "counter", "Semantic tokens this process generated.", [("", f.tokens)])
        metric("render_tokens_per_second", "gauge", "Semantic tokens per second over the last batch.",
               [("", f.last_tokens_per_s)])
        metric("render_batch_fill_ratio", "gauge", "Chunks claimed by the last batch / chunks it could hold.",
               [("", f.last_batch_fill)])
        metric("render_stage_seconds_total", "counter", "Seconds spent per stage of the rendering.",
               [(f',stage="{stage}"', seconds) for stage, seconds in stage_s.items()])
        metric("render_rerolled_takes_total", "counter", "Takes rendered again because a check rejected them.",
               [("", f.rerolled)])
        metric("render_peak_rss_bytes", "gauge", "Peak resident memory of this process.", [("", peak_rss_bytes())])
        metric("render_last_batch_timestamp_seconds", "gauge", "When the last batch finished (0: none yet).",
               [("", f.last_batch_at)])
        metric("render_start_time_seconds", "gauge", "When this process started rendering.", [("", self.started_at)])
        gpu = gpu_figures(self.device)
        if gpu:
            metric("render_gpu_utilization_ratio", "gauge", "GPU busy fraction (NVML).",
                   [("", gpu["utilization"])] if "utilization" in gpu else [])
            metric("render_gpu_memory_used_bytes", "gauge", "GPU memory held by this process's tensors.",
                   [("", gpu["memory_used"])])
            metric("render_gpu_memory_peak_bytes", "gauge", "Peak GPU memory held by this process's tensors.",
                   [("", gpu["memory_peak"])])
        return "\n".join(out) + "\n"


def peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # Linux reports KiB, macOS bytes


def gpu_figures(device: str) -> dict[str, float]:
    """Utilisation and memory of the CUDA device in use; empty off GPU (torch is never imported for it)."""
    torch = sys.modules.get("torch")
    if not device.startswith("cuda") or torch is None or not torch.cuda.is_available():
        return {}
    index = torch.device(device).index or 0
    figures = {"memory_used": float(torch.cuda.memory_allocated(index)),
               "memory_peak": float(torch.cuda.max_memory_allocated(index))}
    try:
        figures["utilization"] = float(torch.cuda.utilization(index)) / 100.0
    except Exception as exc:  # noqa: BLE001 - NVML (pynvml) missing: memory figures only
        log.debug("metrics: no GPU utilisation: %s", exc)
    return figures


def write_atomically(path: Path, text: str) -> None:
    """Readers (node exporter) see the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class MetricsPublisher:
    """Keeps the metrics file fresh and serves the endpoint while a run lasts (a context manager)."""

    def __init__(self, metrics: RunMetrics, options: MetricsOptions) -> None:
        self.metrics, self.options = metrics, options
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str | None:
        if self._server is None:
            return None
        host, port = self._server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{name}:{port}/metrics"

    def __enter__(self) -> MetricsPublisher:
        if self.options.port is not None:
            self._server = _serve(self.metrics, self.options.host, self.options.port)
        if self.options.file is not None:
            self.options.file.parent.mkdir(parents=True, exist_ok=True)
        self.publish()
        self._thread = threading.Thread(target=self._loop, name="metrics", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.publish()  # the final state stays in the file
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def publish(self) -> None:
        self.metrics.refresh_counts()
        if self.options.file is not None:
            try:
                write_atomically(self.options.file, self.metrics.render())
            except OSError as exc:  # a full disk must not stop the rendering
                log.warning("cannot write the metrics file %s: %s", self.options.file, exc)

    def on_batch(self, report: Any) -> None:
        self.metrics.on_batch(report)
        self.publish()

    def _loop(self) -> None:
        while not self._halt.wait(self.options.interval_s):
            self.publish()


def _serve(metrics: RunMetrics, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            if self.path.split("?")[0] not in ("/metrics", "/"):
                self.send_error(404, "only /metrics is served here")
                return
            metrics.refresh_counts()
            body = metrics.render().encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet: no access log
            return

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        raise JobsError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}; choose another "
                        "--metrics-port (or 0 for any free port)") from exc
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server
