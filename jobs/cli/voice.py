"""``render voice ...``: import, list, inspect and remove voices; make a random test voice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from renderer.errors import RendererError

if TYPE_CHECKING:
    from renderer.voice import Voice, VoiceStore

VOICES_DIR_HELP = "Folder of voices (default: $RENDER_VOICES_DIR or ~/.local/share/audiobook-renderer/voices)."


class _VoiceGroup(click.Group):
    """Turns library errors into one-line messages also when the group is used on its own."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RendererError as exc:
            raise click.ClickException(str(exc)) from None


def _store(voices_dir: str | None) -> VoiceStore:
    from renderer.voice import VoiceStore

    return VoiceStore(voices_dir)


def _voices_dir_option(func):
    return click.option("--voices-dir", type=click.Path(file_okay=False), default=None, help=VOICES_DIR_HELP)(func)


@click.group(cls=_VoiceGroup)
def voice() -> None:
    """Manage voices (a GPT-SoVITS model + reference clip, prepared once for rendering)."""


@voice.command("add")
@click.argument("name")
@click.option("--gpt", "gpt", required=True, type=click.Path(dir_okay=False), help="GPT weights (.ckpt).")
@click.option("--sovits", "sovits", required=True, type=click.Path(dir_okay=False),
              help="SoVITS weights (.pth): v2, v2Pro or v2ProPlus.")
@click.option("--ref", "ref_wav", required=True, type=click.Path(dir_okay=False),
              help="Reference clip of the speaker talking, 3-10 seconds (WAV, FLAC, OGG or MP3); "
                   "a silent clip is refused, a mostly silent or very quiet one gets a warning.")
@click.option("--ref-text", required=True, help="Exact transcript of the reference clip.")
@click.option("--lang", default="en", show_default=True, help="Language of the reference transcript (en, zh).")
@click.option("--hubert", "hubert_dir", type=click.Path(file_okay=False),
              help="chinese-hubert-base folder (needed to compute the prompt tokens).")
@click.option("--bert", "bert_dir", type=click.Path(file_okay=False),
              help="chinese-roberta-wwm-ext-large folder (needed for Chinese transcripts).")
@click.option("--sv", "sv_path", type=click.Path(dir_okay=False),
              help="Speaker-verification checkpoint (pretrained_eres2netv2w24s4ep4.ckpt), v2Pro/v2ProPlus only.")
@click.option("--aux-ref", "aux_refs", multiple=True, type=click.Path(dir_okay=False),
              help="Extra reference clip whose timbre is averaged in (repeatable).")
@click.option("--top-k", type=int, default=None, help="Default top-k for this voice (upstream: 15).")
@click.option("--top-p", type=float, default=None, help="Default top-p (1.0 = off).")
@click.option("--temperature", type=float, default=None, help="Default sampling temperature (1.0).")
@click.option("--repetition-penalty", type=float, default=None, help="Default repetition penalty (1.35).")
@click.option("--speed", type=float, default=None, help="Default speaking rate (1.0; >1 is faster).")
@click.option("--force", is_flag=True, help="Recompute even when the inputs are unchanged.")
@_voices_dir_option
def add(name: str, gpt: str, sovits: str, ref_wav: str, ref_text: str, lang: str, hubert_dir: str | None,
        bert_dir: str | None, sv_path: str | None, aux_refs: tuple[str, ...], top_k: int | None,
        top_p: float | None, temperature: float | None, repetition_penalty: float | None, speed: float | None,
        force: bool, voices_dir: str | None) -> None:
    """Import a voice NAME from GPT-SoVITS weights and a reference clip.

    Runs HuBERT, BERT and (v2Pro) the speaker model once; rendering never needs them again.
    Running it again with the same inputs does nothing.
    """
    from renderer.voice import import_voice

    given = {"top_k": top_k, "top_p": top_p, "temperature": temperature,
             "repetition_penalty": repetition_penalty, "speed": speed}
    defaults = {key: value for key, value in given.items() if value is not None}
    result = import_voice(name, gpt, sovits, ref_wav, ref_text, lang, bert_dir=bert_dir, hubert_dir=hubert_dir,
                          sv_path=sv_path, aux_refs=list(aux_refs), store=_store(voices_dir), force=force,
                          sampling_defaults=defaults)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    verb = "imported" if result.changed else "unchanged"
    click.echo(f"{verb}: voice '{result.voice.name}' ({result.voice.version}) in {result.voice.folder}")


@voice.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_voices_dir_option
def list_voices(as_json: bool, voices_dir: str | None) -> None:
    """List the installed voices."""
    store = _store(voices_dir)
    rows = []
    for name in store.names():
        try:
            rows.append(_row(store.get(name)))
        except RendererError as exc:  # one damaged folder must not hide the others
            rows.append({"name": name, "version": "?", "language": "?", "ref_text": "", "error": str(exc)})
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo(f"no voices in {store.root} (add one with: render voice add NAME --gpt ... --sovits ... --ref ...)")
        return
    for row in rows:
        text = f"BROKEN: {row['error']}" if "error" in row else row["ref_text"][:60]
        click.echo(f"{row['name']:<24} {row['version']:<10} {row['language']:<4} {text}")


def _row(v: Voice) -> dict[str, Any]:
    return {"name": v.name, "version": v.version, "language": v.language, "ref_text": v.ref_text,
            "folder": str(v.folder)}


@voice.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_voices_dir_option
def show(name: str, as_json: bool, voices_dir: str | None) -> None:
    """Show a voice's details: model version, reference, sampling defaults, source hashes."""
    summary = _store(voices_dir).get(name).summary()
    if as_json:
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    for key in ("name", "version", "language", "ref_text", "folder", "prompt_tokens", "ref_phones", "gin"):
        click.echo(f"{key:<14} {summary[key]}")
    click.echo("sampling       " + ", ".join(f"{k}={v}" for k, v in summary["sampling_defaults"].items()))
    for key, entry in summary["sources"].items():
        entries = entry if isinstance(entry, list) else [entry]
        for item in entries:
            click.echo(f"source {key:<7} {item['sha256'][:16]}  {item['path']}")


@voice.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_voices_dir_option
def remove(name: str, yes: bool, voices_dir: str | None) -> None:
    """Delete a voice folder (the original weight files are not touched)."""
    store = _store(voices_dir)
    store.get(name)  # raises a clear error for unknown names before asking
    if not yes:
        click.confirm(f"remove voice '{name}' from {store.root}?", abort=True)
    folder = store.remove(name)
    click.echo(f"removed {folder}")


@voice.command("make-random")
@click.argument("name")
@click.option("--size", type=click.Choice(["tiny", "full"]), default="tiny", show_default=True,
              help="tiny: fast test model; full: the real sizes of every file (GPT, SoVITS and, for "
                   "v2Pro/v2ProPlus, the speaker-verification model), for benchmarks.")
@click.option("--version", "version", type=click.Choice(["v2", "v2Pro", "v2ProPlus"]), default="v2",
              show_default=True, help="SoVITS model version.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random weights.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              help="Where the random weight files are kept (default ~/.cache/audiobook-renderer/random).")
@_voices_dir_option
def make_random(name: str, size: str, version: str, seed: int, cache_dir: str | None,
                voices_dir: str | None) -> None:
    """Create a voice NAME with random weights (upstream file formats) and a synthetic reference clip.

    Useful to try the pipeline, run tests and benchmarks without downloading a model; it speaks noise.
    """
    from renderer.voice_random import make_random_voice

    result = make_random_voice(name, size=size, version=version, seed=seed, store=_store(voices_dir),
                               cache_dir=Path(cache_dir) if cache_dir else None)
    verb = "created" if result.changed else "unchanged"
    click.echo(f"{verb}: random {size} {version} voice '{name}' in {result.voice.folder}")


@voice.command("export-onnx")
@click.argument("name")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output folder (default: <voice folder>/onnx, where the onnx backend looks).")
@click.option("--no-vocoder", is_flag=True, help="Export only the GPT graphs (SoVITS decode stays in torch).")
@_voices_dir_option
def export_onnx(name: str, out_dir: str | None, no_vocoder: bool, voices_dir: str | None) -> None:
    """Export a voice's GPT prefill/step (and SoVITS decode) graphs to ONNX for the onnx/tensorrt backends.

    Each graph is checked against torch before the sidecar export.json marks the export usable.
    """
    from renderer.export_onnx import export_voice_onnx

    v = _store(voices_dir).get(name)
    target = Path(out_dir) if out_dir else Path(v.folder) / "onnx"
    sidecar = export_voice_onnx(v, target, include_vocoder=not no_vocoder)
    click.echo(f"exported voice '{name}' to {sidecar.parent} ({sidecar.name})")


COMMANDS: list[click.Command] = [voice]
