"""``render bench``: engine throughput on a full-size random v2 voice (table, JSON, BENCHMARKS figures)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from jobs.cli.params import current_services
from jobs.engines import EngineSettings
from renderer.errors import RendererError
from renderer.tuning import EngineTuning

STAGES = ("peak", "gpt", "sovits", "chapter", "book")


def _batches(value: str) -> list[int]:
    try:
        out = sorted({int(v) for v in value.split(",") if v.strip()})
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not out or min(out) < 1:
        raise click.BadParameter("batch sizes must be >= 1")
    return out


@dataclass(frozen=True)
class BenchVoice:
    """Which voice the bench measures: an installed one (``--voice``) or the random one of ``version``."""

    version: str = "v2"
    name: str | None = None
    voices_dir: Path | None = None

    def arguments(self) -> list[str]:
        """The options that select this voice in a child ``render bench``."""
        if self.name is None:
            return ["--version", self.version]
        return ["--voice", self.name] + (["--voices-dir", str(self.voices_dir)] if self.voices_dir else [])


def run_bench(quick: bool, backend: str, device: str, tuning: EngineTuning, batches: list[int], tokens: int,
              runs: int, cache_dir: Path | None, log: Any, precision: str = "fp32",
              stages: tuple[str, ...] = STAGES, voice_choice: BenchVoice = BenchVoice()) -> dict[str, Any]:
    """Every stage; returns the JSON document (with the tuning it ran under)."""
    from jobs.bench.measure import machine_info, machine_peak, peak_rss_mb
    from renderer.memory import huge_pages_possible

    threads = tuning.threads or 1
    started = time.perf_counter()
    info = machine_info(threads)
    info["kv_huge_pages"] = tuning.huge_pages and huge_pages_possible()
    log(f"machine: {info['cpu']}, {threads} thread(s), load {info['load_average']}, "
        f"KV cache on huge pages: {'yes' if info['kv_huge_pages'] else 'no'}")
    figures: list[Any] = []
    voice, store_dir, cache = _resolve_voice(voice_choice, cache_dir, log)
    log(f"voice {voice.name} ({getattr(voice, 'version', 'v2')})")
    chosen, backend_name = precision, backend
    report: dict[str, Any] = {}
    in_effect: dict[str, Any] = {}
    engine_stages = {"gpt", "sovits", "chapter"} & set(stages)
    if engine_stages:
        engine = _open_bench_engine(voice, backend, device, precision, tuning, cache, log)
        chosen = getattr(engine.backend, "precision", "fp32")
        backend_name, report = engine.backend.name, getattr(engine.backend, "precision_report", {})
        in_effect = engine.tuning.to_dict()  # with the settings measured on this machine (autotune)
        log(f"backend {backend_name}, precision {chosen}")
        figures += _engine_stage_figures(engine, stages, quick, batches, tokens, runs, log)
        if "chapter" in stages and not quick and {"gpt", "sovits"} & set(stages):
            # a worker renders only chapters: measured in a process of its own, so that neither its speed nor
            # its peak memory includes what the GPT and SoVITS stages left behind (batch-64 heap, primitives)
            log("chapter (in a fresh process) ...")
            figures.append(stage_in_fresh_process("chapter", backend, device, chosen, tuning, runs, cache,
                                                  voice_choice))
        del engine
    if "book" in stages:
        figures.append(_book_stage(engine_stages, quick, backend, device, chosen, tuning, runs, cache, voice_choice,
                                   voice.name, store_dir, log))
    rss_mb = peak_rss_mb()  # before the machine-peak stage, whose large arrays are not the engine's
    if "peak" in stages:
        log("machine peak ...")
        figures = machine_peak(quick) + figures
    add_fractions_of_peak(figures, chosen)
    return {"machine": info, "backend": backend_name, "device": device, "threads": threads,
            "precision": chosen, "precision_report": report, "voice": {"name": voice.name,
                                                                       "version": getattr(voice, "version", "v2")},
            "tuning": tuning.to_dict(), "engine_tuning": in_effect, "quick": quick, "tokens_per_chunk": tokens,
            "stages": list(stages),
            "peak_rss_mb": rss_mb, "seconds": time.perf_counter() - started,
            "figures": [f.to_dict() for f in figures]}


def _resolve_voice(choice: BenchVoice, cache_dir: Path | None, log: Any) -> tuple[Any, Path | None, Path]:
    """(voice, the voice store it lives in, the bench cache folder) for ``choice``."""
    from jobs.bench.voices import bench_cache_dir, bench_voice, installed_voice

    cache = bench_cache_dir(cache_dir, choice.version)
    if choice.name is not None:
        return installed_voice(choice.name, choice.voices_dir), choice.voices_dir, cache
    return bench_voice(cache, choice.version, log=log), cache / "voices", cache


def _open_bench_engine(voice: Any, backend: str, device: str, precision: str, tuning: EngineTuning, cache: Path,
                       log: Any) -> Any:
    from renderer.backends import open_engine

    onnx_dir = None
    if backend == "onnx":
        from renderer.export_onnx import export_voice_onnx

        onnx_dir = cache / "onnx"
        if not (onnx_dir / "export.json").is_file():
            log(f"exporting ONNX graphs into {onnx_dir} (first run only)")
            export_voice_onnx(voice, onnx_dir)
    return open_engine(voice, backend=backend, device=device, precision=precision, tuning=tuning, onnx_dir=onnx_dir)


def _engine_stage_figures(engine: Any, stages: tuple[str, ...], quick: bool, batches: list[int], tokens: int,
                          runs: int, log: Any) -> list[Any]:
    from jobs.bench.stages import chapter_figure, gpt_figures, sovits_figures

    figures: list[Any] = []
    if "gpt" in stages:
        log("GPT ...")
        figures += gpt_figures(engine, batches, tokens, runs)
        if hasattr(engine.backend, "gpt") and getattr(engine.backend, "cache", None) is not None:
            from jobs.bench.split import step_split_figures

            log("GPT step split (linears, attention) ...")
            figures += step_split_figures(engine, max(batches), runs=runs)
    if "sovits" in stages:
        log("SoVITS ...")
        figures += sovits_figures(engine, 25 if quick else 150, 2 if quick else 4, runs)
    if "chapter" in stages and (quick or not {"gpt", "sovits"} & set(stages)):
        # as a worker does: the tuning's batch (default: memory-budgeted) and overlap setting
        log(f"chapter (batch {engine.batch_size}, overlap {'on' if engine.overlaps else 'off'}) ...")
        figures.append(chapter_figure(engine, quick, runs))
    return figures


def _book_stage(engine_stages: set[str], quick: bool, backend: str, device: str, precision: str,
                tuning: EngineTuning, runs: int, cache: Path, voice_choice: BenchVoice, voice_name: str,
                store_dir: Path | None, log: Any) -> Any:
    """The book stage, in a fresh process when engine stages ran in this one (its memory is a worker's)."""
    if engine_stages:
        log("book (in a fresh process) ...")
        return stage_in_fresh_process("book", backend, device, precision, tuning, runs, cache, voice_choice,
                                      quick=quick)
    from jobs.bench.book import book_figure, format_activities, render_book

    log("book ...")
    run = render_book(voice_name, store_dir, precision, tuning, quick, backend, device, log)
    figure = book_figure(run)
    extra = figure.extra
    log(f"book: {run.chunks} chunks, {run.audio_s:.0f} s of audio in {run.wall_s:.0f} s: RTF {run.rtf:.3f} "
        f"(CPU-bound RTF {extra['cpu_rtf']:.3f}), {extra['tokens_per_s']:.0f} tok/s over the run, GPT batch "
        f"{run.batch_size} ({run.mean_live_rows:.1f} live rows per step on average), vocoder batch "
        f"{run.vocoder_batch}, overlap {'on' if run.overlap else 'off'}, peak RSS {run.peak_rss_mb:.0f} MB, "
        f"idle {extra['idle_cpu_s']:.0f} core-s, waited for other processes {extra['waited_for_cpu_s']:.0f} s")
    for line in format_activities(run.activities):
        log(line)
    return figure


def add_fractions_of_peak(figures: list[Any], precision: str = "fp32") -> None:
    """Each figure with a GFLOP/s rate gets its share of the GEMM peak of the precision in use measured in the
    same run (``fraction_of_peak``; and of the fp32 peak, as earlier sessions reported); each with a GB/s
    rate its share of the measured memory read rate."""
    peaks = {f.name: f.median for f in figures if f.name in ("gemm_fp32", "gemm_bf16", "memory_read")}
    gemm = "gemm_bf16" if precision == "bf16" and "gemm_bf16" in peaks else "gemm_fp32"
    for f in figures:
        if "gflops" in f.extra and gemm in peaks:
            f.extra["fraction_of_peak"] = f.extra["gflops"] / peaks[gemm]
            f.extra["peak"] = gemm
        if "gflops" in f.extra and "gemm_fp32" in peaks:
            f.extra["fraction_of_fp32_peak"] = f.extra["gflops"] / peaks["gemm_fp32"]
        if "gbps" in f.extra and "memory_read" in peaks:
            f.extra["fraction_of_peak"] = f.extra["gbps"] / peaks["memory_read"]
            f.extra["peak"] = "memory_read"
        if f.extra.get("work") and gemm in peaks and "memory_read" in peaks:
            from jobs.bench.floors import stage_floors

            f.extra["floors"] = stage_floors(f.extra["work"], f.extra["activities"], f.extra["audio_seconds"],
                                             peaks[gemm], peaks["memory_read"])


def tune_arguments(tuning: EngineTuning) -> list[str]:
    """``--tune NAME=VALUE`` for every field of ``tuning`` (what a child ``render bench`` needs to run alike)."""
    args: list[str] = []
    for name, value in tuning.to_dict().items():
        text = "auto" if value is None else (str(int(value)) if isinstance(value, bool) else str(value))
        args += ["--tune", f"{name}={text}"]
    return args


def stage_in_fresh_process(stage: str, backend: str, device: str, precision: str, tuning: EngineTuning,
                           runs: int, cache: Path, voice: BenchVoice = BenchVoice(), quick: bool = False) -> Any:
    """One stage run by ``render bench --stages STAGE --json`` in a child process; its figure."""
    from jobs.bench.measure import Figure

    command = [sys.executable, "-c", "from jobs.cli import main; main()", "bench", "--stages", stage, "--json",
               "--backend", backend, "--device", device, "--precision", precision, "--runs", str(runs),
               "--cache-dir", str(cache), *voice.arguments(), *(["--quick"] if quick else []),
               *tune_arguments(tuning)]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)  # its log goes to our stderr
    if done.returncode != 0:
        raise click.ClickException(f"the {stage} stage failed in its own process (exit {done.returncode}); "
                                   "its messages are above")
    fig = Figure.from_dict(json.loads(done.stdout)["figures"][0])
    fig.extra["process"] = "fresh"
    return fig


def parse_tune(values: tuple[str, ...], threads: int | None,
               environ: Mapping[str, str] | None = None) -> EngineTuning:
    """``--tune NAME=VALUE`` options and ``--threads`` over the environment (threads default: all cores)."""
    overrides: dict[str, Any] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="--tune")
        overrides[name.strip()] = value
    if threads is not None:
        overrides["threads"] = threads
    tuning = EngineTuning.resolve(overrides, environ)
    return tuning if tuning.threads is not None else tuning.with_overrides(threads=os.cpu_count() or 1)


def format_table(doc: dict[str, Any]) -> str:
    """Plain-text table of a bench document."""
    lines = [f"render bench  backend={doc['backend']} precision={doc.get('precision', 'fp32')} "
             f"device={doc['device']} threads={doc['threads']} "
             f"quick={doc['quick']}  load={doc['machine']['load_average']}",
             f"{'figure':<22}{'median':>12}{'min':>12}{'max':>12}  {'unit':<9}{'GFLOP/s':>9}{'of peak':>9}"
             f"{'RSS MB':>9}"]
    for f in doc["figures"]:
        gf = f"{f['gflops']:.1f}" if "gflops" in f else ""
        share = f.get("fraction_of_peak", f.get("fraction_of_fp32_peak"))
        frac = f"{100 * share:.0f}%" if share is not None else ""
        rss = f"{f['peak_rss_mb']:.0f}" if "peak_rss_mb" in f else ""
        lines.append(f"{f['name']:<22}{f['median']:>12.3f}{f['min']:>12.3f}{f['max']:>12.3f}  {f['unit']:<9}"
                     f"{gf:>9}{frac:>9}{rss:>9}")
    tuned = {k: v for k, v in doc.get("tuning", {}).items() if k != "threads" and EngineTuning().to_dict()[k] != v}
    lines.append("tuning: " + (", ".join(f"{k}={v}" for k, v in tuned.items()) or "defaults"))
    lines.append("of peak: of the GEMM peak of the precision in use (GFLOP/s), of memory_read (GB/s)")
    for f in doc["figures"]:
        if "floors" in f:
            from jobs.bench.floors import format_floors

            lines += [f"{f['name']}:"] + format_floors(f["floors"])
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
@click.option("--threads", type=int, default=None, help="CPU threads (default: all cores; same as --tune threads=N).")
@click.option("--batch-sizes", default=None, help="Comma-separated GPT batch sizes (default 1,8,32,64; quick 1,4).")
@click.option("--tokens", type=int, default=None, help="Generated tokens per chunk (default 100; quick 8).")
@click.option("--runs", type=int, default=3, show_default=True, help="Timed runs per figure (>= 3).")
@click.option("--stages", default=",".join(STAGES), show_default=True,
              help="Comma-separated subset of the stages to run.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the generated full-size random voice is kept (default "
                   "~/.cache/audiobook-renderer/bench-VERSION-full).")
@click.option("--version", "model_version", type=click.Choice(["v2", "v2Pro", "v2ProPlus"]), default="v2",
              show_default=True, help="SoVITS version of the generated full-size random voice.")
@click.option("--voice", "voice_name", default=None,
              help="Measure this installed voice instead of a random one (see `render voice list`).")
@click.option("--voices-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Voice folder for --voice (default: $RENDER_VOICES_DIR or the user's voice folder).")
@click.option("--tune", "tune", multiple=True, metavar="NAME=VALUE",
              help="Engine tuning for this run, over the RENDER_* environment (repeatable), for A/B measurements: "
                   "batch_size, threads, kv_budget_mb, attention=auto|numba|torch, packed_linear=0|1, "
                   "huge_pages=0|1, vocoder_bucket_tokens, vocoder_batch, vocoder_window_s, overlap=0|1, "
                   "mmap_threshold_mb, onednn_primitive_cache (see renderer/tuning.py). "
                   "The tuning is recorded in the JSON.")
def bench(quick: bool, as_json: bool, out_dir: Path | None, backend: str, device: str, precision: str,
          threads: int | None, batch_sizes: str | None, tokens: int | None, runs: int, stages: str,
          cache_dir: Path | None, model_version: str, voice_name: str | None, voices_dir: Path | None,
          tune: tuple[str, ...]) -> None:
    """Measure GEMM peak, GPT prefill/decode tokens/s, SoVITS and end-to-end real-time factors.

    Stages: peak (GEMM GFLOP/s, memory GB/s), gpt (prefill and decode per batch size), sovits (vocoder RTF),
    chapter (17 English chunks, text to audio), book (a 224-chunk English and Chinese book rendered by the
    real worker and exported, in a fresh process: RTF, share and idle CPU of each activity, peak memory;
    --quick renders its first 32 chunks)."""
    batches = _batches(batch_sizes or ("1,4" if quick else "1,8,32,64"))
    tuning = parse_tune(tune, threads)
    n_tokens = tokens or (8 if quick else 100)

    def log(msg: str) -> None:
        click.echo(msg, err=True)

    chosen = tuple(s.strip() for s in stages.split(",") if s.strip())
    unknown = sorted(set(chosen) - set(STAGES))
    if unknown:
        raise click.BadParameter(f"unknown stage(s) {', '.join(unknown)}; choose from {', '.join(STAGES)}")
    voice = BenchVoice(model_version, voice_name, voices_dir)
    try:
        doc = run_bench(quick, backend, device, tuning, batches, n_tokens, max(3, runs), cache_dir, log, precision,
                        chosen, voice)
    except RendererError as exc:
        raise click.ClickException(str(exc)) from exc
    table = format_table(doc)
    click.echo(json.dumps(doc, indent=2) if as_json else table)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "bench.json").write_text(json.dumps(doc, indent=2) + "\n")
        (out_dir / "bench.txt").write_text(table + "\n")


@click.command("bench-takes")
@click.option("--book", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Book to render (default: the sample book).")
@click.option("--voice", "voice_name", help="Voice to render with (default: the sample voice, made if missing).")
@click.option("--voices-dir", type=click.Path(file_okay=False, path_type=Path), help="Voice folder root.")
@click.option("--chapters", help="Chapters to render, as numbered by `render plan` (default: all).")
@click.option("--max-takes", type=click.IntRange(2, 20), default=3, show_default=True,
              help="Takes per chunk at most in the run with re-rolls on (off is --max-takes 1).")
@click.option("--max-tokens", type=click.IntRange(1, 1500), default=75, show_default=True,
              help="Cap on semantic tokens per chunk (the demo's 75: a random voice seldom stops by itself).")
@click.option("--runs", type=click.IntRange(1, 20), default=3, show_default=True,
              help="Renderings per mode (the figures are medians; the modes alternate).")
@click.option("--batch-size", type=click.IntRange(0, 4096), default=0, show_default=True,
              help="Engine batch size (0 = automatic, as `render run`).")
@click.option("--backend", default="auto", show_default=True, help="Engine backend (see `render doctor`).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, ...")
@click.option("--threads", type=int, help="CPU threads for the engine.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON instead of a table.")
@click.pass_context
def bench_takes(ctx: click.Context, book: Path | None, voice_name: str | None, voices_dir: Path | None,
                chapters: str | None, max_takes: int, max_tokens: int, runs: int, batch_size: int, backend: str,
                device: str, threads: int | None, as_json: bool) -> None:
    """Throughput of the same book with re-rolls off (--max-takes 1) and on: takes/s and chunks/s.

    Renders the book from scratch RUNS times per mode in temporary folders (WAV export, no preset) and
    prints the medians. With a random voice every take is bad, so "on" is the worst case: every chunk
    gets --max-takes takes.
    """
    import json

    from jobs.bench.takes import bench_takes as run_bench
    from jobs.bench.takes import format_table
    from jobs.cli.demo import ensure_sample_voice, sample_book

    voice = voice_name or ensure_sample_voice(ctx, voices_dir)
    figures = run_bench(book or sample_book(), voice, max_takes=max_takes, runs=runs, chapters=chapters,
                        max_tokens=max_tokens, batch_size=batch_size, engine=EngineSettings(backend, device, threads),
                        voices_dir=voices_dir, services=current_services(),
                        log=lambda line: click.echo(line, err=True))
    if as_json:
        click.echo(json.dumps([f.to_dict() for f in figures], indent=2))
    else:
        click.echo(format_table(figures))


COMMANDS: list[click.Command] = [bench, bench_takes]
