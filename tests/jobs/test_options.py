"""Render options: the one merge of defaults, the voice's stored defaults and the command line; render keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from jobs.cli import cli
from jobs.planner import render_key
from jobs.services import Services
from renderer.engine.options import SamplingOptions
from renderer.errors import OptionsError
from renderer.protocols import DEFAULT_PRECISION, RenderOptions
from tests.fakes.engine import FakeEngineFactory

VOICE_DEFAULTS = {"top_k": 5, "seed": 7, "written_by_an_older_version": 1}


def test_defaults_then_voice_then_command_line() -> None:
    plain = RenderOptions.resolve(None, {})
    assert plain == RenderOptions(SamplingOptions(), DEFAULT_PRECISION)
    voiced = RenderOptions.resolve(VOICE_DEFAULTS, {})
    assert (voiced.sampling.top_k, voiced.sampling.seed) == (5, 7)  # unknown stored keys are not options
    chosen = RenderOptions.resolve(VOICE_DEFAULTS, {"seed": 0, "temperature": 0.8, "precision": "fp32"})
    assert (chosen.sampling.top_k, chosen.sampling.seed, chosen.sampling.temperature) == (5, 0, 0.8)
    assert chosen.precision == "fp32"
    with pytest.raises(OptionsError, match="tmperature"):
        RenderOptions.resolve(None, {"tmperature": 0.8})
    with pytest.raises(OptionsError, match="precision"):
        RenderOptions(precision="fp8")


def test_stored_form_round_trips_and_keeps_old_render_keys() -> None:
    """The stored/hashed form is the one render keys were made of before RenderOptions existed (golden keys
    computed with that code): changing it would re-render every chunk of every book."""
    plain = RenderOptions.resolve(None, {})
    chosen = RenderOptions.resolve(VOICE_DEFAULTS, {"temperature": 0.8, "precision": "fp32"})
    assert render_key("Hello.", "en", "v", plain.to_dict(), "1") == (
        "0badebee9039865e9ee2bf865ef0182ffb2d5bac8e4f722f0b52acd8a501ac92")
    assert render_key("Hello.", "en", "v", chosen.to_dict(), "1") == (
        "d982d7b8fcc9a3102d905e8bd7449fd04f0505e8ac52577426f6b68a3df7e5e5")
    assert RenderOptions.from_dict(chosen.to_dict()) == chosen
    # options stored before precision was recorded were rendered in fp32
    assert RenderOptions.from_dict({"seed": 3}).precision == "fp32"


def test_precision_is_part_of_the_render_key() -> None:
    auto, fp32 = RenderOptions.resolve(None, {}), RenderOptions.resolve(None, {"precision": "fp32"})
    assert render_key("Hello.", "en", "v", auto.to_dict(), "1") != render_key("Hello.", "en", "v", fp32.to_dict(), "1")
    assert not hasattr(fp32.sampling, "precision")  # it selects the engine, not the sampler


def test_say_keeps_the_voices_seed_unless_given(tmp_path: Path) -> None:
    """`render say` merges options like `render BOOK` (it used to override the voice's seed with 0)."""
    seeds = []
    for extra in ([], ["--seed", "3"]):
        engines = FakeEngineFactory(voice_defaults=dict(VOICE_DEFAULTS))
        args = ["say", "Hello there.", "--voice", "x", "-o", str(tmp_path / "say.wav"), *extra]
        result = CliRunner().invoke(cli, args, obj=Services(engines=engines), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        [engine] = engines.engines
        seeds.append(engine.calls[0].seed)
        assert engine.calls[0].top_k == 5 and engine.precision == "auto"
    assert seeds == [7, 3]


def test_plan_uses_the_voices_defaults(tmp_path: Path, md_book: Path) -> None:
    from jobs.engines import SetupCache
    from jobs.pipeline import make_plan

    engines = FakeEngineFactory(voice_defaults=dict(VOICE_DEFAULTS))
    plan = make_plan(md_book, "x", SetupCache(engines), overrides={"temperature": 0.5})
    assert plan.options["sampling"] == RenderOptions.resolve(VOICE_DEFAULTS, {"temperature": 0.5}).to_dict()
