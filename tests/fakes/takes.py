"""A fake engine whose takes fail on cue, to drive the re-roll loop with synthetic takes.

A chunk whose text holds ``[[takes:loop,cap,short,clean]]`` gets, for take n (read from the request key,
``<render key>~<n>``), the n-th fault of that list (the last one repeats): ``loop`` (a token loop that makes
the take 60 % longer), ``cap`` (ran to the token cap, 4x too long), ``short`` (30 % of the tokens and audio:
skipped words), ``misheard`` (clean audio in which :class:`ScriptedTranscriber`, the stand-in speech
recognition, hears other words), ``clean`` (the plain fake take). Other chunks are clean. Speech runs at
12.5 characters per second (2 tokens per character, a narrator's pace) and the voice has a reference
prompt of that rate, so rates are judged from the first chunk on.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from jobs.engines import EngineSettings
from jobs.planner import VoiceRef
from jobs.takes import parse_take_key
from renderer.engine.api import SynthesisRequest, SynthesisResult
from renderer.engine.options import SamplingOptions
from tests.fakes.engine import SAMPLES_PER_TOKEN, FakeEngine, FakeEngineConfig, FakeEngineFactory, fake_voice

FAULTS = ("loop", "cap", "short", "misheard", "clean")
#: What the stand-in transcriber hears in a ``misheard`` take.
MISHEARD = "a completely different sentence about something else"
#: 2 tokens (80 ms) per character.
SECONDS_PER_CHAR = 0.08
_SCRIPT = re.compile(r"\[\[takes:([a-z,]+)\]\]")


@dataclass(frozen=True)
class FakeVoice:
    """A voice with only what the take norm reads: a reference of 200 prompt tokens for 100 phones."""

    name: str
    prompt_semantic: np.ndarray = field(default_factory=lambda: np.arange(200, dtype=np.int64) % 1024)
    ref_phone_ids: np.ndarray = field(default_factory=lambda: np.ones(100, dtype=np.int64))
    sampling_defaults: dict[str, object] = field(default_factory=dict)
    language: str = "en"


def script_of(text: str, unscripted: tuple[str, ...] = ("clean",)) -> tuple[str, ...]:
    """The faults of ``text``'s takes; ``unscripted`` for a text without a script."""
    found = _SCRIPT.search(text)
    if not found:
        return unscripted
    faults = tuple(found.group(1).split(","))
    unknown = set(faults) - set(FAULTS)
    if unknown:
        raise ValueError(f"unknown take faults {sorted(unknown)} in {text!r}")
    return faults


def _digest(audio: np.ndarray) -> bytes:
    return hashlib.sha1(np.ascontiguousarray(audio, dtype=np.float32).tobytes()).digest()


@dataclass
class ScriptedTranscriber:
    """Stand-in speech recognition (the :class:`renderer.takes.Transcriber` interface) for the scripted
    engine: it hears exactly the chunk's text, except :data:`MISHEARD` in a ``misheard`` take. The engine
    tells it what each take says (``heard``, by the audio's digest)."""

    heard: dict[bytes, str] = field(default_factory=dict)
    calls: int = 0

    def transcribe(self, audio: np.ndarray, sample_rate: int, language: str) -> str:
        self.calls += 1
        return self.heard.get(_digest(audio), "")


class ScriptedTakesEngine(FakeEngine):
    """:class:`FakeEngine` whose takes follow the chunk's ``[[takes:...]]`` script."""

    transcriber: ScriptedTranscriber | None = None
    unscripted: tuple[str, ...] = ("clean",)
    batches: list[list[str]]

    def synthesize(self, requests: Iterable[SynthesisRequest], options: SamplingOptions) -> Iterator[SynthesisResult]:
        items = list(requests)
        self.batches.append([r.key for r in items])  # which takes were rendered together
        return super().synthesize(items, options)

    def _one(self, request: SynthesisRequest) -> SynthesisResult:
        result = super()._one(request)
        text = bytes(int(i) for i in request.phone_ids).decode("utf-8", errors="replace")
        faults = script_of(text, self.unscripted)
        _render_key, take = parse_take_key(request.key)
        fault = faults[min(take, len(faults)) - 1]
        spoiled = spoil(result, fault)
        if self.transcriber is not None:
            self.transcriber.heard[_digest(spoiled.audio)] = MISHEARD if fault == "misheard" else text
        return spoiled


def spoil(result: SynthesisResult, fault: str) -> SynthesisResult:
    """The result with one fault applied (tokens and audio kept consistent: 1280 samples per token)."""
    tokens, audio = result.tokens, result.audio
    if fault in ("clean", "misheard"):
        return result
    if fault == "loop":
        phrase = (np.arange(12, dtype=np.int64) * 37 + 500) % 1024
        repeats = max(3, int(0.6 * tokens.size) // 12 + 1)
        tokens = np.concatenate([tokens, np.tile(phrase, repeats)])
        looped = np.concatenate([audio, np.tile(audio[: 12 * SAMPLES_PER_TOKEN], repeats)])
        audio = looped[: tokens.size * SAMPLES_PER_TOKEN]
        return replace(result, tokens=tokens, audio=audio.astype(np.float32))
    if fault == "cap":
        tokens = (np.arange(4 * tokens.size, dtype=np.int64) * 7 + 3) % 1024
        audio = np.tile(audio, 4)
        return replace(result, tokens=tokens, audio=audio, stopped_by="max_tokens")
    if fault == "short":
        keep = max(2, int(0.3 * tokens.size))
        return replace(result, tokens=tokens[:keep], audio=audio[: keep * SAMPLES_PER_TOKEN])
    raise ValueError(f"unknown fault {fault!r}")


@dataclass
class ScriptedTakesFactory(FakeEngineFactory):
    """``EngineFactory`` building :class:`ScriptedTakesEngine` s and voices with a reference prompt.
    ``unscripted``: the faults of chunks without a script (``("cap",)``: a random voice, every take bad)."""

    config: FakeEngineConfig = FakeEngineConfig(seconds_per_char=SECONDS_PER_CHAR)
    transcriber: ScriptedTranscriber | None = None
    unscripted: tuple[str, ...] = ("clean",)

    def load_voice(self, name: str, voices_dir: Path | None) -> VoiceRef:
        ref = fake_voice(name)
        return VoiceRef(ref.name, ref.voice_id, voice=FakeVoice(name, sampling_defaults=dict(self.voice_defaults)))

    def engine(self, voice: VoiceRef, precision: str, batch_size: int | None,
               settings: EngineSettings) -> ScriptedTakesEngine:
        engine = ScriptedTakesEngine(batch_size or 8, self.config, precision)
        engine.transcriber, engine.unscripted, engine.batches = self.transcriber, self.unscripted, []
        self.engines.append(engine)
        return engine


__all__ = ["FAULTS", "MISHEARD", "FakeEngineConfig", "FakeVoice", "ScriptedTakesEngine", "ScriptedTakesFactory",
           "ScriptedTranscriber", "script_of", "spoil"]
