"""Takes from the command line: `render BOOK` re-rolls and reports, `render status` and the export report count,
`render review` lists the doubtful chunks, `render take` re-rolls, accepts or chooses a take."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from jobs.cli import EXIT_USER_ERROR, cli
from jobs.services import Services
from tests.fakes.takes import ScriptedTakesFactory
from tests.jobs.conftest import write_book
from tests.jobs.test_takes_loop import BOOK

#: Takes re-rolled in BOOK (tests/jobs/test_takes_loop.py): 1 + 2 + 1 + 2; the cap,cap,cap chunk stays doubtful.
REROLLED, DOUBTFUL = 6, 1


@pytest.fixture(autouse=True)
def _user_errors_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    """As ``jobs.cli.main`` sets it for the console script."""
    monkeypatch.setattr(click.ClickException, "exit_code", EXIT_USER_ERROR)


def _cli(args: list[str]) -> Result:
    return CliRunner().invoke(cli, args, obj=Services(engines=ScriptedTakesFactory()), catch_exceptions=False)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Result]:
    folder = tmp_path_factory.mktemp("takes-cli")
    book = write_book(folder / "src", BOOK)
    out = folder / "out"
    result = _cli(["run", str(book), "--voice", "narrator", "--out", str(out), "--format", "wav", "--preset", "none",
                   "--batch-size", "3"])
    return book, out, result


@pytest.fixture
def copy(rendered: tuple[Path, Path, Result], tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the rendered output folder, for the tests that change it."""
    book, out, _ = rendered
    shutil.copytree(out, tmp_path / "out")
    return book, tmp_path / "out"


def _doubtful_chunk(out: Path) -> int:
    """The chunk number the review page shows for the doubtful chunk."""
    html = (out / "review.html").read_text(encoding="utf-8")
    ids = re.findall(r"id='chunk-(\d+)'", html)
    assert len(ids) == DOUBTFUL, ids
    return int(ids[0])


def test_a_run_reports_rerolls_and_writes_the_review_page(rendered: tuple[Path, Path, Result]) -> None:
    book, out, result = rendered
    assert result.exit_code == 0, result.output
    assert f"takes: {REROLLED} re-rolled, {DOUBTFUL} chunk(s) still doubtful, 0 accepted by a person" in result.output
    assert f"listen to the doubtful chunks: {out / 'review.html'}" in result.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["takes"] == {"rerolled": REROLLED, "doubtful": DOUBTFUL, "accepted": 0, "review": "review.html"}
    assert f"Takes: {REROLLED} re-rolled, {DOUBTFUL} chunk(s) still doubtful" in (out / "report.txt").read_text()
    html = (out / "review.html").read_text(encoding="utf-8")
    chunk = _doubtful_chunk(out)
    assert "[[takes:cap,cap,cap]]" in html and html.count("<audio ") == 3  # the three takes, all kept
    for action in ("--reroll", "--accept", "--use 2"):
        assert f"render take {book} {chunk} --out {out} {action}" in html
    assert "in 01 - One.wav" in html  # where it plays in the exported chapter file


def test_status_counts_the_takes(rendered: tuple[Path, Path, Result]) -> None:
    book, out, _ = rendered
    shown = _cli(["status", str(book), "--out", str(out)])
    assert f"takes: {REROLLED} re-rolled, {DOUBTFUL} chunk(s) still doubtful" in shown.output
    data = json.loads(_cli(["status", str(book), "--out", str(out), "--json"]).output)
    assert data[0]["takes"] == {"rerolled": REROLLED, "doubtful": DOUBTFUL, "accepted": 0}


def test_use_keeps_a_take_deletes_the_others_and_counts_a_person(copy: tuple[Path, Path]) -> None:
    book, out = copy
    chunk = _doubtful_chunk(out)
    before = {p.name for p in (out / "chunks").rglob("*.wav")}
    used = _cli(["take", str(book), str(chunk), "--out", str(out), "--use", "2"])
    assert used.exit_code == 0, used.output
    assert f"chunk {chunk}: take 2 of 3 in use" in used.output and "2 other take(s) deleted" in used.output
    assert len(before) - len({p.name for p in (out / "chunks").rglob("*.wav")}) == 2
    assert "No doubtful chunks" in (out / "review.html").read_text(encoding="utf-8")
    reviewed = _cli(["review", str(book), "--out", str(out)])
    assert f"0 doubtful chunk(s), {REROLLED} take(s) re-rolled, 1 accepted by a person" in reviewed.output
    exported = _cli(["export", str(book), "--out", str(out), "--format", "wav", "--preset", "none"])
    assert exported.exit_code == 0, exported.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["takes"]["accepted"] == 1 and report["takes"]["doubtful"] == 0
    again = _cli(["take", str(book), str(chunk), "--out", str(out), "--use", "1"])
    assert again.exit_code == 2 and "was deleted" in again.output


def test_reroll_renders_one_more_take_and_keeps_the_best(copy: tuple[Path, Path]) -> None:
    book, out = copy
    chunk = _doubtful_chunk(out)
    rolled = _cli(["take", str(book), str(chunk), "--out", str(out), "--reroll", "--batch-size", "2"])
    assert rolled.exit_code == 0, rolled.output
    # the script's last fault repeats: take 4 hits the cap too, so the chunk is still doubtful with 4 takes
    assert f"chunk {chunk}: rendered take 4; take 1 of 4 in use (still doubtful" in rolled.output
    assert (out / "review.html").read_text(encoding="utf-8").count("<audio ") == 4
    accepted = _cli(["take", str(book), str(chunk), "--out", str(out), "--accept"])
    assert "take 1 of 4 in use" in accepted.output and "3 other take(s) deleted" in accepted.output


@pytest.mark.parametrize("args,message", [
    (["--reroll", "--accept"], "give exactly one of"),
    ([], "give exactly one of"),
])
def test_take_needs_exactly_one_decision(rendered: tuple[Path, Path, Result], args: list[str], message: str) -> None:
    book, out, _ = rendered
    result = _cli(["take", str(book), "1", "--out", str(out), *args])
    assert result.exit_code == 2 and message in result.output


def test_take_refuses_a_chunk_of_another_book(rendered: tuple[Path, Path, Result]) -> None:
    book, out, _ = rendered
    result = _cli(["take", str(book), "99999", "--out", str(out), "--accept"])
    assert result.exit_code == 2 and "not part of this book" in result.output


def test_an_asr_folder_without_a_model_is_a_clear_error(tmp_path: Path) -> None:
    book = write_book(tmp_path / "src", "# B\n\n## One\n\nA short line.\n")
    (tmp_path / "asr").mkdir()
    result = _cli(["run", str(book), "--voice", "narrator", "--out", str(tmp_path / "out"),
                   "--asr-model", str(tmp_path / "asr")])
    assert result.exit_code == 2 and "not a faster-whisper model folder (no model.bin)" in result.output


def test_bench_takes_renders_the_book_with_rerolls_off_and_on(rendered: tuple[Path, Path, Result]) -> None:
    book, _out, _ = rendered
    result = _cli(["bench-takes", "--book", str(book), "--voice", "narrator", "--runs", "1", "--batch-size", "3",
                   "--json"])
    assert result.exit_code == 0, result.output
    figures = {f["mode"]: f for f in json.loads(result.output[result.output.index("["):])}
    assert figures["off"]["max_takes"] == 1 and figures["on"]["max_takes"] == 3
    assert figures["off"]["chunks"] == figures["on"]["chunks"]
    assert figures["off"]["takes"] == figures["off"]["chunks"]  # off: one take per chunk, bad or not
    assert figures["on"]["takes"] == figures["on"]["chunks"] + REROLLED
    assert figures["off"]["doubtful"] == 4 and figures["on"]["doubtful"] == DOUBTFUL
    assert figures["on"]["takes_per_s"] > 0 and figures["on"]["chunks_per_s"] > 0
