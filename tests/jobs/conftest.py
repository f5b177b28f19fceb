"""Fixtures of the jobs tests: small books, a fake-engine environment, a throwaway PostgreSQL server.

PostgreSQL: a real server is started once per session in a temporary folder (initdb + pg_ctl on a
free port; as the ``postgres`` user when we run as root). Its binaries come from
``RENDER_TEST_PG_BIN`` (set by ``.ci/run``) or ``/usr/lib/postgresql/*/bin``. Tests that need it
skip, with the reason, only when no server can be started.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.run_cli import RUN_CLI

BOOK_MD = """# The Lighthouse Keeper

## The Storm

The wind rose before dawn. Waves struck the rocks with a roar! Old Tom climbed the stairs.

He lit the great lamp. Its beam swept the dark water. Far out, a ship was turning.

## The Ship

The captain saw the light. He turned the wheel hard. The ship groaned and leaned.

* * *

By morning the sea was calm. The crew stood on the deck. Nobody spoke for a while.

## The Morning

Tom slept until noon. Then he made tea. The gulls were loud again. It was a good day.
"""


def write_book(folder: Path, text: str = BOOK_MD, name: str = "book.md") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture()
def md_book(tmp_path: Path) -> Path:
    return write_book(tmp_path / "src")


def fake_env(**extra: str) -> dict[str, str]:
    """Environment for a `render_cmd` subprocess (fake engine as configured by ``extra``; no pause points)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENDER_TEST_") and k != "RENDER_FAKE_ENGINE"}
    env["PYTHONUNBUFFERED"] = "1"
    env["RENDER_VOICES_DIR"] = str(Path(tempfile.gettempdir()) / "render-jobs-tests-no-voices")
    env.update(extra)
    return env


def render_cmd(*args: str) -> list[str]:
    """`render ARGS` in a subprocess with the fake engine and the test hooks (tests/fakes/run_cli.py)."""
    return [*RUN_CLI, *args]


# ------------------------------------------------------------------------------------------ PostgreSQL


def _pg_bin_dir() -> Path | None:
    candidates = [os.environ.get("RENDER_TEST_PG_BIN", "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").is_file() and (Path(candidate) / "pg_ctl").is_file():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="render-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.as_postgres: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, user="postgres", group="postgres")
            os.chmod(self.root, 0o700)
            self.as_postgres = ["runuser", "-u", "postgres", "--"]

    def _run(self, *cmd: str) -> None:
        result = subprocess.run([*self.as_postgres, *cmd], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{Path(cmd[0]).name} failed: {result.stderr.strip() or result.stdout.strip()}")

    def start(self) -> None:
        self._run(str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-sync")
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
                  str(self.root / "server.log"), "-w", "-t", "60", "start")

    def stop(self) -> None:
        try:
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    bin_dir = _pg_bin_dir()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries (initdb/pg_ctl) found; set RENDER_TEST_PG_BIN")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg (PostgreSQL driver) is not installed")
    server = PgServer(bin_dir)
    try:
        server.start()
    except (RuntimeError, OSError, subprocess.TimeoutExpired, KeyError, LookupError) as exc:
        server.stop()
        pytest.skip(f"could not start a PostgreSQL server: {exc}")
    yield server
    server.stop()


@pytest.fixture()
def pg_url(pg_server: PgServer) -> str:
    """A fresh, empty database on the session's server."""
    return pg_server.create_database()
