"""Where the tests find the read-only reference material (``../shared``): one lookup for every layer.

``shared_dir()`` is the ``shared`` folder beside the repository's root: beside this checkout, or, for a
git worktree, beside the main checkout it belongs to. ``conformance_dir()`` is ``$RENDER_CONFORMANCE_DIR``
when set (e.g. a held-back conformance set), else ``<shared>/conformance/public``.

In CI (``$CI`` set to anything but ``0``/``false``, as ``.ci/run`` does) missing material is a failure,
not a skip: a suite that silently skipped its model tests would pass without checking the engine.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: The repository root (the folder holding ``tests/``).
REPO_ROOT = Path(__file__).resolve().parents[1]


def _main_checkout(root: Path) -> Path | None:
    """For a git worktree (``.git`` is a file ``gitdir: <main>/.git/worktrees/<name>``), the main checkout."""
    marker = root / ".git"
    if not marker.is_file():
        return None
    text = marker.read_text(encoding="utf-8", errors="replace").strip()
    if not text.startswith("gitdir:"):
        return None
    gitdir = Path(text.split(":", 1)[1].strip())
    if not gitdir.is_absolute():
        gitdir = (root / gitdir).resolve()
    common = gitdir / "commondir"
    if common.is_file():
        git_common = (gitdir / common.read_text(encoding="utf-8").strip()).resolve()
        return git_common.parent
    return None


def shared_dir() -> Path:
    """``../shared`` relative to the repository root (the main checkout's for a worktree); the first
    candidate when none exists (so messages name where it was looked for)."""
    candidates = [REPO_ROOT.parent / "shared"]
    main = _main_checkout(REPO_ROOT)
    if main is not None:
        candidates.append(main.parent / "shared")
    return next((c for c in candidates if c.is_dir()), candidates[0])


def conformance_dir() -> Path:
    """``$RENDER_CONFORMANCE_DIR``, else ``<shared>/conformance/public``."""
    override = os.environ.get("RENDER_CONFORMANCE_DIR", "").strip()
    return Path(override) if override else shared_dir() / "conformance" / "public"


def in_ci() -> bool:
    """Whether missing reference material must fail the run (``$CI`` set, and not ``0``/``false``)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(what: str) -> None:
    """Skip the test with a clear reason, or fail it in CI."""
    if in_ci():
        pytest.fail(f"{what} (CI requires it)", pytrace=False)
    pytest.skip(what)
