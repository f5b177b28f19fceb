"""A fake engine factory, engine and text frontend that satisfy the real protocols, for fast job tests.

:class:`FakeFrontend` turns text into "phone ids" (its UTF-8 bytes), :class:`FakeEngine` turns those back
into text and makes deterministic audio from it: the same text and key always give the same samples, bit
for bit, whatever the batch. :class:`FakeEngineFactory` (a ``jobs.engines.EngineFactory``) builds them and
needs no voice files: any voice name will do. Behaviour comes from :class:`FakeEngineConfig`; a ``render``
subprocess started through ``tests/fakes/run_cli.py`` reads it from ``RENDER_FAKE_ENGINE`` (JSON):

- a chunk whose text contains ``fail_marker`` raises :class:`renderer.errors.TextError`;
- a chunk whose text contains ``crash_marker`` kills the process (SIGKILL) when synthesised;
- ``oom_above`` > 0: a ``synthesize`` call with more requests than that raises ``MemoryError``;
- ``log_path``: one line ``<pid> <key>`` is appended per synthesised chunk.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from jobs.engines import EngineSettings
from jobs.planner import VoiceRef
from renderer.engine.api import SynthesisRequest, SynthesisResult
from renderer.engine.options import SamplingOptions
from renderer.errors import TextError
from renderer.text.frontend import Phonemes

FAKE_ENGINE_VERSION = "fake-engine-1"
SAMPLE_RATE = 32000
SAMPLES_PER_TOKEN = 1280
BERT_DIM = 1024


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


class FakeFrontend:
    """``Frontend``: the phone ids are the text's UTF-8 bytes (so the engine can read the text back)."""

    def phonemize(self, text: str, language: str) -> Phonemes:
        if not text.strip():
            raise TextError("nothing to say: the chunk is empty")
        ids = list(text.encode("utf-8"))
        return Phonemes(phones=[str(i) for i in ids], phone_ids=ids, word2ph=None, norm_text=text, language=language,
                        unknown=0, g2p="fake")

    def bert_features(self, items: list[Phonemes]) -> list[np.ndarray]:
        return [np.zeros((BERT_DIM, len(p.phone_ids)), dtype=np.float32) for p in items]


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
    """``Engine``: ``synthesize(requests, options)`` -> results; remembers the options of every call."""

    def __init__(self, batch_size: int = 8, config: FakeEngineConfig = FakeEngineConfig(),
                 precision: str = "fp32") -> None:
        self.batch_size = batch_size
        self.config = config
        self.precision = precision
        self.calls: list[SamplingOptions] = []

    def synthesize(self, requests: Iterable[SynthesisRequest], options: SamplingOptions) -> Iterator[SynthesisResult]:
        items = list(requests)
        self.calls.append(options)
        if self.config.oom_above and len(items) > self.config.oom_above:
            raise MemoryError(f"fake out of memory: {len(items)} requests > {self.config.oom_above}")
        for request in items:
            yield self._one(request)

    def _one(self, request: SynthesisRequest) -> SynthesisResult:
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
        return SynthesisResult(
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


def fake_chunker(blocks: Sequence[Any], language: str) -> list[FakeChunk]:
    """One chunk per sentence (split after . ! ?), boundary types as ``renderer.text.chunk_blocks`` gives
    them, so job tests do not depend on the real chunker's choices. Blocks: objects with kind and text,
    or (kind, text) pairs."""
    chunks: list[FakeChunk] = []
    for block_index, block in enumerate(blocks):
        kind, text = (block.kind, block.text) if hasattr(block, "kind") else block  # objects or (kind, text)
        if kind == "scene_break":
            if chunks:
                chunks[-1] = replace(chunks[-1], boundary="scene_break")
            continue
        sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]
        for i, sentence in enumerate(sentences):
            last = i == len(sentences) - 1
            boundary = ("heading" if kind == "heading" else "paragraph") if last else "sentence"
            chunks.append(FakeChunk(sentence, " ".join(sentence.split()), language, boundary, block_index))
    if chunks:
        chunks[-1] = replace(chunks[-1], boundary="chapter_end")
    return chunks


def fake_voice(name: str) -> VoiceRef:
    """A voice without files: its identity is a hash of its name."""
    return VoiceRef(name=name, voice_id=hashlib.sha256(f"fake:{name}".encode()).hexdigest())


@dataclass
class FakeEngineFactory:
    """``jobs.engines.EngineFactory`` for tests: fake voices, engines and frontend, the fake chunker.

    ``engines`` lists every engine it built (tests read the options each was called with).
    """

    config: FakeEngineConfig = FakeEngineConfig()
    engines: list[FakeEngine] = field(default_factory=list)
    voice_defaults: dict[str, object] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return FAKE_ENGINE_VERSION

    def load_voice(self, name: str, voices_dir: Path | None) -> VoiceRef:
        ref = fake_voice(name)
        if not self.voice_defaults:
            return ref
        return VoiceRef(ref.name, ref.voice_id, voice=_VoiceWithDefaults(name, dict(self.voice_defaults)))

    def engine(self, voice: VoiceRef, precision: str, batch_size: int | None, settings: EngineSettings) -> FakeEngine:
        engine = FakeEngine(batch_size or 8, self.config, precision)
        self.engines.append(engine)
        return engine

    def frontend(self, voice: VoiceRef, device: str, bert_dir: Path | None = None) -> FakeFrontend:
        return FakeFrontend()

    def chunk(self, blocks: list[Any], language: str) -> Sequence[FakeChunk]:
        return fake_chunker(blocks, language)


@dataclass(frozen=True)
class _VoiceWithDefaults:
    name: str
    sampling_defaults: dict[str, object]
    language: str = "en"
