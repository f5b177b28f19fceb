"""``render say "text" --voice NAME -o out.wav``: preview a voice on a sentence or paragraph."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from jobs.cli.params import BATCH_SIZE

#: Silence between chunks of one preview (seconds).
PAUSE_SECONDS = 0.35


def load_voice(name: str, voices_dir: Path | None):
    """A stored voice by name (renderer.voice), with a clear message when voices are unavailable."""
    try:
        from renderer.voice import VoiceStore
        from renderer.voice import voices_dir as default_voices_dir
    except ImportError as exc:  # pragma: no cover - voice store not installed yet
        raise click.ClickException(f"voice storage is not available in this build ({exc})") from None
    return VoiceStore(default_voices_dir(voices_dir)).get(name)


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
@click.option("--backend", type=click.Choice(["auto", "torch", "onnx", "tensorrt"]), default="auto", show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto", show_default=True,
              help="auto = bf16/fp16 only where supported and checked against fp32.")
@click.option("--threads", type=int, default=None, help="CPU threads (default: torch's choice).")
@click.option("--batch-size", type=BATCH_SIZE, default="auto", show_default=True,
              help="Chunks decoded together ('auto': as many as the KV-cache memory budget allows).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--top-k", type=int, default=None)
@click.option("--top-p", type=float, default=None)
@click.option("--temperature", type=float, default=None)
@click.option("--speed", type=float, default=None)
@click.option("--bert-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="chinese-roberta-wwm-ext-large folder (needed for Chinese text).")
@click.option("--voices-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
def say(text: str, voice_name: str, out_path: Path, language: str | None, backend: str, device: str,
        precision: str, threads: int | None, batch_size: int, seed: int, top_k: int | None, top_p: float | None,
        temperature: float | None, speed: float | None, bert_dir: Path | None, voices_dir: Path | None) -> None:
    """Speak TEXT with a stored voice and write a WAV file."""
    import soundfile as sf

    from renderer.backends import open_engine
    from renderer.engine import SamplingOptions, requests_from_text
    from renderer.text import TextFrontend
    from renderer.tuning import EngineTuning

    voice = load_voice(voice_name, voices_dir)
    settings = dict(getattr(voice, "sampling_defaults", {}) or {})
    settings.update({k: v for k, v in {"seed": seed, "top_k": top_k, "top_p": top_p, "temperature": temperature,
                                       "speed": speed}.items() if v is not None})
    known = set(SamplingOptions.__dataclass_fields__)
    options = SamplingOptions.from_dict({k: v for k, v in settings.items() if k in known})
    lang = str(language or getattr(voice, "language", None) or "en")
    requests = requests_from_text(TextFrontend(bert_dir=bert_dir), "say", text, lang)
    tuning = EngineTuning.resolve({"batch_size": batch_size or None, "threads": threads})
    engine = open_engine(voice, backend=backend, device=device, precision=precision, tuning=tuning)
    results = {r.key: r for r in engine.synthesize(requests, options)}
    ordered = [results[r.key] for r in requests]
    audio = join_chunks([r.audio for r in ordered], ordered[0].sample_rate)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(out_path), audio, ordered[0].sample_rate, subtype="PCM_16")
    seconds = len(audio) / ordered[0].sample_rate
    click.echo(f"wrote {out_path} ({seconds:.2f} s, {len(requests)} chunk(s), backend {engine.backend.name})")


COMMANDS: list[click.Command] = [say]
