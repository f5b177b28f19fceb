"""``render text``: normalised text, language segments and phones per word, with their sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobs.cli import cli, main


def test_render_text_lists_segments_and_word_sources() -> None:
    result = CliRunner().invoke(cli, ["text", "Dr. Smith met Saoirse at 10 a.m."])
    assert result.exit_code == 0, result.output
    assert "normalised  Doctor Smith met Saoirse at ten A M." in result.output
    assert "D AA1 K T ER0" in result.output and "dictionary" in result.output


def test_render_text_json_splits_languages_and_applies_a_lexicon(tmp_path: Path) -> None:
    lexicon = tmp_path / "lexicon.tsv"
    lexicon.write_text("Saoirse\t/S IH1 R SH AH0/\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["text", "我们 today 见到了Saoirse。", "--json", "--lexicon", str(lexicon)])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert [s["language"] for s in info["segments"]] == ["zh", "en", "zh"]
    group = {"word": "{S IH1 R SH AH0}", "phones": ["S", "IH1", "R", "SH", "AH0"], "source": "lexicon"}
    assert group in info["segments"][-1]["words"]
    assert info["lexicon"] and info["phones"][-1] == "."


def test_render_text_bad_lexicon_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lexicon = tmp_path / "lexicon.tsv"
    lexicon.write_text("Saoirse /S IH1 R/\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(["text", "hello", "--lexicon", str(lexicon)])
    assert exit_info.value.code == 2 and "lexicon.tsv:1" in capsys.readouterr().err
