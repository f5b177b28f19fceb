"""SoVITS decode benchmark: every CPU inference variant side by side in one run.

    python -m jobs.bench.sovits [--size full] [--threads 2] [--seconds 10] [--batch 1,4]
        [--runs 3] [--compile] [--onnx] [--json out.json]

Builds (first run only) a random full-size v2 SoVITS with :func:`write_random_sovits` into
``$RENDER_BENCH_CACHE`` or ``~/.cache/audiobook-renderer/bench/``, decodes realistic chunks (25 semantic
tokens and ≈ 6 phones per audio second; a batch holds rows of 100 %, 90 %, 80 % ... of the length, as
the engine's length groups do) and prints, per variant and batch size, the median (min-max) of the
timed runs after one warm-up: real-time factor (wall s / audio s), audio s per s, achieved GFLOP/s and
its fraction of the measured fp32 peak, the signal-to-error ratio against the float32 reference on the
same inputs and noise, and the peak RSS while the variant ran. Variants run round-robin (run 1 of every
variant, then run 2 ...) so load changes on a shared machine hit all of them alike.

FLOPs are counted from the shapes the reference decode actually executes (forward hooks): a
convolution costs 2 * out_elements * in_channels/groups * kernel, a transposed one
2 * in_elements * out_channels/groups * kernel, a linear layer 2 * in * out per row; attention
matmuls (< 1 %) are not counted.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from renderer.models.sovits import SoVITSModel, load_sovits
from renderer.models.sovits_fast import FastGenerator, cpu_supports_bf16

TOKENS_PER_SECOND = 25
PHONES_PER_SECOND = 6


@dataclass
class Row:
    variant: str
    batch: int
    rtf: float
    rtf_min: float
    rtf_max: float
    audio_s_per_s: float
    gflops: float
    frac_peak: float
    ser_db: float
    peak_rss_mb: float
    threads: int
    load_1min: float


def cache_dir() -> Path:
    env = os.environ.get("RENDER_BENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "audiobook-renderer" / "bench"


def model_path(size: str, seed: int = 0) -> Path:
    from renderer.models.random_weights import write_random_sovits

    path = cache_dir() / f"sovits_v2_{size}_seed{seed}.pth"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"generating random {size} SoVITS v2 into {path} (first run only)", file=sys.stderr)
        tmp = path.with_suffix(".tmp")
        write_random_sovits(tmp, "v2", size, seed)
        tmp.rename(path)
    return path


def make_inputs(model: SoVITSModel, batch: int, seconds: float, seed: int) -> dict[str, Tensor]:
    """Random chunk batch: row i has (1 - 0.1 i) of the tokens (>= 70 %), noise per row, a shared ge."""
    g = torch.Generator().manual_seed(seed)
    t_max = int(seconds * TOKENS_PER_SECOND)
    n_max = max(4, int(seconds * PHONES_PER_SECOND))
    t_lens = torch.tensor([max(1, int(t_max * max(0.7, 1 - 0.1 * i))) for i in range(batch)])
    n_lens = torch.tensor([max(2, int(n_max * max(0.7, 1 - 0.1 * i))) for i in range(batch)])
    codes = torch.randint(0, 1024, (batch, t_max), generator=g)
    phones = torch.randint(1, 732, (batch, n_max), generator=g)
    inter = model.cfg.inter_channels
    noise = torch.zeros(batch, inter, 2 * t_max)
    for i, n in enumerate(t_lens.tolist()):
        noise[i, :, : 2 * n] = torch.randn(inter, 2 * n, generator=g)
    spec = torch.randn(1, 1025, 200, generator=g).abs()
    ge = model.reference_ge([spec])
    return {"codes": codes, "code_lengths": t_lens, "phones": phones, "phone_lengths": n_lens, "ge": ge,
            "noise": noise}


def audio_seconds(inputs: dict[str, Tensor], rate: int = 32000) -> float:
    return float(inputs["code_lengths"].sum()) * 1280 / rate


def decode(model: SoVITSModel, inputs: dict[str, Tensor]) -> Tensor:
    audio, lengths = model.decode(inputs["codes"], inputs["code_lengths"], inputs["phones"], inputs["phone_lengths"],
                                  inputs["ge"], 0.5, 1.0, noise=inputs["noise"])
    return audio.float()


def count_flops(model: SoVITSModel, inputs: dict[str, Tensor]) -> float:
    """FLOPs of one reference decode, from the executed shapes (see module docstring)."""
    total = [0.0]

    def hook(mod: nn.Module, args: tuple[Tensor, ...], out: Tensor) -> None:
        if isinstance(mod, nn.ConvTranspose1d):
            total[0] += 2.0 * args[0].numel() * mod.out_channels / mod.groups * mod.kernel_size[0]
        elif isinstance(mod, nn.Conv1d):
            total[0] += 2.0 * out.numel() * mod.in_channels / mod.groups * mod.kernel_size[0]
        elif isinstance(mod, nn.Linear):
            total[0] += 2.0 * out.numel() * mod.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, nn.Conv1d | nn.ConvTranspose1d | nn.Linear)]
    saved, model.fast_dec = model.fast_dec, None
    try:
        decode(model, inputs)
    finally:
        model.fast_dec = saved
        for h in handles:
            h.remove()
    return total[0]


def ser_db(ref: Tensor, out: Tensor) -> float:
    """Signal-to-error ratio in dB (inf when identical)."""
    err = (out - ref).double().pow(2).sum().item()
    sig = ref.double().pow(2).sum().item()
    return float("inf") if err == 0 else 10 * torch.log10(torch.tensor(sig / err)).item()


class RssSampler:
    """Peak resident memory (MB) of this process while a block runs (sampled every 5 ms)."""

    def __enter__(self) -> RssSampler:
        import psutil

        self._proc = psutil.Process()
        self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def timed(fn: Callable[[], object], runs: int = 3) -> float:
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_reference(threads: int) -> dict[str, float]:
    """GFLOP/s of a 2048^3 GEMM (fp32, bf16) and a large channels-last conv1d (128 ch, k 7) on ``threads``."""
    out: dict[str, float] = {}
    with torch.inference_mode():
        for name, dtype in (("gemm_fp32", torch.float32), ("gemm_bf16", torch.bfloat16)):
            if dtype == torch.bfloat16 and not cpu_supports_bf16():
                continue
            a, b = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
            out[name] = 2 * 2048**3 / timed(functools.partial(torch.matmul, a, b), 5) / 1e9
        x = torch.randn(1, 128, 1, 20000).contiguous(memory_format=torch.channels_last)
        w = torch.randn(128, 128, 1, 7).contiguous(memory_format=torch.channels_last)
        conv = torch.nn.functional.conv2d
        out["conv_fp32"] = 2 * 128 * 128 * 7 * 20000 / timed(lambda: conv(x, w, None, 1, (0, 3)), 5) / 1e9
    return out


Variant = Callable[[dict[str, Tensor]], Tensor]


def _with_dec(model: SoVITSModel, dec: nn.Module | None, ctx: Callable[[], object] | None = None) -> Variant:
    """A decode that runs with ``model.fast_dec = dec`` under inference mode (+ an extra context)."""

    def run(inputs: dict[str, Tensor]) -> Tensor:
        model.fast_dec = dec
        with torch.inference_mode():
            if ctx is None:
                return decode(model, inputs)
            with ctx():  # type: ignore[attr-defined]
                return decode(model, inputs)

    return run


def build_variants(model: SoVITSModel, compile_: bool, onnx: bool, notes: dict[str, str]) -> dict[str, Variant]:
    def no_grad_only(inputs: dict[str, Tensor]) -> Tensor:
        model.fast_dec = None
        return decode(model, inputs)  # decode itself is @torch.no_grad

    variants: dict[str, Variant] = {
        "reference (no_grad)": no_grad_only,
        "reference + inference_mode": _with_dec(model, None),
        "reference, oneDNN off": _with_dec(model, None, lambda: torch.backends.mkldnn.flags(enabled=False)),
    }
    bf16 = cpu_supports_bf16()
    if bf16:
        variants["reference + autocast bf16"] = _with_dec(
            model, None, lambda: torch.autocast("cpu", dtype=torch.bfloat16))
    variants["fast fp32"] = _with_dec(model, FastGenerator(model.dec, "fp32"))
    if bf16:
        variants["fast bf16"] = _with_dec(model, FastGenerator(model.dec, "bf16"))
    if compile_:
        variants["torch.compile (inductor, freezing)"] = _compiled_variant(model, notes)
    if onnx:
        variants["onnxruntime fp32 (whole decode)"] = _onnx_variant(model, notes)
    return variants


def _compiled_variant(model: SoVITSModel, notes: dict[str, str]) -> Variant:
    # freezing constant-folds the weights so inductor's oneDNN conv + post-op fusions apply
    compiled = torch.compile(model.dec, dynamic=False, options={"freezing": True})
    run = _with_dec(model, compiled)  # type: ignore[arg-type]
    first = [True]

    def timed_first(inputs: dict[str, Tensor]) -> Tensor:
        if first[0]:
            start = time.perf_counter()
            out = run(inputs)
            notes["compile_first_call_s"] = f"{time.perf_counter() - start:.1f}"
            first[0] = False
            return out
        return run(inputs)

    return timed_first


def _onnx_variant(model: SoVITSModel, notes: dict[str, str]) -> Variant:
    import tempfile

    import onnxruntime as ort

    from renderer.export_onnx import VocoderGraph, export_graph, random_vocoder_inputs, vocoder_spec

    model.fast_dec = None
    path = Path(tempfile.mkdtemp()) / "sovits_decode.onnx"
    start = time.perf_counter()
    export_graph(VocoderGraph(model), random_vocoder_inputs(model, model.reference_ge(
        [torch.ones(1, 1025, 50)])), vocoder_spec(), path)
    notes["onnx_export_s"] = f"{time.perf_counter() - start:.1f}"
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def run(inputs: dict[str, Tensor]) -> Tensor:
        b = inputs["codes"].shape[0]
        feed = {"codes": inputs["codes"].numpy(), "code_lengths": inputs["code_lengths"].numpy(),
                "phones": inputs["phones"].numpy(), "phone_lengths": inputs["phone_lengths"].numpy(),
                "ge": inputs["ge"].expand(b, -1, -1).contiguous().numpy(), "noise": inputs["noise"].numpy(),
                "noise_scale": torch.tensor(0.5).numpy()}
        return torch.from_numpy(sess.run(["audio"], feed)[0])

    return run


def bench_batch(model: SoVITSModel, variants: dict[str, Variant], batch: int, args: argparse.Namespace,
                peak_fp32: float) -> list[Row]:
    inputs = make_inputs(model, batch, args.seconds, seed=batch)
    seconds = audio_seconds(inputs)
    flops = count_flops(model, inputs)
    ref = _with_dec(model, None)(inputs)
    times: dict[str, list[float]] = {k: [] for k in variants}
    rss: dict[str, float] = dict.fromkeys(variants, 0.0)
    sers: dict[str, float] = {}
    for name, fn in variants.items():  # warm-up (+ quality on the same inputs and noise)
        sers[name] = ser_db(ref, fn(inputs))
        print(f"batch {batch}: warmed up {name}", file=sys.stderr, flush=True)
    for run in range(args.runs):
        print(f"batch {batch}: run {run + 1}/{args.runs}", file=sys.stderr, flush=True)
        for name, fn in variants.items():
            with RssSampler() as mem:
                start = time.perf_counter()
                fn(inputs)
                times[name].append(time.perf_counter() - start)
            rss[name] = max(rss[name], mem.peak / 2**20)
    load = os.getloadavg()[0]
    rows = []
    for name, ts in times.items():
        med = statistics.median(ts)
        rows.append(Row(name, batch, med / seconds, min(ts) / seconds, max(ts) / seconds, seconds / med,
                        flops / med / 1e9, flops / med / 1e9 / peak_fp32, sers[name], rss[name],
                        torch.get_num_threads(), load))
    print(f"batch {batch}: {seconds:.1f} audio s per call, {flops / 1e9:.1f} GFLOP per call "
          f"({flops / 1e9 / seconds:.1f} GFLOP per audio s incl. padding)", file=sys.stderr)
    return rows


def format_table(rows: list[Row]) -> str:
    lines = ["| variant | batch | RTF median (min-max) | audio s/s | GFLOP/s | of fp32 GEMM peak | SER dB "
             "| process RSS MB "
             "| threads | load 1 min |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        ser = "exact" if r.ser_db == float("inf") else f"{r.ser_db:.1f}"
        lines.append(f"| {r.variant} | {r.batch} | {r.rtf:.3f} ({r.rtf_min:.3f}-{r.rtf_max:.3f}) | "
                     f"{r.audio_s_per_s:.2f} | {r.gflops:.1f} | {100 * r.frac_peak:.0f} % | {ser} | "
                     f"{r.peak_rss_mb:.0f} | {r.threads} | {r.load_1min:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", default="full", choices=["full", "tiny"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=10.0, help="audio seconds of the longest row")
    p.add_argument("--batch", default="1,4", help="comma-separated batch sizes")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--variants", default="", help="comma-separated substrings: run only matching variants")
    p.add_argument("--compile", action="store_true", help="also torch.compile (inductor) the generator")
    p.add_argument("--onnx", action="store_true", help="also export the decode to ONNX and run onnxruntime")
    p.add_argument("--json", type=Path, help="write the figures here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    model, _cfg, _ = load_sovits(model_path(args.size))
    peak = peak_reference(args.threads)
    notes: dict[str, str] = {}
    variants = build_variants(model, args.compile, args.onnx, notes)
    if args.variants:
        keep = [s.strip() for s in args.variants.split(",") if s.strip()]
        variants = {k: v for k, v in variants.items() if k == "reference + inference_mode" or
                    any(s in k for s in keep)}
    rows: list[Row] = []
    for b in [int(x) for x in args.batch.split(",")]:
        rows += bench_batch(model, variants, b, args, peak["gemm_fp32"])  # frac_peak redone below
    peak_end = peak_reference(args.threads)
    best = max(peak["gemm_fp32"], peak_end["gemm_fp32"])  # the less disturbed of the two measurements
    for r in rows:
        r.frac_peak = r.gflops / best
    print(format_table(rows))
    print("\npeak (start / end of run): " + ", ".join(
        f"{k} {peak[k]:.0f} / {peak_end[k]:.0f} GFLOP/s" for k in peak))
    print(f"load average at start {load_start[0]:.1f}, end {os.getloadavg()[0]:.1f}; threads {args.threads}; "
          f"process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; "
          f"bf16 CPU {cpu_supports_bf16()}; notes {notes}")
    if args.json:
        settings = {k: str(v) for k, v in vars(args).items()}
        args.json.write_text(json.dumps({"command": " ".join(sys.argv), "args": settings,
                                         "peak_start": peak, "peak_end": peak_end, "notes": notes,
                                         "load_start": load_start, "load_end": os.getloadavg(),
                                         "rows": [asdict(r) for r in rows]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
