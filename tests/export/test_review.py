"""review.html: its content as data, and the page itself in a real headless browser."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from export.review import ReviewChunk, ReviewPage, ReviewTake, waveform_svg, write_review
from tests.browser import AUDIO_STATES_JS

RATE = 32000


def _wav(path: Path, seconds: float, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * RATE)) / RATE
    rng = np.random.default_rng(seed)
    audio = 0.3 * np.sin(2 * np.pi * (150 + 50 * seed) * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    sf.write(str(path), (audio + 0.01 * rng.standard_normal(t.size)).astype(np.float32), RATE, subtype="FLOAT")
    return path


def _take(number: int, audio: Path | None, kept: bool, score: float, chunk_id: int) -> ReviewTake:
    return ReviewTake(number=number, seed=1000 + number, score=score,
                      reasons=(("token_cap", "stopped at the cap after 75 tokens"),
                               ("loop", "9 tokens repeated 4 times")),
                      audio=audio, kept=kept, use_command=f"render take book.epub {chunk_id} --use {number}")


def _page(out: Path) -> ReviewPage:
    # the chunk folder has a space and a non-ASCII name: the page's relative URLs must still resolve
    chunks = out / "chunks" / "1" / "ab cd é"
    first = ReviewChunk(
        chunk_id=7, chapter_number=2, chapter_title="The <Storm>", text='He said "no, no, no" & left.', score=2.5,
        takes=(_take(1, _wav(chunks / "t1.wav", 1.5, 1), False, 3.0, 7),
               _take(2, _wav(chunks / "t2.wav", 1.0, 2), True, 2.5, 7), _take(3, None, False, 4.0, 7)),
        reroll_command="render take book.epub 7 --reroll", accept_command="render take book.epub 7 --accept",
        chapter_file="02 - The Storm.mp3", start_s=83.4)
    worse = ReviewChunk(
        chunk_id=3, chapter_number=1, chapter_title="Opening", text="It was a dark night.", score=4.0,
        takes=(_take(1, _wav(chunks / "t3.wav", 2.0, 3), True, 4.0, 3),),
        reroll_command="render take book.epub 3 --reroll", accept_command="render take book.epub 3 --accept")
    return ReviewPage(book_title="A Book", author="An Author", chunks=(first, worse),
                      counts={"chunks": 40, "rerolled": 12, "accepted": 1},
                      notes=("the voice has random weights: every take is bad, re-rolls were capped at 2 takes",))


def test_the_page_lists_doubtful_chunks_worst_first_with_everything_a_person_needs(tmp_path: Path) -> None:
    path = write_review(_page(tmp_path), tmp_path / "review.html")
    html = path.read_text(encoding="utf-8")
    assert html.index("chunk-3") < html.index("chunk-7")  # score 4.0 before 2.5
    for command in ("render take book.epub 7 --reroll", "render take book.epub 7 --accept",
                    "render take book.epub 7 --use 2", "render take book.epub 3 --use 1"):
        assert command in html
    assert "at <b>1:23.4</b> in 02 - The Storm.mp3" in html and "not exported yet" in html
    assert "&lt;Storm&gt;" in html and "&quot;no, no, no&quot; &amp; left." in html  # escaped, not markup
    assert html.count("<audio ") == 3 and html.count("audio deleted") == 1
    assert html.count("<svg class='wave'") == 3
    assert "12 takes re-rolled automatically" in html and "1 accepted by a person" in html
    assert "re-rolls were capped at 2 takes" in html
    for src in re.findall(r"<audio [^>]*src='([^']+)'", html):
        assert not src.startswith(("/", "file:")), src  # relative: the folder can move as a whole
    assert not list(tmp_path.glob("*.tmp"))


def test_an_empty_review_says_so(tmp_path: Path) -> None:
    html = write_review(ReviewPage("A Book", "An Author", ()), tmp_path / "review.html").read_text(encoding="utf-8")
    assert "No doubtful chunks" in html and "<audio" not in html


def test_the_waveform_follows_the_signal() -> None:
    loud = waveform_svg(np.full(32000, 0.5, dtype=np.float32), RATE, columns=10, height=40)
    assert "10.0" in loud and "1.00 s" in loud  # +0.5 of full scale sits a quarter from the top
    assert "<polygon" not in waveform_svg(np.zeros(0, dtype=np.float32), RATE)


def test_the_page_plays_in_a_real_browser_without_errors(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_review(_page(tmp_path), tmp_path / "review.html")
    load = browser.open(path)
    assert load.errors == []
    states = browser.evaluate(load.session, AUDIO_STATES_JS)
    assert [s["state"] for s in states] == ["loaded"] * 3, states
    # worst first: chunk 3's single take (2.0 s), then chunk 7's takes 1 and 2 (1.5 s, 1.0 s)
    assert [round(s["duration"], 2) for s in states] == [2.0, 1.5, 1.0]
    assert browser.evaluate(load.session, "document.querySelectorAll('section.chunk').length") == 2
    assert browser.evaluate(load.session, "document.querySelectorAll('button.copy').length") == 8  # 4 takes + 2 x 2
    browser.evaluate(load.session, "document.querySelector('button.copy').click(), 0")
    shot_dir = Path(os.environ.get("RENDER_TEST_SCREENSHOT_DIR") or tmp_path)
    shot = browser.screenshot(load.session, shot_dir / "review.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert browser._errors(load.session) == []  # the copy button's script ran without errors


def test_embedded_audio_makes_a_portable_page(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_review(_page(tmp_path / "out"), tmp_path / "elsewhere" / "review.html", embed_audio=True)
    assert "data:audio/wav;base64," in path.read_text(encoding="utf-8")
    load = browser.open(path)
    assert load.errors == []
    states = browser.evaluate(load.session, AUDIO_STATES_JS)
    assert [s["state"] for s in states] == ["loaded"] * 3, states


def test_a_missing_audio_file_is_reported_by_the_browser_check(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The check itself can fail: a page whose audio file vanished after writing is caught."""
    path = write_review(_page(tmp_path), tmp_path / "review.html")
    (tmp_path / "chunks" / "1" / "ab cd é" / "t2.wav").unlink()
    load = browser.open(path)
    states = browser.evaluate(load.session, AUDIO_STATES_JS)
    assert sorted(s["state"] for s in states) == ["error", "loaded", "loaded"]


@pytest.mark.parametrize("name", ["review.html"])
def test_the_page_is_rewritten_whole(tmp_path: Path, name: str) -> None:
    target = tmp_path / name
    target.write_text("old", encoding="utf-8")
    write_review(_page(tmp_path), target)
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
