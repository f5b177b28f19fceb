"""`make demo` (`render demo`) writes review.html, and the page opens and plays in a real headless browser.

The demo's voice has random weights: every take runs to the token cap, so every chunk is re-rolled up to
the demo's cap of 2 takes and stays doubtful. That is what the page must then show: every chunk, both takes.
The command runs as `make demo` runs it, on the sample book, with an engine stand-in that behaves like the
random voice (every take hits the cap): the real tiny voice renders the 64 takes in minutes of CPU, too long
for the suite.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import jobs.cli.demo
from jobs.cli import cli
from jobs.cli.render_cmd import DEMO_MAX_TAKES
from jobs.services import Services
from tests.browser import AUDIO_STATES_JS
from tests.fakes.takes import FakeEngineConfig, ScriptedTakesFactory


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    folder = tmp_path_factory.mktemp("demo")
    out = folder / "demo"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(jobs.cli.demo, "ensure_sample_voice", lambda ctx, voices_dir, version="v2": "sample")
        # short takes (20 ms per character) keep the export of four chapters quick
        fast = FakeEngineConfig(seconds_per_char=0.02)
        random_voice = Services(engines=ScriptedTakesFactory(config=fast, unscripted=("cap",)))
        result = CliRunner().invoke(cli, ["demo", "--out", str(out), "--format", "wav"], obj=random_voice,
                                    catch_exceptions=False)
    assert result.exit_code == 0, result.output
    yield out, result.output


def test_the_demo_writes_a_review_page_and_says_why_every_chunk_is_doubtful(demo: tuple[Path, str]) -> None:
    out, output = demo
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    chunks = report["coverage"]["n_chunks"]
    assert report["takes"]["doubtful"] == chunks and report["takes"]["rerolled"] == chunks * (DEMO_MAX_TAKES - 1)
    assert f"listen to the doubtful chunks: {out / 'review.html'}" in output and "review.html" in output
    html = (out / "review.html").read_text(encoding="utf-8")
    assert "random weights" in html and f"--max-takes {DEMO_MAX_TAKES}" in html
    assert html.count("<section class='chunk'") == chunks and html.count("<audio ") == chunks * DEMO_MAX_TAKES


def test_the_demo_review_page_plays_in_a_browser(browser, demo: tuple[Path, str], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out, _ = demo
    load = browser.open(out / "review.html")
    assert load.errors == []
    states = browser.evaluate(load.session, AUDIO_STATES_JS)
    assert states and {s["state"] for s in states} == {"loaded"}, states
    assert all(s["duration"] > 0 for s in states)
    shot_dir = Path(os.environ.get("RENDER_TEST_SCREENSHOT_DIR") or tmp_path)
    shot = browser.screenshot(load.session, shot_dir / "demo-review.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
