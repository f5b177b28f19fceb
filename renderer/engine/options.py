"""User-facing synthesis options, validated in one place.

The defaults are upstream GPT-SoVITS's (``top_k=15``, ``repetition_penalty=1.35``, at most 1500
generated tokens). ``seed`` is a *base* seed: every chunk derives its own random stream from it and
its key (:func:`row_seed`), so a chunk's tokens never depend on its batch neighbours.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, fields
from typing import Any

from renderer.errors import OptionsError

#: Upstream's hard limit on generated semantic tokens per chunk (60 s at 25 Hz).
MAX_TOKENS_LIMIT = 1500
#: Size of the GPT output layer (1024 semantic tokens + EOS).
VOCAB_SIZE = 1025


@dataclass(frozen=True)
class SamplingOptions:
    """How semantic tokens are sampled and how SoVITS renders them.

    top_k: keep logits >= the k-th largest (ties kept); 1 = greedy.
    top_p: nucleus threshold on the untempered, penalised distribution; 1.0 disables it.
    temperature: logits are divided by ``max(temperature, 1e-5)`` after top-p.
    repetition_penalty: tokens already present (prompt + generated) get positive logits divided
        and negative logits multiplied by it; 1.0 disables it.
    seed: base seed; the per-chunk stream is ``row_seed(seed, key)``.
    max_tokens: at most this many generated tokens per chunk (<= 1500).
    early_stop_tokens: upstream's ``early_stop_num``: stop once more than this many tokens were
        generated (the tokens are kept). ``None`` = no early stop apart from ``max_tokens``.
    speed: SoVITS speaking-rate factor (> 1 is faster, fewer audio samples).
    noise_scale: SoVITS prior noise scale.
    """

    top_k: int = 15
    top_p: float = 1.0
    temperature: float = 1.0
    repetition_penalty: float = 1.35
    seed: int = 0
    max_tokens: int = MAX_TOKENS_LIMIT
    early_stop_tokens: int | None = None
    speed: float = 1.0
    noise_scale: float = 0.5

    def __post_init__(self) -> None:
        _check_int("top_k", self.top_k, 1, VOCAB_SIZE)
        _check_float("top_p", self.top_p, 0.0, 1.0, low_open=True)
        _check_float("temperature", self.temperature, 0.0, 100.0, low_open=True)
        _check_float("repetition_penalty", self.repetition_penalty, 0.0, 100.0, low_open=True)
        _check_int("seed", self.seed, 0, 2**63 - 1)
        _check_int("max_tokens", self.max_tokens, 1, MAX_TOKENS_LIMIT)
        if self.early_stop_tokens is not None:
            _check_int("early_stop_tokens", self.early_stop_tokens, 0, MAX_TOKENS_LIMIT)
        _check_float("speed", self.speed, 0.1, 10.0)
        _check_float("noise_scale", self.noise_scale, 0.0, 10.0)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able mapping of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SamplingOptions:
        """Build from a mapping; unknown keys are refused so typos do not pass silently."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise OptionsError(f"unknown sampling option(s): {', '.join(unknown)}")
        return cls(**data)

    def token_limit(self) -> int:
        """Number of generated tokens after which a row stops without EOS (before EOS removal)."""
        if self.early_stop_tokens is None:
            return self.max_tokens
        return min(self.max_tokens, self.early_stop_tokens + 1)


def row_seed(base_seed: int, key: str) -> int:
    """Stable 63-bit seed for one chunk: the same (seed, key) always gives the same stream."""
    digest = hashlib.sha256(f"{int(base_seed)}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionsError(f"{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise OptionsError(f"{name} must be in [{low}, {high}], got {value}")


def _check_float(name: str, value: object, low: float, high: float, low_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OptionsError(f"{name} must be a number, got {value!r}")
    too_low = value <= low if low_open else value < low
    if too_low or value > high or value != value:
        bracket = "(" if low_open else "["
        raise OptionsError(f"{name} must be in {bracket}{low}, {high}], got {value}")
