"""``render say "text" --voice NAME -o out.wav``: preview a voice on a sentence or paragraph."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from jobs.cli.params import BATCH_SIZE, PRECISION, current_services
from jobs.cli.render_cmd import chosen
from jobs.engines import EngineSettings, voice_defaults

#: Silence between chunks of one preview (seconds).
PAUSE_SECONDS = 0.35


def join_chunks(audios: list[np.ndarray], sample_rate: int, pause_seconds: float = PAUSE_SECONDS) -> np.ndarray:
    """Concatenate chunk audio in reading order with short silences between chunks."""
    gap = np.zeros(int(pause_seconds * sample_rate), dtype=np.float32)
    parts: list[np.ndarray] = []
    for i, audio in enumerate(audios):
        if i:
            parts.append(gap)
        parts.append(np.asarray(audio, dtype=np.float32))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


@click.command("say")
@click.argument("text")
@click.option("--voice", "voice_name", required=True, help="Name of a voice added with `render voice add`.")
@click.option("-o", "--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=Path("say.wav"),
              show_default=True, help="Output WAV file (32 kHz mono).")
@click.option("--language", default=None, help="Text language (default: the voice's language).")
@click.option("--backend", type=click.Choice(["auto", "torch", "onnx", "tensorrt"]), default="auto", show_default=True,
              help="Engine backend (see `render doctor`).")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option("--precision", type=PRECISION, default="auto", show_default=True,
              help="auto = bf16/fp16 only where supported and checked against fp32.")
@click.option("--threads", type=int, default=None, help="CPU threads (default: torch's choice).")
@click.option("--batch-size", type=BATCH_SIZE, default="auto", show_default=True,
              help="Chunks decoded together ('auto': as many as the KV-cache memory budget allows).")
@click.option("--seed", type=int, default=None, help="Base sampling seed (default: the voice's).")
@click.option("--top-k", type=int, default=None, help="Sampling top-k (default: the voice's).")
@click.option("--top-p", type=float, default=None, help="Sampling top-p (default: the voice's).")
@click.option("--temperature", type=float, default=None, help="Sampling temperature (default: the voice's).")
@click.option("--speed", type=float, default=None, help="Speaking rate factor (default: the voice's).")
@click.option("--bert-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="chinese-roberta-wwm-ext-large folder (needed for Chinese text).")
@click.option("--voices-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Voice folder root (default: $RENDER_VOICES_DIR or ~/.local/share/...).")
def say(text: str, voice_name: str, out_path: Path, language: str | None, backend: str, device: str,
        precision: str, threads: int | None, batch_size: int, seed: int | None, top_k: int | None,
        top_p: float | None, temperature: float | None, speed: float | None, bert_dir: Path | None,
        voices_dir: Path | None) -> None:
    """Speak TEXT with a stored voice and write a WAV file.

    Sampling options not given here are the voice's (as with `render BOOK`), so a preview sounds like the book.
    """
    import soundfile as sf

    from renderer.engine.text_requests import requests_from_text
    from renderer.protocols import RenderOptions

    engines = current_services().engines
    voice = engines.load_voice(voice_name, voices_dir)
    options = RenderOptions.resolve(voice_defaults(voice), chosen(
        seed=seed, top_k=top_k, top_p=top_p, temperature=temperature, speed=speed, precision=precision))
    lang = str(language or getattr(voice.voice, "language", None) or "en")
    requests = requests_from_text(engines.frontend(voice, device, bert_dir), "say", text, lang)
    engine = engines.engine(voice, options.precision, batch_size or None, EngineSettings(backend, device, threads))
    results = {r.key: r for r in engine.synthesize(requests, options.sampling)}
    ordered = [results[r.key] for r in requests]
    audio = join_chunks([r.audio for r in ordered], ordered[0].sample_rate)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(out_path), audio, ordered[0].sample_rate, subtype="PCM_16")
    seconds = len(audio) / ordered[0].sample_rate
    backend_name = getattr(getattr(engine, "backend", None), "name", backend)
    click.echo(f"wrote {out_path} ({seconds:.2f} s, {len(requests)} chunk(s), backend {backend_name})")


COMMANDS: list[click.Command] = [say]
