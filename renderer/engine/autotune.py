"""Engine settings chosen by measuring this machine: GPT batch, vocoder batch, thread split between stages.

Constants chosen on one CPU are wrong on another: on a 2-core AMD EPYC without AMX the vocoder is fastest
one chunk at a time, on a 2-core Xeon with AMX four chunks at once run 1.5x faster (issue 21). So on first
use per (machine, threads, precision, voice files) the engine measures, in a few seconds:

* GPT decode steps at each batch the KV-cache budget allows (the cache filled to a realistic length), in
  tokens per second;
* the vocoder at batch 1, 2 and 4 on equal chunks, in audio seconds per wall second, and the resident
  memory each chunk in flight adds per audio second;
* both stages on half the threads (what each gets when they run side by side).

:func:`choose` turns those figures into settings (pure, so it is tested with the figures of both kinds of
CPU): the smallest batch within :data:`TOLERANCE` of the fastest measured one (a smaller batch holds less
memory), under the memory budget, and the vocoder overlapped with the GPT only when the measured
half-thread rates predict a gain of more than the slowdown two stages sharing the cores cost each other.
The result and the reasons are cached beside the precision check (``~/.cache/audiobook-renderer/tuning``);
``render doctor --voice NAME`` shows them. ``EngineTuning.measure`` off (``RENDER_MEASURE_SETTINGS=0``,
``render bench --tune measure=0``) keeps the built-in settings; explicit ``batch_size``/``vocoder_batch``/
``overlap`` always win over measured ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from renderer.engine.backend import StepInputs, VocodeItem
from renderer.memory import release_free_memory
from renderer.rounding import round_up

#: Bump when what is measured or how it is chosen changes: cached results of older versions are ignored.
FORMAT_VERSION = 3  # 2: the KV cache gets only the room the memory budget leaves; 3: and the text frontend its share
#: A smaller batch within this share of the fastest measured one is preferred (less memory, less padding).
TOLERANCE = 0.05
#: Two stages running side by side on one machine's cores slow each other by 5-20 % (measured on the 2-core
#: EPYC: BENCHMARKS.md); overlap must predict more than this gain to be chosen.
CONTENTION = 0.15
#: GPT batches tried (those the KV budget allows), vocoder batches tried.
GPT_BATCHES = (8, 16, 32, 64)
VOCODER_BATCHES = (1, 2, 4)
#: Cached positions per row while the decode steps are timed: 60 reference + 60 target phones, 150 prompt
#: tokens and half of a chunk's ~100 generated tokens.
TIMING_POSITIONS = 320
#: Decode steps are timed for at least this long (and at least 3 steps), twice; the faster window counts
#: (a shared machine's bursts of other work slow one window, rarely both).
STEP_WINDOW_S = 0.2
#: Vocoder chunks per timing (a multiple of every batch tried) and their length: 50 tokens = 2 s of audio.
VOCODER_CHUNKS = 4
VOCODER_TOKENS = 50
VOCODER_PHONES = 20
#: Semantic tokens per second of audio (1280 samples each at 32 kHz).
TOKENS_PER_SECOND = 25
#: The longest chunk the vocoder's memory is planned for (seconds of audio).
PLANNED_CHUNK_SECONDS = 15.0


@dataclass(frozen=True)
class Measurements:
    """What was measured (rates on ``threads`` threads unless named half_*)."""

    threads: int
    gpt_tokens_per_s: dict[int, float]
    vocoder_audio_per_s: dict[int, float]
    #: resident memory a chunk being vocoded adds, per second of its audio (MB)
    vocoder_mb_per_audio_s: float
    #: resident memory with the engine loaded and no KV cache (MB)
    base_mb: float
    #: KV cache one GPT row plans for (MB)
    kv_mb_per_row: float
    #: the chosen GPT batch and vocoder batch on half the threads each (None: one thread, nothing to split)
    half_gpt_tokens_per_s: float | None = None
    half_vocoder_audio_per_s: float | None = None
    seconds: float = 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurements:
        values = dict(data)
        for name in ("gpt_tokens_per_s", "vocoder_audio_per_s"):
            values[name] = {int(k): float(v) for k, v in values[name].items()}
        return cls(**values)


@dataclass(frozen=True)
class Limits:
    """Memory the choice must fit: the whole process and the KV cache's part of it (MB)."""

    memory_budget_mb: float
    kv_budget_mb: float
    chunk_seconds: float = PLANNED_CHUNK_SECONDS
    #: what the rest of the process holds beside the engine (text frontend, job store, export)
    reserve_mb: float = 0.0


@dataclass(frozen=True)
class MeasuredSettings:
    """The settings chosen and why (one line per setting), with the measurements behind them."""

    batch_size: int | None
    vocoder_batch: int | None
    overlap: bool
    reasons: tuple[str, ...]
    measurements: Measurements
    limits: Limits
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MeasuredSettings:
        return cls(batch_size=data["batch_size"], vocoder_batch=data["vocoder_batch"], overlap=bool(data["overlap"]),
                   reasons=tuple(data["reasons"]), measurements=Measurements.from_dict(data["measurements"]),
                   limits=Limits(**data["limits"]), info=dict(data.get("info", {})))


# ------------------------------------------------------------------------------------------ the choice
def _smallest_near_best(rates: dict[int, float]) -> tuple[int, int]:
    """(chosen, fastest): the smallest key whose rate is within TOLERANCE of the best rate."""
    fastest = max(rates, key=lambda k: rates[k])
    chosen = min(k for k, v in rates.items() if v >= (1 - TOLERANCE) * rates[fastest])
    return chosen, fastest


def _rates_text(rates: dict[int, float], unit: str) -> str:
    return ", ".join(f"{k}: {v:.{1 if v < 10 else 0}f}" for k, v in sorted(rates.items())) + f" {unit}"


def choose(m: Measurements, limits: Limits) -> MeasuredSettings:
    """Settings from measurements (see the module docstring); never more memory than ``limits`` allow."""
    reasons: list[str] = []
    batch = None
    # the KV cache may take what the budget leaves beside the engine and one vocoder chunk in flight
    one_chunk_mb = m.vocoder_mb_per_audio_s * limits.chunk_seconds if m.vocoder_audio_per_s else 0.0
    kv_room = min(limits.kv_budget_mb, limits.memory_budget_mb - m.base_mb - limits.reserve_mb - one_chunk_mb)
    allowed = {b: r for b, r in m.gpt_tokens_per_s.items() if b * m.kv_mb_per_row <= kv_room}
    allowed = allowed or ({min(m.gpt_tokens_per_s): m.gpt_tokens_per_s[min(m.gpt_tokens_per_s)]}
                          if m.gpt_tokens_per_s else {})
    if allowed:
        batch, fastest = _smallest_near_best(allowed)
        fits_all = len(allowed) == len(m.gpt_tokens_per_s)
        why = ("the fastest" if fits_all else "the fastest that fits") if batch == fastest else (
            f"within {TOLERANCE:.0%} of batch {fastest}'s {allowed[fastest]:.0f} tok/s with "
            f"{(fastest - batch) * m.kv_mb_per_row:.0f} MB less KV cache")
        reasons.append(f"GPT batch {batch}: {why} (decode steps, {_rates_text(m.gpt_tokens_per_s, 'tok/s')}; "
                       f"{_kv_room_text(limits, kv_room, m.base_mb, one_chunk_mb)} = "
                       f"{max(kv_room, 0) / m.kv_mb_per_row:.0f} rows)")
    vocoder = None
    if m.vocoder_audio_per_s:
        kv_mb = (batch or 0) * m.kv_mb_per_row
        room = limits.memory_budget_mb - m.base_mb - limits.reserve_mb - kv_mb
        per_chunk = m.vocoder_mb_per_audio_s * limits.chunk_seconds
        fits = {b: r for b, r in m.vocoder_audio_per_s.items() if b == 1 or b * per_chunk <= room}
        vocoder, fastest = _smallest_near_best(fits)
        why = "the fastest" if vocoder == fastest else f"within {TOLERANCE:.0%} of batch {fastest}"
        left_out = sorted(set(m.vocoder_audio_per_s) - set(fits))
        if left_out:
            why += (f"; batch {', '.join(map(str, left_out))} would need more than the "
                    f"{max(room, 0):.0f} MB left of the {limits.memory_budget_mb:.0f} MB budget")
        reasons.append(f"vocoder batch {vocoder}: {why} ({_rates_text(m.vocoder_audio_per_s, 'audio s/s')}; "
                       f"{m.vocoder_mb_per_audio_s:.0f} MB per audio second in flight)")
    overlap = _choose_overlap(m, batch, vocoder, reasons)
    return MeasuredSettings(batch, vocoder, overlap, tuple(reasons), m, limits)


def _kv_room_text(limits: Limits, kv_room: float, base_mb: float, one_chunk_mb: float) -> str:
    if kv_room >= limits.kv_budget_mb:
        return f"KV budget {limits.kv_budget_mb:.0f} MB"
    reserve = f"{limits.reserve_mb:.0f} MB text frontend and the rest - " if limits.reserve_mb else ""
    return (f"KV room {max(kv_room, 0):.0f} MB: {limits.memory_budget_mb:.0f} MB budget - {base_mb:.0f} MB engine - "
            f"{reserve}{one_chunk_mb:.0f} MB for a {limits.chunk_seconds:.0f} s chunk in the vocoder")


def _choose_overlap(m: Measurements, batch: int | None, vocoder: int | None, reasons: list[str]) -> bool:
    """Vocoder beside the GPT (half the threads each) or after it (all threads each), per audio second."""
    if batch is None or vocoder is None or m.half_gpt_tokens_per_s is None or m.half_vocoder_audio_per_s is None:
        reasons.append("stages in turn on all threads (nothing measured to split)")
        return False
    in_turn = TOKENS_PER_SECOND / m.gpt_tokens_per_s[batch] + 1 / m.vocoder_audio_per_s[vocoder]
    side_by_side = max(TOKENS_PER_SECOND / m.half_gpt_tokens_per_s, 1 / m.half_vocoder_audio_per_s)
    side_by_side *= 1 + CONTENTION
    overlap = side_by_side < in_turn
    half = m.threads // 2
    reasons.append(
        f"{'vocoder beside the GPT' if overlap else 'stages in turn'}: per audio second, GPT then vocoder on "
        f"{m.threads} threads take {in_turn:.3f} s; side by side on {half} + {m.threads - half} threads "
        f"{side_by_side:.3f} s (the slower of GPT {TOKENS_PER_SECOND / m.half_gpt_tokens_per_s:.3f} s and "
        f"vocoder {1 / m.half_vocoder_audio_per_s:.3f} s, +{CONTENTION:.0%} for sharing the machine)")
    return overlap


# ------------------------------------------------------------------------------------------ measuring
@contextmanager
def _threads(n: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class _PeakRss:
    """Peak resident memory (MB) while the block runs, sampled every 5 ms."""

    def __init__(self) -> None:
        self.peak_mb = 0.0
        self._stop = threading.Event()

    def __enter__(self) -> _PeakRss:
        import psutil

        process = psutil.Process()

        def sample() -> None:
            while not self._stop.is_set():
                self.peak_mb = max(self.peak_mb, process.memory_info().rss / 2**20)
                self._stop.wait(0.005)

        self._thread = threading.Thread(target=sample, name="autotune-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def resident_mb() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss / 2**20)


def gpt_step_rate(backend: Any, rows: int, positions: int = TIMING_POSITIONS) -> float:
    """Decode tokens per second of ``rows`` rows with ``positions`` cached positions each (steps only).

    The cache is filled (not left as untouched zero pages, which would read from one shared page) and the
    rows do not advance, so every timed step does the same work."""
    backend.start(rows, round_up(positions + 1, 64))
    try:
        for keys, values in zip(backend.cache.keys, backend.cache.values, strict=True):
            keys.fill_(0.01)
            values.fill_(0.01)
        v = backend.vocab_size
        inputs = StepInputs(tokens=np.zeros(rows, np.int64), positions=np.full(rows, 100, np.int64),
                            cache_lens=np.full(rows, positions, np.int64), presence=np.zeros((rows, v), np.float32),
                            penalty=np.ones(rows, np.float32), eos_block=np.ones(rows, np.float32))
        backend.step(inputs)  # warm-up: kernels chosen, buffers made
        best = 0.0
        for _window in range(2):
            start, steps = time.perf_counter(), 0
            while steps < 3 or time.perf_counter() - start < STEP_WINDOW_S:
                backend.step(inputs)
                steps += 1
            best = max(best, rows * steps / (time.perf_counter() - start))
        return best
    finally:
        backend.release()
        release_free_memory()


def vocoder_rate(backend: Any, batch: int, chunks: int = VOCODER_CHUNKS) -> tuple[float, float]:
    """(audio seconds per wall second, resident MB added per audio second in flight) at vocoder ``batch``."""
    vocoder = backend.vocoder
    rng = np.random.default_rng(0)
    items = [VocodeItem(f"t{i}", rng.integers(0, 1024, VOCODER_TOKENS), rng.integers(1, 732, VOCODER_PHONES))
             for i in range(chunks)]
    previous = vocoder.max_batch
    vocoder.max_batch = batch
    try:
        backend.vocode(items[:batch], speed=1.0, noise_scale=0.5, seeds=list(range(batch)))  # warm-up
        release_free_memory()
        before = resident_mb()
        with _PeakRss() as rss:
            start = time.perf_counter()
            audio = backend.vocode(items, speed=1.0, noise_scale=0.5, seeds=list(range(chunks)))
            wall = time.perf_counter() - start
    finally:
        vocoder.max_batch = previous
        release_free_memory()
    seconds = sum(len(a) for a in audio) / 32000
    in_flight_s = seconds / chunks * batch
    return seconds / wall, max(0.0, rss.peak_mb - before) / in_flight_s


def measure(backend: Any, threads: int, kv_mb_per_row: float, max_rows: int,
            log: Callable[[str], None] | None = None) -> Measurements:
    """Time the GPT steps and the vocoder of ``backend`` (a torch backend on CPU) on ``threads`` threads."""
    started = time.perf_counter()
    release_free_memory()
    base_mb = resident_mb()
    gpt: dict[int, float] = {}
    vocoder: dict[int, float] = {}
    memory: list[float] = []
    with _threads(threads):
        if getattr(backend, "cache", None) is not None:
            for rows in (b for b in GPT_BATCHES if b <= max(max_rows, GPT_BATCHES[0])):
                gpt[rows] = gpt_step_rate(backend, rows)
        if getattr(backend, "vocoder", None) is not None:
            for batch in VOCODER_BATCHES:
                vocoder[batch], mb = vocoder_rate(backend, batch)
                memory.append(mb)
    half_gpt = half_voc = None
    if threads >= 2 and gpt and vocoder:
        provisional = choose(Measurements(threads, gpt, vocoder, max(memory), base_mb, kv_mb_per_row),
                             Limits(float("inf"), max_rows * kv_mb_per_row))
        with _threads(threads // 2):
            assert provisional.batch_size is not None and provisional.vocoder_batch is not None
            half_gpt = gpt_step_rate(backend, provisional.batch_size)
            half_voc = vocoder_rate(backend, provisional.vocoder_batch)[0]
    m = Measurements(threads, gpt, vocoder, max(memory) if memory else 0.0, base_mb, kv_mb_per_row, half_gpt,
                     half_voc, time.perf_counter() - started)
    if log is not None:
        log(f"measured engine settings in {m.seconds:.1f} s")
    return m


# ------------------------------------------------------------------------------------------ cache
def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "audiobook-renderer" / "tuning"


def cache_key(voice: Any, device: str, precision: str, threads: int, limits: Limits) -> str:
    """Machine (CPU model and flags, cores), torch, threads, precision, the voice's weight files, the limits."""
    import torch

    from renderer.hardware import cpu_info

    cpu = cpu_info()
    files = []
    for path in (getattr(voice, "gpt_path", None), getattr(voice, "sovits_path", None)):
        if path is not None:
            stat = Path(path).stat()
            files.append([str(Path(path).resolve()), stat.st_size, int(stat.st_mtime)])
    parts = [FORMAT_VERSION, cpu.model, sorted(cpu.flags), cpu.logical_cpus, torch.__version__, device, precision,
             threads, files, asdict(limits)]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:24]


def load_cached(key: str) -> MeasuredSettings | None:
    path = cache_dir() / f"{key}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT_VERSION:
            return None
        return MeasuredSettings.from_dict(data)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing or unreadable: measure again


def store_cached(key: str, settings: MeasuredSettings) -> None:
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{key}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(settings.to_dict(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, folder / f"{key}.json")


def cached_settings() -> list[MeasuredSettings]:
    """Every cached choice on this machine (``render doctor``), newest first."""
    found = []
    for path in sorted(cache_dir().glob("*.json"), key=lambda p: -p.stat().st_mtime):
        loaded = load_cached(path.stem)
        if loaded is not None:
            found.append(loaded)
    return found


# ------------------------------------------------------------------------------------------ the engine's entry
#: Memory budget on CPU when ``EngineTuning.memory_budget_mb`` is automatic (MB).
CPU_MEMORY_BUDGET_MB = 3000.0
#: Memory the process holds beside the engine, which the measurement does not see because it is loaded later:
#: the text frontend (measured 0.50 GB: English dictionary and neural G2P 0.14, Chinese dictionaries 0.16,
#: the BERT) and the job store and export (BENCHMARKS.md, the book stage). Software, not CPU, sets it.
CPU_RESERVE_MB = 500.0


def limits_for(tuning: Any) -> Limits:
    from renderer.engine.batching import CPU_KV_BUDGET

    kv_mb = tuning.kv_budget_mb if tuning.kv_budget_mb is not None else CPU_KV_BUDGET / 2**20
    # a chunk longer than the vocoder's window is generated a window at a time (plus its margins, < 1 s)
    window = float(getattr(tuning, "vocoder_window_s", 0.0) or 0.0)
    chunk_s = min(PLANNED_CHUNK_SECONDS, window + 1.0) if window > 0 else PLANNED_CHUNK_SECONDS
    return Limits(tuning.memory_budget_mb or CPU_MEMORY_BUDGET_MB, float(kv_mb), chunk_s, CPU_RESERVE_MB)


def wants_measurement(tuning: Any, backend: Any) -> bool:
    """Whether ``tuning`` leaves a setting to measurement and ``backend`` is one this module measures
    (the torch backend on CPU; GPUs and ONNX Runtime keep their built-in settings)."""
    automatic = tuning.batch_size is None or tuning.vocoder_batch is None or tuning.overlap is None
    return bool(tuning.measure and automatic and getattr(backend, "name", "") == "torch"
                and getattr(backend, "device", "cpu") == "cpu")


def measured_settings(voice: Any, backend: Any, tuning: Any, refresh: bool = False,
                      log: Callable[[str], None] | None = None) -> MeasuredSettings:
    """The cached choice for this machine, precision and voice; measured (a few seconds) when missing."""
    import torch

    from renderer.engine.batching import CPU_MAX_ROWS, kv_bytes_per_row

    threads = int(tuning.threads or torch.get_num_threads())
    precision = str(getattr(backend, "precision", "fp32"))
    limits = limits_for(tuning)
    key = cache_key(voice, "cpu", precision, threads, limits)
    cached = None if refresh else load_cached(key)
    if cached is not None and not (measured_when_busy(cached) and quiet_now()):
        return cached
    if cached is not None and log is not None:
        busy_load = (cached.info.get("load_average") or [0.0])[0]
        log(f"measuring the engine settings again: they were measured at load {busy_load} and the machine is "
            "quieter now")
    cache = getattr(backend, "cache", None)
    kv_mb = kv_bytes_per_row(cache.n_layer, cache.n_head * cache.head_dim, cache.dtype) / 2**20 if cache else 0.0
    max_rows = min(CPU_MAX_ROWS, int(limits.kv_budget_mb // kv_mb)) if kv_mb else 0
    if log is not None:
        log(f"measuring engine settings for voice {getattr(voice, 'name', '?')} ({precision}, {threads} threads; "
            "first use only)")
    chosen = choose(measure(backend, threads, kv_mb, max_rows, log), limits)
    chosen = MeasuredSettings(chosen.batch_size, chosen.vocoder_batch, chosen.overlap, chosen.reasons,
                              chosen.measurements, chosen.limits,
                              {"voice": str(getattr(voice, "name", "")), "precision": precision, "threads": threads,
                               "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
                               # a busy machine measures wrong: the load is kept to judge the choice by
                               "load_average": _load_average()})
    store_cached(key, chosen)
    return chosen


def _cpus() -> int:
    from renderer.hardware import cpu_info

    return cpu_info().logical_cpus


def measured_when_busy(settings: MeasuredSettings) -> bool:
    """Whether ``settings`` were measured while at least twice as many threads as cores wanted to run: then
    the rates are wrong (on a 2-vCPU machine at load 10, 8-49 tok/s where the quiet machine gives 195-360)."""
    load = settings.info.get("load_average") or []
    return bool(load) and float(load[0]) > BUSY_LOAD_PER_CPU * _cpus()


def quiet_now() -> bool:
    """No more runnable threads than cores: a measurement now is worth more than one taken when busy."""
    load = _load_average()
    return load is not None and load[0] <= _cpus()


#: A 1-minute load above this many runnable threads per core marks a measurement as taken on a busy machine.
BUSY_LOAD_PER_CPU = 2.0


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def apply_measured(voice: Any, backend: Any, tuning: Any, log: Callable[[str], None] | None = None) -> Any:
    """``tuning`` with its automatic batch sizes and overlap set as measured (explicit values kept); the
    backend's vocoder is set to the chosen batch. Unchanged when nothing is left to measure."""
    if not wants_measurement(tuning, backend):
        return tuning
    settings = measured_settings(voice, backend, tuning, log=log)
    changes: dict[str, Any] = {}
    if tuning.batch_size is None and settings.batch_size is not None:
        changes["batch_size"] = settings.batch_size
    if tuning.vocoder_batch is None and settings.vocoder_batch is not None:
        changes["vocoder_batch"] = settings.vocoder_batch
        backend.vocoder.max_batch = settings.vocoder_batch
    if tuning.overlap is None:
        changes["overlap"] = settings.overlap
    return tuning.with_overrides(**changes)
