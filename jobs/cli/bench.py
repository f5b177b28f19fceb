"""``render bench``: engine throughput on a full-size random v2 voice (table, JSON, BENCHMARKS figures)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

STAGES = ("peak", "gpt", "sovits", "chapter")


def _batches(value: str) -> list[int]:
    try:
        out = sorted({int(v) for v in value.split(",") if v.strip()})
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not out or min(out) < 1:
        raise click.BadParameter("batch sizes must be >= 1")
    return out


def run_bench(quick: bool, backend: str, device: str, threads: int, batches: list[int], tokens: int, runs: int,
              cache_dir: Path | None, log: Any, precision: str = "fp32",
              stages: tuple[str, ...] = STAGES, overlap: str = "auto") -> dict[str, Any]:
    """Every stage; returns the JSON document."""
    import torch

    from renderer.engine.api import Engine
    from renderer.engine.bench import machine_info, machine_peak, peak_rss_mb
    from renderer.engine.bench_run import bench_cache_dir, bench_voice, chapter_figure, gpt_figures, sovits_figures

    torch.set_num_threads(threads)
    started = time.perf_counter()
    info = machine_info(threads)
    log(f"machine: {info['cpu']}, {threads} thread(s), load {info['load_average']}, "
        f"KV cache on huge pages: {'yes' if info['kv_huge_pages'] else 'no'}")
    figures: list[Any] = []
    cache = bench_cache_dir(cache_dir)
    voice = bench_voice(cache, log=log)
    onnx_dir = None
    if backend == "onnx":
        from renderer.export_onnx import export_voice_onnx

        onnx_dir = cache / "onnx"
        if not (onnx_dir / "export.json").is_file():
            log(f"exporting ONNX graphs into {onnx_dir} (first run only)")
            export_voice_onnx(voice, onnx_dir)
    engine = Engine(voice, backend=backend, device=device, batch_size=max(batches), threads=threads,
                    onnx_dir=onnx_dir, precision=precision)
    chosen = getattr(engine.backend, "precision", "fp32")
    log(f"backend {engine.backend.name}, precision {chosen}")
    if "gpt" in stages:
        log("GPT ...")
        figures += gpt_figures(engine, batches, tokens, runs)
    if "sovits" in stages:
        log("SoVITS ...")
        figures += sovits_figures(engine, 25 if quick else 150, 2 if quick else 4, runs)
    if "chapter" in stages and not quick and {"gpt", "sovits"} & set(stages):
        # a worker renders only chapters: measured in a process of its own, so that neither its speed nor
        # its peak memory includes what the GPT and SoVITS stages left behind (batch-64 heap, primitives)
        log("chapter (in a fresh process) ...")
        figures.append(chapter_in_fresh_process(backend, device, chosen, threads, runs, cache, overlap))
    elif "chapter" in stages:
        # as `render run` does by default: the memory-budgeted batch, vocoder overlapped with the GPT
        engine.batch_size = engine.automatic_batch_size()
        engine.overlap = {"auto": None, "on": True, "off": False}[overlap]
        log(f"chapter (batch {engine.batch_size}, overlap {'on' if engine.overlaps else 'off'}) ...")
        figures.append(chapter_figure(engine, quick, runs))
    rss_mb = peak_rss_mb()  # before the machine-peak stage, whose large arrays are not the engine's
    if "peak" in stages:
        log("machine peak ...")
        figures = machine_peak(quick) + figures
    peak = next((f.median for f in figures if f.name == "gemm_fp32"), None)
    doc_stages = list(stages)
    for f in figures:
        if peak and "gflops" in f.extra:
            f.extra["fraction_of_fp32_peak"] = f.extra["gflops"] / peak
    return {"machine": info, "backend": engine.backend.name, "device": device, "threads": threads,
            "precision": chosen, "precision_report": getattr(engine.backend, "precision_report", {}),
            "quick": quick, "tokens_per_chunk": tokens, "stages": doc_stages, "peak_rss_mb": rss_mb,
            "seconds": time.perf_counter() - started, "figures": [f.to_dict() for f in figures]}


def chapter_in_fresh_process(backend: str, device: str, precision: str, threads: int, runs: int, cache: Path,
                              overlap: str) -> Any:
    """The chapter stage run by ``render bench --stages chapter --json`` in a child process; its figure."""
    from renderer.engine.bench import Figure

    command = [sys.executable, "-c", "from jobs.cli import main; main()", "bench", "--stages", "chapter", "--json",
               "--backend", backend, "--device", device, "--precision", precision, "--threads", str(threads),
               "--runs", str(runs), "--cache-dir", str(cache), "--overlap", overlap]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise click.ClickException(f"the chapter stage failed in its own process (exit {done.returncode}):\n"
                                   + done.stderr[-2000:])
    fig = Figure.from_dict(json.loads(done.stdout)["figures"][0])
    fig.extra["process"] = "fresh"
    return fig


def format_table(doc: dict[str, Any]) -> str:
    """Plain-text table of a bench document."""
    lines = [f"render bench  backend={doc['backend']} precision={doc.get('precision', 'fp32')} "
             f"device={doc['device']} threads={doc['threads']} "
             f"quick={doc['quick']}  load={doc['machine']['load_average']}",
             f"{'figure':<22}{'median':>12}{'min':>12}{'max':>12}  {'unit':<9}{'GFLOP/s':>9}{'of peak':>9}"
             f"{'RSS MB':>9}"]
    for f in doc["figures"]:
        gf = f"{f['gflops']:.1f}" if "gflops" in f else ""
        frac = f"{100 * f['fraction_of_fp32_peak']:.0f}%" if "fraction_of_fp32_peak" in f else ""
        rss = f"{f['peak_rss_mb']:.0f}" if "peak_rss_mb" in f else ""
        lines.append(f"{f['name']:<22}{f['median']:>12.3f}{f['min']:>12.3f}{f['max']:>12.3f}  {f['unit']:<9}"
                     f"{gf:>9}{frac:>9}{rss:>9}")
    lines.append(f"peak RSS {doc['peak_rss_mb']:.0f} MB; {doc['seconds']:.0f} s in total")
    return "\n".join(lines)


@click.command("bench")
@click.option("--quick", is_flag=True, help="Reduced run (<= ~60 s) for smoke checks.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON instead of a table.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write bench.json and bench.txt into this folder.")
@click.option("--backend", type=click.Choice(["torch", "onnx"]), default="torch", show_default=True,
              help="Engine backend to measure.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, ...")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="fp32", show_default=True,
              help="auto = bf16/fp16 where supported and within tolerance of fp32.")
@click.option("--threads", type=int, default=None, help="CPU threads (default: all cores).")
@click.option("--batch-sizes", default=None, help="Comma-separated GPT batch sizes (default 1,8,32,64; quick 1,4).")
@click.option("--tokens", type=int, default=None, help="Generated tokens per chunk (default 100; quick 8).")
@click.option("--runs", type=int, default=3, show_default=True, help="Timed runs per figure (>= 3).")
@click.option("--stages", default=",".join(STAGES), show_default=True,
              help="Comma-separated subset of the stages to run.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the generated full-size random voice is kept.")
@click.option("--overlap", type=click.Choice(["auto", "on", "off"]), default="auto", show_default=True,
              help="Chapter stage: run the vocoder while the GPT decodes (auto: as RENDER_OVERLAP says, default off).")
def bench(quick: bool, as_json: bool, out_dir: Path | None, backend: str, device: str, precision: str,
          threads: int | None,
          batch_sizes: str | None, tokens: int | None, runs: int, stages: str, cache_dir: Path | None,
          overlap: str) -> None:
    """Measure GEMM peak, GPT prefill/decode tokens/s, SoVITS and end-to-end real-time factors."""
    batches = _batches(batch_sizes or ("1,4" if quick else "1,8,32,64"))
    n_threads = threads or os.cpu_count() or 1
    n_tokens = tokens or (8 if quick else 100)

    def log(msg: str) -> None:
        click.echo(msg, err=True)

    chosen = tuple(s.strip() for s in stages.split(",") if s.strip())
    unknown = sorted(set(chosen) - set(STAGES))
    if unknown:
        raise click.BadParameter(f"unknown stage(s) {', '.join(unknown)}; choose from {', '.join(STAGES)}")
    doc = run_bench(quick, backend, device, n_threads, batches, n_tokens, max(3, runs), cache_dir, log, precision,
                    chosen, overlap)
    table = format_table(doc)
    click.echo(json.dumps(doc, indent=2) if as_json else table)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "bench.json").write_text(json.dumps(doc, indent=2) + "\n")
        (out_dir / "bench.txt").write_text(table + "\n")


COMMANDS: list[click.Command] = [bench]
