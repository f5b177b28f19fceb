"""What the application is built from: the engine factory, the job hooks, the audio writer.

The CLI's default is the real renderer. Tests build their own :class:`Services` with fakes (as
procrastinate's in-memory connector is passed to its ``App``) and hand it to ``jobs.cli.main`` or to
``CliRunner().invoke(cli, args, obj=services)``; ``python -m tests.fakes.run_cli`` does so for subprocesses.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from jobs.audio_files import AudioWriter, write_chunk_audio
from jobs.engines import EngineFactory, RendererFactory
from jobs.events import JobHooks


@dataclass(frozen=True)
class Services:
    """engines: builds voices, engines, frontends and the chunker.
    hooks: told of the job's named moments (:mod:`jobs.events`).
    write_audio: writes one chunk's audio file atomically (:func:`jobs.audio_files.write_chunk_audio`).
    worker_command: how ``render BOOK --workers N`` starts its extra worker processes (``... worker ARGS``)."""

    engines: EngineFactory = field(default_factory=RendererFactory)
    hooks: JobHooks = field(default_factory=JobHooks)
    write_audio: AudioWriter = write_chunk_audio
    worker_command: tuple[str, ...] = (sys.executable, "-m", "jobs.cli")
