"""RENDER_* on/off switches are parsed one way (renderer.env)."""

from __future__ import annotations

import pytest

from renderer.env import env_flag


@pytest.mark.parametrize(("value", "default", "expected"), [
    (None, True, True), (None, False, False), ("", True, True), ("", False, False),
    ("1", False, True), (" On ", False, True), ("yes", False, True), ("TRUE", False, True),
    ("0", True, False), ("off", True, False), ("No", True, False), ("false ", True, False),
    ("maybe", True, True), ("maybe", False, False),
])
def test_env_flag(monkeypatch: pytest.MonkeyPatch, value: str | None, default: bool, expected: bool) -> None:
    if value is None:
        monkeypatch.delenv("RENDER_TEST_FLAG", raising=False)
    else:
        monkeypatch.setenv("RENDER_TEST_FLAG", value)
    assert env_flag("RENDER_TEST_FLAG", default) is expected
