"""Voices, engines and text frontends as the jobs layer sees them.

The worker asks a :class:`SetupFactory` for "what renders this book": an engine, a text frontend
and the sampling options, built once per (voice, batch size) and reused. ``kind="fake"`` gives the
fake engine and frontend of :mod:`jobs.fake_engine` (tests, ``--engine fake`` or
``RENDER_ENGINE=fake``); ``kind="real"`` the renderer's.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.errors import JobsError
from jobs.fake_engine import FAKE_ENGINE_VERSION, FakeEngine, FakeFrontend
from jobs.planner import VoiceRef
from renderer.errors import VoiceError
from renderer.files import sha256_file

ENGINE_KINDS = ("real", "fake")


def engine_kind(explicit: str | None = None) -> str:
    kind = explicit or os.environ.get("RENDER_ENGINE", "real")
    if kind not in ENGINE_KINDS:
        raise JobsError(f"unknown engine {kind!r}; expected one of {', '.join(ENGINE_KINDS)}")
    return kind


def engine_version(kind: str) -> str:
    """Part of every render key: a new engine version re-renders (its audio may differ)."""
    if kind == "fake":
        return FAKE_ENGINE_VERSION
    try:
        from renderer import engine as engine_pkg

        version = getattr(engine_pkg, "ENGINE_VERSION", None)
    except ImportError:
        version = None
    if version is None:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as pkg_version

        try:
            version = "renderer-" + pkg_version("audiobook-renderer")
        except PackageNotFoundError:
            version = "renderer-dev"
    return str(version)


def voice_identity(folder: Path, name: str) -> str:
    """sha256 over the voice's name and every file that shapes its audio."""
    digest = hashlib.sha256(name.encode("utf-8"))
    for filename in ("voice.json", "prompt.npz", "gpt.ckpt", "sovits.pth"):
        path = folder / filename
        digest.update(filename.encode())
        digest.update(sha256_file(path).encode() if path.is_file() else b"-")
    return digest.hexdigest()


def resolve_voice(name: str, voices_dir: str | Path | None, kind: str) -> VoiceRef:
    """Find and load a voice by name. The fake engine needs no voice: any name will do (and nothing
    heavy is imported, so fake-engine test processes start fast)."""
    if kind == "fake":
        return VoiceRef(name=name, voice_id=hashlib.sha256(f"fake:{name}".encode()).hexdigest())
    from renderer.voice import VoiceStore
    from renderer.voice import voices_dir as default_voices_dir

    voice = VoiceStore(default_voices_dir(voices_dir)).get(name)
    return VoiceRef(name=name, voice_id=voice_identity(Path(voice.folder), name), voice=voice)


@dataclass
class RenderSetup:
    """What renders one book: engine, frontend and the sampling options object."""

    engine: Any
    frontend: Any
    options: Any
    batch_size: int


def sampling_options(sampling: dict[str, Any], kind: str) -> Any:
    """Build the engine's SamplingOptions from the stored dict (validated there); the fake engine takes the dict."""
    if kind == "fake":
        return dict(sampling)
    from renderer.engine.options import SamplingOptions

    return SamplingOptions.from_dict({k: v for k, v in sampling.items() if k != "precision"})


class SetupFactory:
    """Builds and caches :class:`RenderSetup` per (voice id, batch size)."""

    def __init__(
        self,
        kind: str = "real",
        *,
        voices_dir: str | Path | None = None,
        backend: str = "auto",
        device: str = "cpu",
        threads: int | None = None,
    ) -> None:
        self.kind = engine_kind(kind)
        self.voices_dir = voices_dir
        self.backend = backend
        self.device = device
        self.threads = threads
        self._voices: dict[str, VoiceRef] = {}
        self._setups: dict[tuple[str, int, str], RenderSetup] = {}
        self._frontend: Any = None

    @property
    def version(self) -> str:
        return engine_version(self.kind)

    def voice(self, name: str) -> VoiceRef:
        if name not in self._voices:
            self._voices[name] = resolve_voice(name, self.voices_dir, self.kind)
        return self._voices[name]

    def setup(self, voice_name: str, voice_id: str, sampling: dict[str, Any], batch_size: int) -> RenderSetup:
        """Engine for a book's voice; refuses a voice whose files differ from the ones it was planned with."""
        ref = self.voice(voice_name)
        if ref.voice_id != voice_id:
            raise VoiceError(
                f"voice {voice_name!r} here differs from the one the book was planned with "
                "(other files); install the same voice on this machine or re-run `render BOOK --voice ...`"
            )
        precision = str(sampling.get("precision", "fp32"))
        key = (voice_id, batch_size, precision)
        if key not in self._setups:
            for old in [k for k in self._setups if k[0] == voice_id]:
                del self._setups[old]  # free the larger engine before building a smaller one (OOM)
            engine = self._engine(ref, batch_size, precision)
            self._setups[key] = RenderSetup(
                engine=engine,
                frontend=self._get_frontend(ref),
                options=sampling_options(sampling, self.kind),
                batch_size=int(engine.batch_size),
            )
        return self._setups[key]

    def _engine(self, ref: VoiceRef, batch_size: int, precision: str = "fp32") -> Any:
        if self.kind == "fake":
            return FakeEngine(ref.voice, backend=self.backend, device=self.device, batch_size=batch_size or 8)
        from renderer.backends import open_engine
        from renderer.tuning import EngineTuning

        tuning = EngineTuning.resolve({"batch_size": batch_size or None, "threads": self.threads})
        return open_engine(ref.voice, backend=self.backend, device=self.device, precision=precision, tuning=tuning)

    def _get_frontend(self, ref: VoiceRef) -> Any:
        if self._frontend is None:
            if self.kind == "fake":
                self._frontend = FakeFrontend()
            else:
                from renderer.text import TextFrontend

                # Chinese BERT features need the BERT folder the voice was imported with (or RENDER_BERT_DIR).
                sources = getattr(ref.voice, "sources", None) or {}
                bert_dir = os.environ.get("RENDER_BERT_DIR") or (sources.get("bert") or {}).get("path")
                if bert_dir and not Path(bert_dir).is_dir():
                    bert_dir = None
                self._frontend = TextFrontend(bert_dir=bert_dir, device=self.device)
        return self._frontend


def request_class(kind: str) -> Any:
    """``renderer.engine.api.SynthesisRequest`` (the fake engine's own for ``kind="fake"``)."""
    if kind == "fake":
        from jobs.fake_engine import FakeRequest

        return FakeRequest
    from renderer.engine.api import SynthesisRequest

    return SynthesisRequest
