"""The real ``render`` command line with the fake engine factory and the test hooks, for subprocess tests.

Tests run ``[*RUN_CLI, ARGS...]`` (``python tests/fakes/run_cli.py ARGS``, or ``python -m tests.fakes.run_cli``
from the repository root): it builds :class:`jobs.services.Services` from the fakes, configured by the
environment (``RENDER_FAKE_ENGINE``, ``RENDER_TEST_*``: see ``engine.py`` and ``hooks.py``), and calls
``jobs.cli.main``. ``render BOOK --workers N`` started this way starts its extra workers the same way.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # started as a file: make the `tests` package importable
    sys.path.insert(0, str(ROOT))

from jobs.audio_files import write_chunk_audio  # noqa: E402
from jobs.cli import main  # noqa: E402
from jobs.services import Services  # noqa: E402
from tests.fakes.engine import FakeEngineConfig, FakeEngineFactory  # noqa: E402
from tests.fakes.hooks import EnvHooks, write_with_pause  # noqa: E402

#: The command that starts this entry point.
RUN_CLI = (sys.executable, str(Path(__file__).resolve()))


def fake_services(config: FakeEngineConfig | None = None, hooks: EnvHooks | None = None) -> Services:
    """Services with the fake engine (``config``, else ``RENDER_FAKE_ENGINE``) and ``hooks`` (else the
    environment's)."""
    hooks = hooks if hooks is not None else EnvHooks.from_env()
    writer = write_with_pause(hooks) if "write" in hooks.pause_at else write_chunk_audio
    return Services(engines=FakeEngineFactory(config or FakeEngineConfig.from_env()), hooks=hooks,
                    write_audio=writer, worker_command=RUN_CLI)


if __name__ == "__main__":
    main(services=fake_services())
