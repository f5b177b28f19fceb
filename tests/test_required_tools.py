"""CI's RENDER_TEST_REQUIRE: which skip reasons name a tool that must be there (tests/conftest.py)."""

from __future__ import annotations

from tests.conftest import required_tool_in

REQUIRED = "ffmpeg,postgresql,epubcheck,chromium,prometheus"


def test_skips_for_want_of_a_required_tool_are_recognised() -> None:
    assert required_tool_in("ffmpeg/ffprobe not installed: M4B export is unavailable", REQUIRED) == "ffmpeg"
    assert required_tool_in("psycopg (PostgreSQL driver) is not installed", REQUIRED) == "postgresql"
    assert required_tool_in("EPUBCheck needs the `epubcheck` Python package and Java", REQUIRED) == "epubcheck"
    assert required_tool_in("chromium is not installed (apt-get install chromium)", REQUIRED) == "chromium"


def test_other_skips_and_an_empty_list_stay_skips() -> None:
    assert required_tool_in("needs a CUDA GPU", REQUIRED) is None
    assert required_tool_in("ffmpeg/ffprobe not installed", "") is None
    assert required_tool_in("chromium is not installed", "ffmpeg") is None
