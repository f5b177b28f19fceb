"""Bench library pieces that run fast: FLOP formulas, figures, table/JSON formatting, CLI help."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import click
import pytest
import torch
from click.testing import CliRunner

from jobs.bench.measure import ConvFlopCounter, Figure, figure, gpt_flops_per_token, gpt_prefill_flops
from jobs.cli import cli
from jobs.cli.bench import format_table
from renderer.tuning import EngineTuning, TuningError


def test_gpt_flop_formula_matches_issue_figures() -> None:
    # full v2: d=512, 24 layers -> ~151 MFLOP per prefill position (linear part) and ~164 MFLOP per token
    linear = gpt_flops_per_token(512, 24, keys=0) - 2 * 512 * 1025
    assert abs(linear / 1e6 - 151) < 1
    assert 155e6 < gpt_flops_per_token(512, 24, keys=300) < 175e6
    assert gpt_prefill_flops(512, 24, 10, 2) > 2 * 10 * linear


def test_conv_flop_counter_counts_hooks() -> None:
    conv = torch.nn.Conv1d(4, 8, 3, padding=1)
    counter = ConvFlopCounter(conv)
    conv(torch.randn(1, 4, 10))
    counter.close()
    assert counter.flops == 2 * 8 * 10 * 4 * 3


def test_figure_takes_median_of_three() -> None:
    values = iter([100.0, 1.0, 2.0, 3.0])
    fig = figure("x", "u", lambda: next(values), runs=3, warmup=1)
    assert (fig.median, fig.low, fig.high, fig.runs) == (2.0, 1.0, 3.0, 3)


def test_figure_from_values_and_back_from_its_dict() -> None:
    fig = Figure.from_values("gpt_decode_wall_b8", "tok/s", [3.0, 9.0, 4.0, 5.0], {"batch": 8})
    assert (fig.median, fig.low, fig.high, fig.runs, fig.extra) == (4.5, 3.0, 9.0, 4, {"batch": 8})
    assert Figure.from_dict(fig.to_dict()) == fig


def test_format_table_lists_figures() -> None:
    doc = {"backend": "torch", "device": "cpu", "threads": 2, "quick": True, "machine": {"load_average": (0, 0, 0)},
           "peak_rss_mb": 100.0, "seconds": 1.0,
           "figures": [Figure("gpt_decode_b8", "tok/s", 5.0, 4.0, 6.0, 3, {"gflops": 1.0,
                                                                           "fraction_of_fp32_peak": 0.5}).to_dict()]}
    table = format_table(doc)
    assert "gpt_decode_b8" in table and "50%" in table and "peak RSS 100 MB" in table


def test_bench_and_say_have_help() -> None:
    for command in ("bench", "say"):
        result = CliRunner().invoke(cli, [command, "--help"])
        assert result.exit_code == 0 and "--" in result.output


def test_rss_peak_sees_a_short_allocation() -> None:
    import numpy as np

    from jobs.bench.measure import RssPeak

    with RssPeak() as idle:
        time.sleep(0.05)
    with RssPeak() as busy:
        block = np.ones(200 * 2**20 // 8)  # 200 MB, touched
        time.sleep(0.1)
        del block
    assert busy.peak_mb > idle.peak_mb + 150


def test_chapter_stage_runs_in_a_fresh_process(monkeypatch: Any, tmp_path: Path) -> None:
    """The child gets a command line `render bench` accepts (the same voice and tuning) and its figure comes
    back whole; a failing child is an error naming the stage."""
    import click

    import jobs.cli.bench as bench_cli

    seen: list[list[str]] = []
    child = {"figures": [{"name": "chapter_rtf", "unit": "RTF", "median": 0.5, "min": 0.4, "max": 0.6, "runs": 3,
                          "peak_rss_mb": 2900.0, "batch_size": 32}]}

    def fake_run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        seen.append(command)
        return subprocess.CompletedProcess(command, 0, stdout=json.dumps(child), stderr="")

    monkeypatch.setattr(bench_cli.subprocess, "run", fake_run)
    tuning = EngineTuning(threads=2, attention="torch", packed_linear=False, kv_budget_mb=800.0)
    voice = bench_cli.BenchVoice("v2ProPlus")
    fig = bench_cli.stage_in_fresh_process("chapter", "torch", "cpu", "bf16", tuning, 3, tmp_path, voice)
    assert (fig.name, fig.median, fig.low, fig.high) == ("chapter_rtf", 0.5, 0.4, 0.6)
    assert fig.extra == {"peak_rss_mb": 2900.0, "batch_size": 32, "process": "fresh"}
    args = seen[0][seen[0].index("bench") + 1:]
    params = bench_cli.bench.make_context("bench", list(args)).params  # every option exists and parses
    assert params["stages"] == "chapter" and params["precision"] == "bf16" and params["as_json"]
    assert params["model_version"] == "v2ProPlus" and params["voice_name"] is None
    # the child runs under the same tuning, whatever its environment says
    assert bench_cli.parse_tune(params["tune"], params["threads"], environ={"RENDER_OVERLAP": "1"}) == tuning

    def failing(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(command, 1, stdout="")  # its stderr went to ours, not captured

    monkeypatch.setattr(bench_cli.subprocess, "run", failing)
    with pytest.raises(click.ClickException, match="the book stage failed in its own process"):
        bench_cli.stage_in_fresh_process("book", "torch", "cpu", "fp32", EngineTuning(threads=2), 3, tmp_path,
                                         bench_cli.BenchVoice(name="narrator"), quick=True)


def test_tune_options_parse_into_the_tuning() -> None:
    import jobs.cli.bench as bench_cli

    tuning = bench_cli.parse_tune(("attention=torch", "vocoder_bucket_tokens=0"), None, environ={})
    assert (tuning.attention, tuning.vocoder_bucket_tokens, tuning.threads) == ("torch", 0, os.cpu_count() or 1)
    with pytest.raises(click.BadParameter):
        bench_cli.parse_tune(("attention",), None, environ={})
    with pytest.raises(TuningError, match="packed_linear"):
        bench_cli.parse_tune(("packed_linear=sometimes",), 2, environ={})
