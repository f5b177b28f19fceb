"""Reduced-precision variants (bf16 on CPUs with AVX512-BF16/AMX, fp16 on GPUs), each checked against fp32.

A variant is used only when the hardware supports it AND a tolerance check against float32 passed:

GPT (teacher-forced: both runs are fed the float32 run's greedy tokens, so errors do not compound):
* ``top1_agreement`` >= 0.95: share of steps where the arg-max token agrees. Greedy decoding and the
  EOS rule depend only on the arg-max; random-weight models have flat distributions with many near-ties,
  so real voices agree more often than this bound.
* ``topk_overlap`` >= 0.90: mean share of the float32 top-15 (the default sampling set) that the variant
  also ranks in its top-15: sampling draws from that set, so this bounds how much it changes.
* ``max_abs_logit_diff`` is reported (not thresholded: its scale depends on the weights).

SoVITS: ``ser_db`` = 10 log10(sum(ref^2) / sum((ref - out)^2)) >= 20 dB on the same tokens and noise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

TOP1_MIN = 0.95
TOPK_OVERLAP_MIN = 0.90
SER_MIN_DB = 20.0
OVERLAP_K = 15


@dataclass(frozen=True)
class GPTPrecisionReport:
    precision: str
    steps: int
    max_abs_logit_diff: float
    top1_agreement: float
    topk_overlap: float

    @property
    def passed(self) -> bool:
        return self.top1_agreement >= TOP1_MIN and self.topk_overlap >= TOPK_OVERLAP_MIN

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed, "top1_min": TOP1_MIN, "topk_overlap_min": TOPK_OVERLAP_MIN}


def compare_logits(reference: np.ndarray, other: np.ndarray, precision: str) -> GPTPrecisionReport:
    """reference/other: raw logits [steps, V] of the same teacher-forced steps."""
    top1 = float(np.mean(reference.argmax(-1) == other.argmax(-1)))
    ref_top = np.argsort(-reference, axis=-1)[:, :OVERLAP_K]
    oth_top = np.argsort(-other, axis=-1)[:, :OVERLAP_K]
    overlap = float(np.mean([len(set(a) & set(b)) / OVERLAP_K for a, b in zip(ref_top, oth_top, strict=True)]))
    return GPTPrecisionReport(precision, len(reference), float(np.abs(reference - other).max()), top1, overlap)


def check_gpt_precision(reference_backend: Any, variant_backend: Any, prompt: np.ndarray, rows: list[Any],
                        n_tokens: int, precision: str) -> GPTPrecisionReport:
    """Greedy float32 decode of ``rows``, then the variant teacher-forced on those tokens; compare logits."""
    from renderer.engine.decode import BatchDecoder
    from renderer.engine.options import SamplingOptions

    options = SamplingOptions(top_k=1, max_tokens=n_tokens)
    ref = {r.key: r for r in BatchDecoder(reference_backend, prompt, options, slots=len(rows), record=True).run(rows)}
    forced = []
    for row in rows:
        tokens = ref[row.key].tokens
        if len(tokens) < len(ref[row.key].logits or []):
            tokens = np.concatenate([tokens, [0]])
        forced.append(type(row)(key=row.key, phone_ids=row.phone_ids, bert=row.bert, seed=row.seed, forced=tokens))
    low = {r.key: r for r in BatchDecoder(variant_backend, prompt, options, slots=len(rows), record=True).run(forced)}
    a = np.concatenate([np.stack(ref[k].logits or []) for k in ref])
    b = np.concatenate([np.stack(low[k].logits or []) for k in ref])
    return compare_logits(a, b, precision)


def signal_to_error_db(reference: np.ndarray, other: np.ndarray) -> float:
    """10 log10(signal power / error power) over the common length (inf when identical)."""
    n = min(len(reference), len(other))
    err = float(np.sum((reference[:n].astype(np.float64) - other[:n]) ** 2))
    sig = float(np.sum(reference[:n].astype(np.float64) ** 2))
    return float("inf") if err == 0 else 10.0 * float(np.log10(max(sig, 1e-30) / err))


def low_precision_dtype(device: str) -> torch.dtype | None:
    """bf16 on CPUs with native bf16 dot products, fp16 on CUDA, else None."""
    if device.startswith("cuda"):
        return torch.float16
    from renderer.hardware import cpu_has_bf16

    return torch.bfloat16 if cpu_has_bf16() else None


# ------------------------------------------------------------------------------------------ selection
def _cache_file(voice: Any, device: str, dtype: torch.dtype) -> Any:
    import hashlib
    import json as _json
    import os
    from pathlib import Path

    parts = []
    for path in (voice.gpt_path, getattr(voice, "sovits_path", None)):
        if path is not None:
            st = Path(path).stat()
            parts.append([str(Path(path).resolve()), st.st_size, int(st.st_mtime)])
    key = hashlib.sha256(_json.dumps([parts, device, str(dtype), torch.__version__]).encode()).hexdigest()[:24]
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "audiobook-renderer" / "precision" / f"{key}.json"


def _check_rows(voice: Any) -> list[Any]:
    from renderer.engine.decode import PreparedRow

    rng = np.random.default_rng(0)
    ref_ids = np.asarray(voice.ref_phone_ids, dtype=np.int64)
    ref_bert = np.asarray(voice.ref_bert, dtype=np.float32)
    rows = []
    for i, n in enumerate((12, 30)):
        rows.append(PreparedRow(key=f"check{i}", phone_ids=np.concatenate([ref_ids, rng.integers(1, 732, n)]),
                                bert=np.concatenate([ref_bert, np.zeros((1024, n), np.float32)], axis=1), seed=i))
    return rows


def choose_precision(voice: Any, device: str, requested: str, gpt_fp32: Any, make_backend: Any,
                     vocoder_fp32: Any = None) -> tuple[str, dict[str, Any]]:
    """Resolve ``requested`` ('auto'|'fp32'|'bf16'|'fp16') to a precision; 'auto' runs (and caches) the check.

    make_backend(dtype) builds a GPT backend in that precision. Returns (precision, report dict).
    """
    import json as _json

    if requested != "auto":
        return requested, {"precision": requested, "checked": False}
    dtype = low_precision_dtype(device)
    if dtype is None:
        return "fp32", {"precision": "fp32", "reason": "no native reduced-precision support on this device"}
    name = "bf16" if dtype == torch.bfloat16 else "fp16"
    cache = _cache_file(voice, device, dtype)
    if cache.is_file():
        cached = _json.loads(cache.read_text())
        return (name if cached.get("passed") else "fp32"), cached
    gpt_report = check_gpt_precision(make_backend(None), make_backend(dtype), np.asarray(voice.prompt_semantic),
                                     _check_rows(voice), 24, name)
    report: dict[str, Any] = {"gpt": gpt_report.to_dict(), "precision_tried": name}
    passed = gpt_report.passed
    if vocoder_fp32 is not None:
        ser = check_vocoder_precision(vocoder_fp32, dtype)
        report["sovits_ser_db"] = ser
        passed = passed and ser >= SER_MIN_DB
    report["passed"] = passed
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(_json.dumps(report, indent=2))
    return (name if passed else "fp32"), report


def check_vocoder_precision(vocoder: Any, dtype: torch.dtype) -> float:
    """SER (dB) of the vocoder in ``dtype`` vs float32 on random tokens, same noise."""
    from renderer.engine.backend import VocodeItem

    rng = np.random.default_rng(0)
    items = [VocodeItem("check", rng.integers(0, 1024, 40), rng.integers(1, 732, 20))]
    ref = vocoder.render(items, seeds=[1])[0]
    previous = vocoder.precision_dtype
    vocoder.set_precision(dtype)
    try:
        low = vocoder.render(items, seeds=[1])[0]
    finally:
        vocoder.set_precision(previous)
    return signal_to_error_db(ref, low)
