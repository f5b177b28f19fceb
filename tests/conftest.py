"""Session-wide test settings and fixtures shared across layers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conformance import ConformanceSet
from tests.paths import conformance_dir, missing

# Nothing in the suite may reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Engines keep their built-in batch sizes and thread split instead of measuring this machine on first use
# per voice (renderer.engine.autotune, tested on its own in tests/engine/test_autotune.py): tiny test voices
# would each be measured, and results must not depend on a shared machine's load.
os.environ.setdefault("RENDER_MEASURE_SETTINGS", "0")

#: Seed of the shared tiny random voice assets (GPT, SoVITS, BERT, HuBERT, reference clip).
SHARED_ASSET_SEED = 11


@pytest.fixture(scope="session")
def random_asset_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache of random voice assets per test run, laid out like ``make_random_voice``'s cache,
    so every layer's tests reuse the same generated files instead of writing their own."""
    return tmp_path_factory.mktemp("random cache")


@pytest.fixture(scope="session")
def conformance() -> ConformanceSet:
    """The conformance set (``$RENDER_CONFORMANCE_DIR``, else ``../shared/conformance/public``): the one
    lookup every model and engine test goes through. Missing: a skip with the reason, a failure in CI."""
    path = conformance_dir()
    if not ConformanceSet.present(path):
        missing(f"conformance set not found at {path} (manifest.json + vectors.npz); "
                "set RENDER_CONFORMANCE_DIR to its folder")
    return ConformanceSet.load(path)


# CI installs every tool the suite uses and lists them in RENDER_TEST_REQUIRE (see .ci/run): a test that
# skips because one of them is missing then fails instead, so a broken install cannot pass unnoticed.
REQUIRE_ENV = "RENDER_TEST_REQUIRE"
#: A required tool's name -> words that a skip reason caused by its absence contains (lower case).
TOOL_WORDS = {"ffmpeg": ("ffmpeg", "ffprobe"), "postgresql": ("postgresql", "psycopg"),
              "epubcheck": ("epubcheck",), "chromium": ("chromium",), "prometheus": ("prometheus",)}


def required_tool_in(reason: str, required: str) -> str | None:
    """The required tool (from a comma-separated ``required``) whose absence ``reason`` reports, if any."""
    text = reason.lower()
    for tool in (t.strip().lower() for t in required.split(",") if t.strip()):
        if any(word in text for word in TOOL_WORDS.get(tool, (tool,))):
            return tool
    return None


def _skip_reason(report: pytest.CollectReport | pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def _fail_required_skip(report: pytest.CollectReport | pytest.TestReport) -> None:
    required = os.environ.get(REQUIRE_ENV, "")
    if not required or not report.skipped:
        return
    reason = _skip_reason(report)
    tool = required_tool_in(reason, required)
    if tool is not None:
        report.outcome = "failed"
        report.longrepr = f"{tool} is required in this run ({REQUIRE_ENV}={required}) but the test skipped: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    _fail_required_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):  # type: ignore[no-untyped-def]
    outcome = yield
    _fail_required_skip(outcome.get_result())
@pytest.fixture(scope="session")
def browser():  # type: ignore[no-untyped-def]
    """One headless Chromium for the whole run (pages we write are opened in it); skipped without one."""
    from tests.browser import Browser, find_chromium

    executable = find_chromium()
    if executable is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run installs it)")
    instance = Browser(executable)
    yield instance
    instance.close()
