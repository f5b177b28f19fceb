"""`render voice ...` commands through click's CliRunner."""

from __future__ import annotations

import json

from click.testing import CliRunner

from jobs.cli import cli
from renderer.voice_random import RANDOM_REF_TEXT


def _add(runner, assets, voices, name="narrator", extra=()):
    return runner.invoke(cli, ["voice", "add", name, "--gpt", str(assets["gpt"]), "--sovits", str(assets["sovits"]),
                               "--ref", str(assets["ref"]), "--ref-text", RANDOM_REF_TEXT, "--lang", "en",
                               "--hubert", str(assets["hubert"]), "--voices-dir", str(voices), *extra])


def test_add_list_show_remove(assets, tmp_path):
    runner = CliRunner()
    voices = tmp_path / "voices"
    result = _add(runner, assets, voices)
    assert result.exit_code == 0, result.output
    assert "imported: voice 'narrator' (v2)" in result.output
    again = _add(runner, assets, voices)
    assert again.exit_code == 0 and "unchanged" in again.output
    bad_option = _add(runner, assets, voices, extra=["--top-k", "0"])
    assert bad_option.exit_code != 0 and "top_k" in bad_option.output and "Traceback" not in bad_option.output

    listed = runner.invoke(cli, ["voice", "list", "--voices-dir", str(voices)])
    assert listed.exit_code == 0 and "narrator" in listed.output and "v2" in listed.output
    as_json = json.loads(runner.invoke(cli, ["voice", "list", "--json", "--voices-dir", str(voices)]).output)
    assert [v["name"] for v in as_json] == ["narrator"]

    shown = runner.invoke(cli, ["voice", "show", "narrator", "--voices-dir", str(voices)])
    assert shown.exit_code == 0 and RANDOM_REF_TEXT in shown.output and "prompt_tokens" in shown.output
    data = json.loads(runner.invoke(cli, ["voice", "show", "narrator", "--json", "--voices-dir", str(voices)]).output)
    assert data["version"] == "v2" and data["gin"] == 512

    refused = runner.invoke(cli, ["voice", "remove", "narrator", "--voices-dir", str(voices)], input="n\n")
    assert refused.exit_code != 0 and (voices / "narrator").exists()
    removed = runner.invoke(cli, ["voice", "remove", "narrator", "--yes", "--voices-dir", str(voices)])
    assert removed.exit_code == 0 and not (voices / "narrator").exists()
    empty = runner.invoke(cli, ["voice", "list", "--voices-dir", str(voices)])
    assert "no voices" in empty.output


def test_errors_are_one_line_messages(assets, tmp_path):
    runner = CliRunner()
    missing = runner.invoke(cli, ["voice", "show", "ghost", "--voices-dir", str(tmp_path)])
    assert missing.exit_code != 0 and "no voice named 'ghost'" in missing.output
    assert "Traceback" not in missing.output
    bad = runner.invoke(cli, ["voice", "add", "x", "--gpt", str(assets["sovits"]), "--sovits", str(assets["sovits"]),
                              "--ref", str(assets["ref"]), "--ref-text", "hi", "--hubert", str(assets["hubert"]),
                              "--voices-dir", str(tmp_path)])
    assert bad.exit_code != 0 and "SoVITS" in bad.output and "Traceback" not in bad.output


def test_make_random(asset_cache, assets, tmp_path):
    """make-random writes its files into the cache (here already filled by the session fixture) and imports."""
    from tests.voice.conftest import ASSET_SEED

    runner = CliRunner()
    args = ["voice", "make-random", "rnd", "--size", "tiny", "--version", "v2", "--seed", str(ASSET_SEED),
            "--cache-dir", str(asset_cache), "--voices-dir", str(tmp_path / "voices")]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "created: random tiny v2 voice 'rnd'" in result.output
    assert (tmp_path / "voices" / "rnd" / "prompt.npz").is_file()
    again = runner.invoke(cli, args)
    assert again.exit_code == 0 and "unchanged" in again.output


def test_help_texts():
    runner = CliRunner()
    for sub in ("add", "list", "show", "remove", "make-random", "export-onnx"):
        result = runner.invoke(cli, ["voice", sub, "--help"])
        assert result.exit_code == 0 and "--voices-dir" in result.output


def test_list_survives_a_broken_voice(imported, tmp_path):
    import shutil

    voices = tmp_path / "voices"
    shutil.copytree(imported.voice.folder, voices / "good")
    shutil.copytree(imported.voice.folder, voices / "bad")
    (voices / "bad" / "prompt.npz").write_bytes(b"not a zip")
    result = CliRunner().invoke(cli, ["voice", "list", "--voices-dir", str(voices)])
    assert result.exit_code == 0, result.output
    assert "BROKEN" in result.output and "good" in result.output


def test_export_onnx_unknown_voice_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(cli, ["voice", "export-onnx", "ghost", "--voices-dir", str(tmp_path)])
    assert result.exit_code != 0 and "no voice named 'ghost'" in result.output
