"""Every knob that changes how fast the engine runs (never what it produces), in one frozen object.

:class:`EngineTuning` is read in one place, :meth:`EngineTuning.resolve`: explicit overrides (CLI
options) win over the environment, which wins over the defaults. Each value is checked there, and a bad
one is a :class:`TuningError` that names the variable or option it came from. ``render doctor`` prints
the tuning in effect and ``render bench`` records it beside its figures. Why each default is what it
is, with the measurements, is in BENCHMARKS.md.

Environment variables read here (all optional):

=============================== ===================================================================
``RENDER_KV_BUDGET_MB``         KV-cache memory the automatic batch size may plan for, in MB
                                (default 1600 on CPU; half the free memory on a GPU)
``RENDER_OVERLAP``              ``1``: run the vocoder on a background thread while the GPT decodes,
                                ``0``: never (default: as measured, see ``RENDER_MEASURE_SETTINGS``)
``RENDER_MEASURE_SETTINGS``     ``0``: use the built-in batch sizes and thread split instead of measuring
                                them on first use per machine, precision and voice (default on;
                                renderer/engine/autotune.py)
``RENDER_MEMORY_BUDGET_MB``     resident memory the measured settings must fit, in MB (default 3000
                                on CPU): the KV cache and the vocoder's chunks in flight count against it
``RENDER_HUGE_PAGES``           ``1``: ask for transparent huge pages behind the CPU KV cache
                                (default off: faster steps but slower chapters, BENCHMARKS.md)
``RENDER_MMAP_THRESHOLD_MB``    give every heap block of at least this many MB its own mapping
                                (glibc ``M_MMAP_THRESHOLD``; default 0 = glibc's own adjustment;
                                4 bounds the memory of a worker on a small machine, slower)
``ONEDNN_PRIMITIVE_CACHE_CAPACITY``  oneDNN's own variable: how many compiled convolution/matmul
                                primitives it keeps (default 1024)
=============================== ===================================================================

The other ``RENDER_*`` variables are not tuning: ``RENDER_VOICES_DIR`` (where voices live),
``RENDER_DB`` (the job store URL of ``render worker``), ``RENDER_BERT_DIR`` (the Chinese BERT folder
for voices imported without one), ``RENDER_BENCH_CACHE`` (where ``render bench`` keeps its generated
full-size voice), and, for the test suite only (read under ``tests/``, never by the product),
``RENDER_CONFORMANCE_DIR`` (the conformance set), and the PostgreSQL, fake-engine and fault-injection
variables described in ``tests/jobs/conftest.py`` and ``tests/fakes``. Batch size, threads, the
attention kernel, packed weights and vocoder buckets have no variable: they are CLI options
(``--batch-size``, ``--threads``) or are changed only by ``render bench --tune NAME=VALUE`` for A/B
measurements.

Process-wide settings (the oneDNN cache size, glibc's mmap threshold) are applied by
:func:`apply_process_settings` when an engine is built, never at import.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from renderer.errors import OptionsError

__all__ = ["ATTENTION_KERNELS", "ENVIRONMENT", "EngineTuning", "TuningError", "apply_process_settings"]

#: Decode-step attention implementations: the fused numba kernel where it runs (auto), always (numba,
#: an error where it cannot be built), or never (torch).
ATTENTION_KERNELS = ("auto", "numba", "torch")

#: Field -> the environment variable it is read from (fields without one are set by options only).
ENVIRONMENT: dict[str, str] = {
    "kv_budget_mb": "RENDER_KV_BUDGET_MB",
    "overlap": "RENDER_OVERLAP",
    "measure": "RENDER_MEASURE_SETTINGS",
    "memory_budget_mb": "RENDER_MEMORY_BUDGET_MB",
    "huge_pages": "RENDER_HUGE_PAGES",
    "mmap_threshold_mb": "RENDER_MMAP_THRESHOLD_MB",
    "onednn_primitive_cache": "ONEDNN_PRIMITIVE_CACHE_CAPACITY",
}

#: Fields without a variable -> where they are set instead.
OPTIONS: dict[str, str] = {
    "batch_size": "--batch-size",
    "threads": "--threads",
    "attention": "render bench --tune",
    "packed_linear": "render bench --tune",
    "vocoder_bucket_tokens": "render bench --tune",
    "vocoder_batch": "render bench --tune",
    "vocoder_window_s": "render bench --tune",
}

_ON = ("1", "true", "yes", "on")
_OFF = ("0", "false", "no", "off")


class TuningError(OptionsError):
    """A tuning value (option or environment variable) is malformed or out of range."""


@dataclass(frozen=True)
class EngineTuning:
    """How the engine runs; none of these change a chunk's tokens or audio beyond float rounding.

    batch_size: GPT rows decoded at once; None = measured (``measure``), else as many as ``kv_budget_mb``
        allows (32 fp32 / 64 bf16 on CPU by default).
    threads: torch intra-op threads (and ONNX Runtime's); None = torch's default (all cores).
    kv_budget_mb: memory the automatic batch size plans for the KV cache; None = 1600 MB on CPU, half
        the free memory on a GPU.
    attention: decode-step attention, one of :data:`ATTENTION_KERNELS`.
    packed_linear: run the GPT's linear layers on weights prepacked for oneDNN (CPU; one extra copy of
        the weights, faster decode steps).
    huge_pages: ask for transparent huge pages behind the CPU KV cache.
    vocoder_bucket_tokens: pad the vocoder's token and phone counts to a multiple of this, so chunks of
        similar length reuse one set of convolution primitives (0 = exact lengths; masked, the audio is
        the same).
    vocoder_batch: chunks the torch vocoder renders at once; None = measured (``measure``), else 1 on CPU,
        8 on GPU.
    vocoder_window_s: on CPU a chunk longer than this (plus two margins of its receptive field, ≈ 0.4 s) is
        generated this many seconds at a time: the same audio, with the generator's memory bounded by the
        window instead of the chunk (0 = whole chunks).
    overlap: run the vocoder on a background thread while the GPT decodes; None = measured (``measure``),
        else off.
    measure: choose the settings left automatic (batch_size, vocoder_batch, overlap) by measuring this
        machine on first use per precision and voice (cached; renderer.engine.autotune); off = built-in.
    memory_budget_mb: resident memory the measured settings must fit; None = 3000 MB on CPU.
    mmap_threshold_mb: glibc's mmap threshold in MB (0 = leave glibc's adaptive threshold alone).
    onednn_primitive_cache: oneDNN primitive cache capacity (entries).
    """

    batch_size: int | None = None
    threads: int | None = None
    kv_budget_mb: float | None = None
    attention: str = "auto"
    packed_linear: bool = True
    huge_pages: bool = False
    vocoder_bucket_tokens: int = 16
    vocoder_batch: int | None = None
    vocoder_window_s: float = 6.0
    overlap: bool | None = None
    measure: bool = True
    memory_budget_mb: float | None = None
    mmap_threshold_mb: float = 0.0
    onednn_primitive_cache: int = 1024

    def __post_init__(self) -> None:
        for item in fields(self):
            problem = _problem(item.name, getattr(self, item.name))
            if problem:
                raise TuningError(f"tuning {item.name}={getattr(self, item.name)!r}: {problem}")

    # ------------------------------------------------------------------ reading
    @classmethod
    def resolve(cls, overrides: Mapping[str, Any] | None = None,
                environ: Mapping[str, str] | None = None) -> EngineTuning:
        """Defaults, then the environment (``environ``, default ``os.environ``), then ``overrides``.

        ``overrides`` maps field names to values (None = not given, e.g. a CLI option left out); a
        string value is parsed like the environment's. Unknown names and bad values raise TuningError.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, variable in ENVIRONMENT.items():
            raw = env.get(variable, "").strip()
            if raw:
                values[name] = cls.parse(name, raw, source=variable)
        for name, value in (overrides or {}).items():
            if value is None:
                continue
            if name not in _FIELDS:
                raise TuningError(f"unknown tuning {name!r}; known: {', '.join(_FIELDS)}")
            values[name] = cls.parse(name, value, source=name) if isinstance(value, str) else value
        return cls(**values)

    @classmethod
    def parse(cls, name: str, text: str, source: str | None = None) -> Any:
        """The value of field ``name`` written as ``text`` (``none``/``auto`` = None where allowed)."""
        if name not in _FIELDS:
            raise TuningError(f"unknown tuning {name!r}; known: {', '.join(_FIELDS)}")
        label = source or name
        raw = text.strip()
        spec = _SPECS[name]
        try:
            value = spec.parse(raw)
        except ValueError:
            raise TuningError(f"{label}={text!r}: expected {spec.expected}") from None
        problem = _problem(name, value)
        if problem:
            raise TuningError(f"{label}={text!r}: {problem}")
        return value

    def with_overrides(self, **changes: Any) -> EngineTuning:
        """A copy with some fields changed (validated like any other)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self, environ: Mapping[str, str] | None = None) -> list[tuple[str, str, str]]:
        """(field, value, where it can be set) rows for ``render doctor``; a set variable is marked."""
        env = os.environ if environ is None else environ
        rows = []
        for item in fields(self):
            variable = ENVIRONMENT.get(item.name)
            where = OPTIONS.get(item.name, "")
            if variable:
                where = f"{variable} (set)" if env.get(variable, "").strip() else variable
            value = getattr(self, item.name)
            rows.append((item.name, "auto" if value is None else str(value), where))
        return rows


# ------------------------------------------------------------------ parsing and checks, per field
def _flag(raw: str) -> bool:
    value = raw.lower()
    if value in _ON:
        return True
    if value in _OFF:
        return False
    raise ValueError(raw)


@dataclass(frozen=True)
class _Spec:
    """How one field is written and what it accepts."""

    kind: str  # "int", "float", "flag" or "choice"
    expected: str  # for error messages
    minimum: float = 0.0
    exclusive: bool = False  # minimum itself not allowed
    optional: bool = False  # None ('auto') allowed

    def parse(self, raw: str) -> Any:
        if self.optional and raw.lower() in ("", "auto", "none"):
            return None
        if self.kind == "flag":
            return _flag(raw)
        if self.kind == "choice":
            return raw.lower()
        return int(raw) if self.kind == "int" else float(raw)

    def problem(self, value: Any) -> str | None:
        if value is None:
            return None if self.optional else f"expected {self.expected}"
        if self.kind == "flag":
            return None if isinstance(value, bool) else f"expected {self.expected}"
        if self.kind == "choice":
            return None if value in ATTENTION_KERNELS else f"expected {self.expected}"
        numeric = (int,) if self.kind == "int" else (int, float)
        if isinstance(value, bool) or not isinstance(value, numeric) or value != value:  # NaN != NaN
            return f"expected {self.expected}"
        if value < self.minimum or (self.exclusive and value == self.minimum):
            return f"expected {self.expected}"
        return None


_SPECS: dict[str, _Spec] = {
    "batch_size": _Spec("int", "a whole number >= 1 or 'auto'", 1, optional=True),
    "threads": _Spec("int", "a whole number >= 1 or 'auto'", 1, optional=True),
    "kv_budget_mb": _Spec("float", "a number of megabytes > 0 or 'auto'", 0, exclusive=True, optional=True),
    "attention": _Spec("choice", f"one of {', '.join(ATTENTION_KERNELS)}"),
    "packed_linear": _Spec("flag", "1/0 (on/off, yes/no, true/false)"),
    "huge_pages": _Spec("flag", "1/0 (on/off, yes/no, true/false)"),
    "vocoder_bucket_tokens": _Spec("int", "a whole number of tokens >= 0"),
    "vocoder_batch": _Spec("int", "a whole number >= 1 or 'auto'", 1, optional=True),
    "vocoder_window_s": _Spec("float", "a number of seconds >= 0"),
    "overlap": _Spec("flag", "1/0 (on/off, yes/no, true/false) or 'auto'", optional=True),
    "measure": _Spec("flag", "1/0 (on/off, yes/no, true/false)"),
    "memory_budget_mb": _Spec("float", "a number of megabytes > 0 or 'auto'", 0, exclusive=True, optional=True),
    "mmap_threshold_mb": _Spec("float", "a number of megabytes >= 0"),
    "onednn_primitive_cache": _Spec("int", "a whole number of entries >= 0"),
}
_FIELDS = tuple(_SPECS)


def _problem(name: str, value: Any) -> str | None:
    """Why ``value`` is not acceptable for field ``name`` (None when it is)."""
    return _SPECS[name].problem(value)


# ------------------------------------------------------------------ process-wide settings
_applied_lock = threading.Lock()
_applied: list[tuple[int, float]] = []


def apply_process_settings(tuning: EngineTuning) -> bool:
    """Apply the settings that belong to the whole process (call before the engine's first torch work).

    * torch's intra-op threads (``threads``, when set; also ``OMP_NUM_THREADS`` for libraries that read it);
    * oneDNN's primitive cache capacity (``ONEDNN_PRIMITIVE_CACHE_CAPACITY``): oneDNN reads it when it
      creates its first primitive;
    * glibc's mmap threshold (``mallopt(M_MMAP_THRESHOLD)``) when ``mmap_threshold_mb`` > 0.

    The last two are applied once per process (again only when they change). Returns True when they
    were applied by this call.
    """
    if tuning.threads is not None:
        import torch

        torch.set_num_threads(tuning.threads)
        os.environ.setdefault("OMP_NUM_THREADS", str(tuning.threads))
    from renderer.memory import fix_mmap_threshold

    wanted = (tuning.onednn_primitive_cache, tuning.mmap_threshold_mb)
    with _applied_lock:
        if _applied and _applied[-1] == wanted:
            return False
        os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = str(tuning.onednn_primitive_cache)
        fix_mmap_threshold(tuning.mmap_threshold_mb)
        _applied.append(wanted)
        return True
