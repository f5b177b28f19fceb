"""The voice ``render bench`` measures: a full-size random voice of a model version, or an installed voice.

The random bench voice is generated once per version into the bench cache and imported through the real
:func:`renderer.voice.import_voice` path, like a user's voice: random full-size GPT and SoVITS weights (and,
for v2Pro/v2ProPlus, a full-size speaker-verification checkpoint, so ``ge`` joins the SV embedding of the
reference exactly as ``render voice add`` computes it), the stand-in HuBERT/BERT helpers, a synthetic
reference clip. Its prompt has the benchmark's fixed shape: :data:`REF_PHONES` random reference phones and
a :data:`REFERENCE_SECONDS` clip (≈ 150 prompt semantic tokens at 25 Hz, upstream's 0.3 s tail included).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from renderer.voice import Voice, VoiceStore

#: SoVITS versions ``render bench --version`` generates a random full-size voice for.
BENCH_VERSIONS = ("v2", "v2Pro", "v2ProPlus")
#: Reference phones of the bench voice (a realistic 3-10 s reference transcript).
REF_PHONES = 60
#: Length of the bench voice's synthetic reference clip (seconds): 6 s + 0.3 s tail -> 157 prompt tokens.
REFERENCE_SECONDS = 6.0
#: Seed of the random weights (the same files on every machine).
SEED = 0


def bench_cache_dir(override: str | Path | None = None, version: str = "v2") -> Path:
    """Where the generated full-size random voice of ``version`` lives (``--cache-dir``, else
    ``$RENDER_BENCH_CACHE/<version>``, else ``~/.cache/audiobook-renderer/bench-<version>-full``)."""
    if override is not None:
        return Path(override)
    if os.environ.get("RENDER_BENCH_CACHE"):
        return Path(os.environ["RENDER_BENCH_CACHE"]) / version
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "audiobook-renderer" / f"bench-{version}-full"


def bench_voice_name(version: str) -> str:
    return f"bench-{version}"


def bench_voice(cache: Path, version: str = "v2", log: Any = print, size: str = "full") -> Voice:
    """The random bench voice of ``version``, installed in ``cache/voices`` (generated on first use)."""
    from renderer.voice import import_voice
    from renderer.voice_random import RANDOM_REF_TEXT, synthetic_reference, write_random_assets

    if version not in BENCH_VERSIONS:
        raise ValueError(f"unknown bench version {version!r}; choose one of {', '.join(BENCH_VERSIONS)}")
    assets = cache / f"{size}-{version}-seed{SEED}"
    if not (assets / "gpt.ckpt").is_file() or not (assets / "sovits.pth").is_file():
        log(f"generating a {size}-size random {version} voice into {assets} (first run only)")
    paths = write_random_assets(assets, size, version, SEED)
    reference = assets / f"reference-{REFERENCE_SECONDS:g}s.wav"
    if not reference.is_file():
        synthetic_reference(reference, seconds=REFERENCE_SECONDS, seed=SEED)
    ref_ids = np.random.default_rng(SEED).integers(1, 732, REF_PHONES)
    result = import_voice(bench_voice_name(version), paths["gpt"], paths["sovits"], reference, RANDOM_REF_TEXT,
                          "en", bert_dir=paths["bert"], hubert_dir=paths["hubert"], sv_path=paths.get("sv"),
                          store=bench_voice_store(cache), ref_phone_ids=ref_ids)
    return result.voice


def bench_voice_store(cache: Path) -> VoiceStore:
    """The voice store holding the bench voice (the book stage renders through it, as ``render BOOK`` does)."""
    return VoiceStore(cache / "voices")


def installed_voice(name: str, voices_dir: Path | None) -> Voice:
    """A voice from the voice store (``render bench --voice NAME``): VoiceError when it is not there."""
    return VoiceStore(voices_dir).get(name)


def voice_shape(voice: Any) -> tuple[int, int]:
    """(reference phones, prompt semantic tokens) of ``voice``: every GPT row starts with both."""
    return int(np.asarray(voice.ref_phone_ids).size), int(np.asarray(voice.prompt_semantic).size)
