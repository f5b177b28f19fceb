"""A fake engine and text frontend that speak the real interfaces, for fast worker tests.

:class:`FakeFrontend` turns text into "phone ids" (its UTF-8 bytes), :class:`FakeEngine` turns
those back into text and makes deterministic audio from it: the same text and key always give the
same samples, bit for bit, whatever the batch. Behaviour is configured by
:class:`FakeEngineConfig`, usually from the ``RENDER_FAKE_ENGINE`` environment variable (JSON),
so a ``render`` subprocess started by a test can be told to be slow, to fail or to crash:

- a chunk whose text contains ``fail_marker`` raises :class:`renderer.errors.TextError`;
- a chunk whose text contains ``crash_marker`` kills the process (SIGKILL) when synthesised;
- ``oom_above`` > 0: a ``synthesize`` call with more requests than that raises ``MemoryError``;
- ``log_path``: one line ``<pid> <key>`` is appended per synthesised chunk.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from renderer.errors import TextError

FAKE_ENGINE_VERSION = "fake-engine-1"
SAMPLE_RATE = 32000
SAMPLES_PER_TOKEN = 1280


@dataclass(frozen=True)
class FakeEngineConfig:
    delay_s: float = 0.0
    seconds_per_char: float = 0.03
    fail_marker: str = "[[fail]]"
    crash_marker: str = "[[crash]]"
    oom_above: int = 0
    log_path: str | None = None

    def __post_init__(self) -> None:
        if self.delay_s < 0 or self.seconds_per_char <= 0 or self.oom_above < 0:
            raise ValueError("FakeEngineConfig: delay_s >= 0, seconds_per_char > 0, oom_above >= 0")

    @classmethod
    def from_env(cls) -> FakeEngineConfig:
        raw = os.environ.get("RENDER_FAKE_ENGINE", "")
        return cls(**json.loads(raw)) if raw.strip() else cls()


@dataclass(frozen=True)
class FakeRequest:
    """Same fields as ``renderer.engine.api.SynthesisRequest`` (used only if that is not importable)."""

    key: str
    phone_ids: np.ndarray
    bert: np.ndarray | None
    language: str = "en"


@dataclass
class FakeResult:
    key: str
    tokens: np.ndarray
    audio: np.ndarray
    sample_rate: int
    stopped_by: str
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class FakePhonemes:
    phones: list[str]
    phone_ids: list[int]
    word2ph: list[int] | None
    norm_text: str
    language: str
    unknown: int = 0
    g2p: str = "fake"


class FakeFrontend:
    """``TextFrontend`` stand-in: the phone ids are the text's UTF-8 bytes (so the engine can read them)."""

    def __init__(self, *_: Any, **__: Any) -> None:
        pass

    def phonemize(self, text: str, language: str) -> FakePhonemes:
        if not text.strip():
            raise TextError("nothing to say: the chunk is empty")
        ids = list(text.encode("utf-8"))
        phones = [str(i) for i in ids]
        return FakePhonemes(phones=phones, phone_ids=ids, word2ph=None, norm_text=text, language=language)

    def bert_features(self, items: list[Any]) -> list[np.ndarray]:
        return [np.zeros((1024, len(p.phone_ids)), dtype=np.float32) for p in items]


def fake_audio(text: str, key: str, seconds_per_char: float) -> np.ndarray:
    """Deterministic float32 audio at 32 kHz: tone bursts with a pitch drawn from (text, key)."""
    seed = int.from_bytes(hashlib.sha256(f"{key}\x00{text}".encode()).digest()[:8], "little")
    rng = np.random.default_rng(seed)
    n_tokens = max(2, int(round(len(text) * seconds_per_char * SAMPLE_RATE / SAMPLES_PER_TOKEN)))
    n = n_tokens * SAMPLES_PER_TOKEN
    t = np.arange(n, dtype=np.float64) / SAMPLE_RATE
    pitch_hz = 110.0 + 110.0 * rng.random()
    envelope = 0.5 - 0.5 * np.cos(2 * np.pi * t * (2.0 + rng.random()))
    voice = np.sin(2 * np.pi * pitch_hz * t) + 0.3 * np.sin(4 * np.pi * pitch_hz * t)
    audio = 0.25 * envelope * voice + 0.01 * rng.standard_normal(n)
    return audio.astype(np.float32)


class FakeEngine:
    """Speaks ``renderer.engine.api.Engine``: ``synthesize(requests, options) -> iterator of results``."""

    version = FAKE_ENGINE_VERSION

    def __init__(
        self,
        voice: Any = None,
        *,
        backend: str = "auto",
        device: str = "cpu",
        batch_size: int = 8,
        threads: int | None = None,
        config: FakeEngineConfig | None = None,
    ) -> None:
        self.voice = voice
        self.backend = backend
        self.device = device
        self.batch_size = batch_size
        self.config = config or FakeEngineConfig.from_env()

    def synthesize(self, requests: Iterable[Any], options: Any) -> Iterator[FakeResult]:
        items = list(requests)
        if self.config.oom_above and len(items) > self.config.oom_above:
            raise MemoryError(f"fake out of memory: {len(items)} requests > {self.config.oom_above}")
        for request in items:
            yield self._one(request)

    def _one(self, request: Any) -> FakeResult:
        text = bytes(int(i) for i in request.phone_ids).decode("utf-8", errors="replace")
        if self.config.crash_marker and self.config.crash_marker in text:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.config.fail_marker and self.config.fail_marker in text:
            raise TextError(f"the fake engine cannot speak {text[:40]!r}")
        started = time.perf_counter()
        if self.config.delay_s:
            time.sleep(self.config.delay_s)
        audio = fake_audio(text, request.key, self.config.seconds_per_char)
        if self.config.log_path:
            with open(self.config.log_path, "a", encoding="utf-8") as log:
                log.write(f"{os.getpid()} {request.key}\n")
        elapsed = time.perf_counter() - started
        n_tokens = len(audio) // SAMPLES_PER_TOKEN
        return FakeResult(
            key=request.key,
            tokens=np.arange(n_tokens, dtype=np.int64) % 1024,
            audio=audio,
            sample_rate=SAMPLE_RATE,
            stopped_by="eos",
            timings={"prefill": 0.2 * elapsed, "decode": 0.6 * elapsed, "vocode": 0.2 * elapsed},
        )


@dataclass(frozen=True)
class FakeChunk:
    text: str
    normalized: str
    language: str
    boundary: str
    block_index: int


def fake_chunker(blocks: Any, language: str) -> list[FakeChunk]:
    """Sentence chunker stand-in (used with the fake engine only when ``renderer.text`` has none):
    one chunk per sentence (split after . ! ?), boundary types as ``renderer.text.chunk_blocks``."""
    import re

    chunks: list[FakeChunk] = []
    for block_index, block in enumerate(blocks):
        kind, text = (block.kind, block.text) if hasattr(block, "kind") else block  # objects or (kind, text)
        if kind == "scene_break":
            if chunks:
                chunks[-1] = FakeChunk(**{**chunks[-1].__dict__, "boundary": "scene_break"})
            continue
        sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]
        for i, sentence in enumerate(sentences):
            last = i == len(sentences) - 1
            boundary = ("heading" if kind == "heading" else "paragraph") if last else "sentence"
            normalized = " ".join(sentence.split())
            chunks.append(FakeChunk(sentence, normalized, language, boundary, block_index))
    if chunks:
        chunks[-1] = FakeChunk(**{**chunks[-1].__dict__, "boundary": "chapter_end"})
    return chunks
