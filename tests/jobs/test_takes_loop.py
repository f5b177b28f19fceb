"""The whole re-roll loop with synthetic takes: a fake engine whose takes loop, hit the token cap, come out
far too short, or are clean, on cue (tests/fakes/takes.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from jobs.db import sqlite_url
from jobs.engines import SetupCache
from jobs.metrics import RunMetrics
from jobs.store import Store
from jobs.takes import take_key
from jobs.worker import Worker, WorkerOptions, WorkerReport
from renderer.engine.options import row_seed
from tests.fakes.takes import ScriptedTakesFactory, ScriptedTranscriber
from tests.jobs.conftest import write_book
from tests.jobs.util import plan_for

#: Every script after three clean chunks (so "far too short" is judged against a norm with data).
BOOK = """# Takes

## One

The wind rose before dawn and the sea was grey. Waves struck the rocks with a steady roar.
Old Tom climbed the long stairs to the lamp room. [[takes:loop,clean]] He lit the great lamp at the top.
Its beam swept the dark water in a wide circle. [[takes:cap,cap,cap]] Far out, a ship was turning.

## Two

The captain saw the light over the black waves. [[takes:short,clean]] He turned the wheel hard.
The ship groaned and leaned into the wind. [[takes:loop,short,clean]] The crew held on to the rails.
Nobody spoke for a long while after that night.
"""

#: Script -> (takes rendered, take kept, still doubtful).
EXPECTED = {
    "[[takes:loop,clean]]": (2, 2, False),
    "[[takes:cap,cap,cap]]": (3, 1, True),
    "[[takes:short,clean]]": (2, 2, False),
    "[[takes:loop,short,clean]]": (3, 3, False),
}


def _render(folder: Path, **options: Any) -> tuple[Store, WorkerReport, Path]:
    store = Store(sqlite_url(folder))
    store.plans.sync_plan(plan_for(write_book(folder / "src", BOOK)))
    root = folder / "chunks"
    options.setdefault("batch_size", 3)
    worker = Worker(store, root, SetupCache(ScriptedTakesFactory()), WorkerOptions(handle_signals=False, **options))
    return store, worker.run(), root


def _script(text: str) -> str | None:
    return next((s for s in EXPECTED if s in text), None)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, WorkerReport, Path]:
    store, report, root = _render(tmp_path_factory.mktemp("takes"))
    yield store, report, root
    store.close()


def test_exactly_the_bad_takes_are_rerolled_and_the_best_is_kept(rendered: tuple[Store, WorkerReport, Path]) -> None:
    store, report, root = rendered
    rows = store.status.chunk_rows()
    assert all(r["status"] == "done" for r in rows)
    for row in rows:
        takes = store.takes.takes(row["id"])
        script = _script(row["text"])
        if script is None:
            assert [t.take for t in takes] == [1] and not takes[0].bad, row["text"]
            assert row["take_state"] == "clean" and row["take"] == 1
            continue
        n_takes, kept, doubtful = EXPECTED[script]
        assert [t.take for t in takes] == list(range(1, n_takes + 1)), script
        assert [t.bad for t in takes] == [True] * (n_takes - 1) + [doubtful], script
        assert row["take"] == kept and row["take_state"] == ("doubtful" if doubtful else "rerolled")
        assert row["audio_path"] == takes[kept - 1].audio_path
        for t in takes:  # every take's seed is its own stream's; discarded takes' audio is gone
            assert t.seed == row_seed(0, take_key(row["render_key"], t.take))
            kept_audio = t.take == kept or doubtful
            assert (t.audio_path is not None) == kept_audio
            if t.audio_path is not None:
                assert (root / t.audio_path).is_file()
        assert not [p for p in root.rglob(f"{row['render_key']}~*") if not any(
            t.audio_path and p.name in t.audio_path for t in takes)]
    reasons = {t.take: {r[0] for r in t.reasons} for row in rows if _script(row["text"]) == "[[takes:loop,short,clean]]"
               for t in store.takes.takes(row["id"])}
    assert "loop" in reasons[1] and {"too_fast", "speech_too_short"} & reasons[2] and not reasons[3]


def test_the_counts_are_right(rendered: tuple[Store, WorkerReport, Path]) -> None:
    store, report, _root = rendered
    book_id = store.status.books()[0].id
    counts = store.takes.counts(book_id)
    assert counts.rerolled == sum(n - 1 for n, _, _ in EXPECTED.values()) == 6
    assert counts.doubtful == 1 and counts.accepted == 0
    assert report.rerolled == 6 and report.doubtful == 1
    assert report.done == len(store.status.chunk_rows())
    assert ["[[takes:cap,cap,cap]]" in c.text for c in store.takes.doubtful(book_id)] == [True]


def test_run_metrics_count_the_rerolled_takes(rendered: tuple[Store, WorkerReport, Path]) -> None:
    _store, report, _root = rendered
    metrics = RunMetrics(worker_id="w")
    metrics.on_batch(report)
    found = re.search(r"^render_rerolled_takes_total\{[^}]*\} (\S+)$", metrics.render(), re.MULTILINE)
    assert found and float(found.group(1)) == report.rerolled == 6


@pytest.mark.parametrize("batch_size", [3, 5])
def test_the_same_book_renders_the_same_takes(rendered: tuple[Store, WorkerReport, Path], tmp_path: Path,
                                              batch_size: int) -> None:
    """Same takes, same seeds, same audio, same verdicts. The scores themselves are equal only for the same
    order of work: the voice's norm learns from the chunks finished before, and another batch size
    finishes them in another order (a rate at the edge of a limit could then be judged otherwise)."""
    store, _report, root = rendered
    again, _, root_again = _render(tmp_path, batch_size=batch_size)
    with again:
        for a, b in zip(store.status.chunk_rows(), again.status.chunk_rows(), strict=True):
            ta, tb = store.takes.takes(a["id"]), again.takes.takes(b["id"])
            assert [(t.take, t.seed, t.bad, [r[0] for r in t.reasons]) for t in ta] == \
                   [(t.take, t.seed, t.bad, [r[0] for r in t.reasons]) for t in tb]
            if batch_size == 3:
                assert [t.score for t in ta] == [t.score for t in tb]
            assert (a["take"], a["take_state"]) == (b["take"], b["take_state"])
            # samples, not bytes: libsndfile stamps float WAVs with the time they were written (PEAK chunk)
            audio_a, _ = sf.read(root / a["audio_path"], dtype="float32")
            audio_b, _ = sf.read(root_again / b["audio_path"], dtype="float32")
            assert np.array_equal(audio_a, audio_b)


def test_rerolls_are_batched_with_first_takes(tmp_path: Path) -> None:
    """A re-roll is just a chunk with another take number in the next claim: it shares engine calls with the
    first takes of later chunks, and nothing is rendered twice."""
    factory = ScriptedTakesFactory()
    store = Store(sqlite_url(tmp_path))
    store.plans.sync_plan(plan_for(write_book(tmp_path / "src", BOOK)))
    Worker(store, tmp_path / "chunks", SetupCache(factory), WorkerOptions(batch_size=3, handle_signals=False)).run()
    batches = [batch for engine in factory.engines for batch in engine.batches]
    keys = [key for batch in batches for key in batch]
    with store:
        n_takes = sum(len(store.takes.takes(r["id"])) for r in store.status.chunk_rows())
    assert len(keys) == len(set(keys)) == n_takes
    assert any(any("~" in k for k in batch) and any("~" not in k for k in batch) for batch in batches), batches


def test_one_take_only_scores_and_never_rerolls(tmp_path: Path) -> None:
    store = Store(sqlite_url(tmp_path))
    plan = plan_for(write_book(tmp_path / "src", BOOK))
    plan = type(plan)(**{**plan.__dict__, "options": {**plan.options, "takes": {"max_takes": 1}}})
    store.plans.sync_plan(plan)
    report = Worker(store, tmp_path / "chunks", SetupCache(ScriptedTakesFactory()),
                    WorkerOptions(batch_size=4, handle_signals=False)).run()
    with store:
        book_id = store.status.books()[0].id
        assert report.rerolled == 0 and store.takes.counts(book_id).rerolled == 0
        assert store.takes.counts(book_id).doubtful == len(EXPECTED)


def test_the_speech_recognition_check_rerolls_a_misheard_take(tmp_path: Path) -> None:
    """The optional ASR check through the worker, with a stand-in transcriber: a take whose audio passes every
    other check but is heard as other words is re-rolled; the transcriber hears every take once."""
    transcriber = ScriptedTranscriber()
    store = Store(sqlite_url(tmp_path))
    book = "# Boats\n\n## One\n\nThe sea was calm that morning. [[takes:misheard,clean]] The boat left early.\n"
    store.plans.sync_plan(plan_for(write_book(tmp_path / "src", book)))
    worker = Worker(store, tmp_path / "chunks", SetupCache(ScriptedTakesFactory(transcriber=transcriber)),
                    WorkerOptions(batch_size=4, handle_signals=False), transcriber=transcriber)
    report = worker.run()
    with store:
        rows = store.status.chunk_rows()
        verdicts = {r["text"]: [(t.bad, [code for code, _ in t.reasons]) for t in store.takes.takes(r["id"])]
                    for r in rows}
    misheard = next(text for text in verdicts if "misheard" in text)
    assert verdicts.pop(misheard) == [(True, ["asr_mismatch"]), (False, [])]
    assert all(v == [(False, [])] for v in verdicts.values()), verdicts
    assert report.rerolled == 1 and transcriber.calls == len(rows) + 1
