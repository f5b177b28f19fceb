"""The one lookup of the reference material: a missing conformance set fails in CI and skips elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import paths
from tests.conformance import ConformanceSet


def test_missing_material_fails_in_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="CI requires it"):
        paths.missing("conformance set not found at /nowhere")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="/nowhere"):
        paths.missing("conformance set not found at /nowhere")


def test_conformance_dir_follows_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RENDER_CONFORMANCE_DIR", str(tmp_path))
    assert paths.conformance_dir() == tmp_path
    assert not ConformanceSet.present(tmp_path)
    monkeypatch.delenv("RENDER_CONFORMANCE_DIR")
    assert paths.conformance_dir() == paths.shared_dir() / "conformance" / "public"


def test_a_worktree_finds_its_main_checkout(tmp_path: Path) -> None:
    main = tmp_path / "main"
    (main / ".git" / "worktrees" / "me").mkdir(parents=True)
    (main / ".git" / "worktrees" / "me" / "commondir").write_text("../..\n")
    tree = tmp_path / "wt" / "me"
    tree.mkdir(parents=True)
    (tree / ".git").write_text(f"gitdir: {main / '.git' / 'worktrees' / 'me'}\n")
    assert paths._main_checkout(tree) == main
    assert paths._main_checkout(main) is None  # a plain checkout's .git is a folder
