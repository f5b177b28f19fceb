"""Thread budget and background stage of the pipeline overlap."""

from __future__ import annotations

import threading

import pytest
import torch

from renderer.engine.overlap import BackgroundStage, ThreadBudget


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_budget_splits_threads_between_busy_stages(two_threads) -> None:
    budget = ThreadBudget(2)
    with budget.busy():
        assert torch.get_num_threads() == 2  # one busy stage has every thread
        with budget.busy():
            assert torch.get_num_threads() == 1  # two busy stages: one each, never more than the budget
        assert torch.get_num_threads() == 2
    assert budget.resizes == 2


def test_stage_runs_jobs_in_order_with_its_share(two_threads) -> None:
    budget = ThreadBudget(2)
    seen: list[tuple[int, int, str]] = []
    gate = threading.Event()

    def work(job: int) -> int:
        gate.wait(5)
        seen.append((job, torch.get_num_threads(), threading.current_thread().name))
        return job * 10

    stage: BackgroundStage[int, int] = BackgroundStage(work, budget, name="test-stage")
    with budget.busy():  # the caller is the other busy stage
        for job in range(4):
            stage.submit(job)
        gate.set()
        outputs = list(stage.finish())
    stage.close()
    assert outputs == [0, 10, 20, 30]
    assert [s[0] for s in seen] == [0, 1, 2, 3]
    assert all(threads == 1 and name == "test-stage" for _, threads, name in seen)
    assert stage.pending == 0


def test_stage_error_reaches_the_caller() -> None:
    def work(job: int) -> int:
        if job == 2:
            raise MemoryError("vocoder out of memory")
        return job

    stage: BackgroundStage[int, int] = BackgroundStage(work, None)
    for job in range(3):
        stage.submit(job)
    with pytest.raises(MemoryError, match="vocoder out of memory"):
        list(stage.finish())
    stage.close()
