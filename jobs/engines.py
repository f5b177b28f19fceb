"""What renders a book, as the jobs layer sees it: voices, engines, text frontends and the chunker.

The jobs layer depends on the :class:`EngineFactory` protocol and the seam types of
:mod:`renderer.protocols` only. :class:`RendererFactory` is the real factory (the renderer's ``Engine``
and ``TextFrontend``); tests pass their own (``tests/fakes``) through :class:`jobs.services.Services`.
A worker keeps one :class:`RenderSetup` per (voice, batch size, precision) in a :class:`SetupCache`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from jobs.planner import ChunkLike, VoiceRef, default_chunker
from renderer.errors import VoiceError
from renderer.files import sha256_file

if TYPE_CHECKING:  # renderer.protocols imports torch: `render status` and `--help` must start fast
    from renderer.protocols import Engine, Frontend, RenderOptions


@dataclass(frozen=True)
class EngineSettings:
    """Where and how engines run; none of it changes the audio (so none of it is in render keys).

    backend: auto | torch | onnx | tensorrt; device: cpu, cuda, cuda:1, ...; threads: CPU threads (None: torch's).
    """

    backend: str = "auto"
    device: str = "cpu"
    threads: int | None = None


class EngineFactory(Protocol):
    """Builds what renders a book. ``version`` is part of every render key: a new version re-renders."""

    @property
    def version(self) -> str: ...

    def load_voice(self, name: str, voices_dir: Path | None) -> VoiceRef:
        """The voice called ``name`` with its identity (raises :class:`VoiceError` when it is not installed)."""
        ...

    def engine(self, voice: VoiceRef, precision: str, batch_size: int | None, settings: EngineSettings) -> Engine:
        """An engine for ``voice`` (``batch_size`` None: the engine's memory-budgeted choice)."""
        ...

    def frontend(self, voice: VoiceRef, device: str, bert_dir: Path | None = None) -> Frontend:
        """The text frontend (``bert_dir``: the Chinese BERT folder, else the one the voice was imported with)."""
        ...

    def chunk(self, blocks: list[Any], language: str) -> Sequence[ChunkLike]:
        """Split a chapter's blocks into sentence-sized chunks (see :data:`jobs.planner.Chunker`)."""
        ...


def engine_version() -> str:
    """The renderer's version as it enters render keys (its audio may differ between versions)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as pkg_version

    try:
        from renderer import engine as engine_pkg

        version = getattr(engine_pkg, "ENGINE_VERSION", None)
    except ImportError:
        version = None
    if version is None:
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


def voice_defaults(voice: VoiceRef) -> Mapping[str, Any]:
    """The sampling defaults stored with the voice (none for a voice that has no files)."""
    return getattr(voice.voice, "sampling_defaults", None) or {}


class RendererFactory:
    """The real thing: voices from the voice store, ``renderer.engine.Engine``, ``renderer.text.TextFrontend``."""

    @property
    def version(self) -> str:
        return engine_version()

    def load_voice(self, name: str, voices_dir: Path | None) -> VoiceRef:
        from renderer.voice import VoiceStore
        from renderer.voice import voices_dir as default_voices_dir

        voice = VoiceStore(default_voices_dir(voices_dir)).get(name)
        return VoiceRef(name=name, voice_id=voice_identity(Path(voice.folder), name), voice=voice)

    def engine(self, voice: VoiceRef, precision: str, batch_size: int | None, settings: EngineSettings) -> Engine:
        from renderer.backends import open_engine
        from renderer.tuning import EngineTuning

        tuning = EngineTuning.resolve({"batch_size": batch_size, "threads": settings.threads})
        return open_engine(voice.voice, backend=settings.backend, device=settings.device, precision=precision,
                           tuning=tuning)

    def frontend(self, voice: VoiceRef, device: str, bert_dir: Path | None = None) -> Frontend:
        from renderer.text import TextFrontend

        if bert_dir is None:
            # Chinese BERT features need the BERT folder the voice was imported with (or RENDER_BERT_DIR).
            sources = getattr(voice.voice, "sources", None) or {}
            found = os.environ.get("RENDER_BERT_DIR") or (sources.get("bert") or {}).get("path")
            bert_dir = Path(found) if found and Path(found).is_dir() else None
        return TextFrontend(bert_dir=bert_dir, device=device)

    def chunk(self, blocks: list[Any], language: str) -> Sequence[ChunkLike]:
        return default_chunker(blocks, language)


@dataclass(frozen=True)
class RenderSetup:
    """What renders one book: engine, text frontend, the book's options and the engine's batch size."""

    engine: Engine
    frontend: Frontend
    options: RenderOptions
    batch_size: int


class SetupCache:
    """Builds :class:`RenderSetup` s for one worker, keeping one engine per (voice id, batch size, precision)."""

    def __init__(self, engines: EngineFactory, *, voices_dir: Path | None = None,
                 settings: EngineSettings = EngineSettings()) -> None:
        self.engines = engines
        self.voices_dir = voices_dir
        self.settings = settings
        self._voices: dict[str, VoiceRef] = {}
        self._engines: dict[tuple[str, int, str], Engine] = {}
        self._frontend: Frontend | None = None

    @property
    def version(self) -> str:
        return self.engines.version

    def voice(self, name: str) -> VoiceRef:
        if name not in self._voices:
            self._voices[name] = self.engines.load_voice(name, self.voices_dir)
        return self._voices[name]

    def setup(self, voice_name: str, voice_id: str, stored_options: Mapping[str, Any], batch_size: int) -> RenderSetup:
        """What renders a book with this voice and these stored options (``RenderOptions.to_dict``); refuses a
        voice whose files differ from the ones the book was planned with. The options are the book's own even
        when its engine is shared with another book of the same voice."""
        from renderer.protocols import RenderOptions

        ref = self.voice(voice_name)
        if ref.voice_id != voice_id:
            raise VoiceError(
                f"voice {voice_name!r} here differs from the one the book was planned with "
                "(other files); install the same voice on this machine or re-run `render BOOK --voice ...`"
            )
        options = RenderOptions.from_dict(stored_options)
        key = (voice_id, batch_size, options.precision)
        engine = self._engines.get(key)
        if engine is None:
            for old in [k for k in self._engines if k[0] == voice_id]:
                del self._engines[old]  # free the larger engine before building a smaller one (OOM)
            engine = self._engines[key] = self.engines.engine(ref, options.precision, batch_size or None,
                                                              self.settings)
        if self._frontend is None:
            self._frontend = self.engines.frontend(ref, self.settings.device)
        return RenderSetup(engine, self._frontend, options, int(engine.batch_size))
