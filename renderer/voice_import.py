"""The once-per-voice computations behind :func:`renderer.voice.import_voice`.

* prompt semantic tokens: reference at 16 kHz + 0.6 s of zeros (upstream) -> HuBERT last hidden state
  [1, 768, T] -> SoVITS ``extract_latent`` -> int64 [T/2];
* reference phones + BERT features through :class:`renderer.text.TextFrontend` (a full stop is
  appended when the transcript does not end in punctuation, as upstream does);
* ``ge``: reference linear spectrogram(s) -> reference encoder (v2Pro/ProPlus: + ERes2NetV2 speaker
  embedding, PReLU) averaged over the main and auxiliary references -> float32 [1, gin, 1].
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from renderer.errors import VoiceError

if TYPE_CHECKING:
    from renderer.audio import ReferenceWaveforms
    from renderer.models.sovits import SoVITSModel

_SPLITS = set(",.;?!、，。？！;：…")
_BERT_DIM = 1024


def inputs_fingerprint(name: str, sources: dict[str, Any], ref_text: str, lang: str, defaults: dict[str, Any],
                       explicit_ids: np.ndarray | None, explicit_bert: np.ndarray | None) -> str:
    """SHA-256 over everything that determines the voice folder (content hashes, not paths)."""
    def strip(entry: Any) -> Any:
        if isinstance(entry, dict):
            return entry.get("sha256")
        if isinstance(entry, list):
            return [strip(e) for e in entry]
        return entry

    payload = {
        "schema": 1, "sources": {k: strip(v) for k, v in sorted(sources.items())}, "ref_text": ref_text,
        "lang": lang, "defaults": defaults,
        "ids": None if explicit_ids is None else explicit_ids.tolist(),
        "bert": None if explicit_bert is None else hashlib.sha256(
            np.ascontiguousarray(explicit_bert, dtype=np.float32).tobytes()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def prompt_text_for_model(ref_text: str, lang: str) -> str:
    """Upstream appends '.' (English) or '。' when the transcript does not end in punctuation."""
    text = ref_text.strip("\n").strip()
    if text and text[-1] not in _SPLITS:
        text += "." if lang == "en" else "。"
    return text


def reference_phones(ref_text: str, lang: str, bert_dir: Path | None, explicit_ids: np.ndarray | None,
                     explicit_bert: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """int64 [Lr] phone ids and float32 [1024, Lr] BERT features of the reference transcript."""
    if explicit_ids is not None:
        bert = np.zeros((_BERT_DIM, explicit_ids.size), np.float32) if explicit_bert is None \
            else np.asarray(explicit_bert, dtype=np.float32)
        if bert.shape != (_BERT_DIM, explicit_ids.size):
            raise VoiceError(f"ref_bert has shape {bert.shape}, expected ({_BERT_DIM}, {explicit_ids.size})")
        return explicit_ids.astype(np.int64), bert
    from renderer.text import TextFrontend

    frontend = TextFrontend(bert_dir=bert_dir)
    phonemes = frontend.phonemize(prompt_text_for_model(ref_text, lang), lang)
    bert = frontend.bert_features([phonemes])[0]
    return np.asarray(phonemes.phone_ids, dtype=np.int64), np.asarray(bert, dtype=np.float32)


def _require_sv(version: str, sv_path: Path | None) -> Path:
    if sv_path is None:
        raise VoiceError(f"SoVITS {version} voices need the speaker-verification checkpoint (--sv), "
                         "pretrained_eres2netv2w24s4ep4.ckpt from GPT-SoVITS")
    return sv_path


def compute_ge(model: SoVITSModel, waves: list[ReferenceWaveforms], sv_path: Path | None) -> np.ndarray:
    """The global conditioning ``ge`` float32 [1, gin, 1] of the reference clip(s), averaged.

    v2: reference encoder on each clip's linear spectrogram. v2Pro/v2ProPlus: each clip's ERes2NetV2
    embedding (``sv_path``, e.g. ``pretrained_eres2netv2w24s4ep4.ckpt``) joins it, as upstream does.
    """
    from renderer.models.spectrogram import linear_spectrogram

    specs = [linear_spectrogram(w.wav32k, normalize=False) for w in waves]
    sv_embs = None
    if model.cfg.is_pro:
        from renderer.models.eres2net import SpeakerEncoder

        speaker = SpeakerEncoder(_require_sv(model.cfg.version, sv_path))
        sv_embs = [speaker.embedding(w.sv16k) for w in waves]
    with torch.no_grad():
        return model.reference_ge(specs, sv_embs).float().numpy().astype(np.float32)


def compute_voice_arrays(gpt: Path, sovits: Path, ref: Path, aux: list[Path], ref_text: str, lang: str,
                         bert_dir: Path | None, hubert_dir: Path | None, sv_path: Path | None,
                         explicit_ids: np.ndarray | None, explicit_bert: np.ndarray | None
                         ) -> tuple[dict[str, np.ndarray], str, list[str]]:
    """Everything prompt.npz holds, the SoVITS version, and warnings about the reference clips."""
    from renderer.audio import check_reference_clip, reference_waveforms
    from renderer.models.gpt import load_gpt
    from renderer.models.hubert import HubertEncoder, prompt_waveform
    from renderer.models.sovits import load_sovits

    # The clips first: a wrong clip is the commonest mistake and the cheapest to find.
    main = reference_waveforms(ref)
    warnings = check_reference_clip(ref, main.hubert16k)
    waves = [main]
    for path in aux:
        waves.append(reference_waveforms(path))
        warnings += check_reference_clip(path, waves[-1].hubert16k, main=False)
    _, gpt_cfg, _ = load_gpt(gpt)  # validates the file now rather than at render time
    if gpt_cfg.phoneme_vocab_size != 732:
        raise VoiceError(f"{gpt}: GPT has {gpt_cfg.phoneme_vocab_size} phoneme rows; only v2 (732) is supported")
    if hubert_dir is None:
        raise VoiceError("importing a voice needs the chinese-hubert-base folder (--hubert) for the prompt tokens")
    model, cfg, _ = load_sovits(sovits)
    if cfg.is_pro:
        _require_sv(cfg.version, sv_path)  # before HuBERT and BERT run
    ssl = HubertEncoder(hubert_dir).features(prompt_waveform(main.hubert16k))
    prompt = model.extract_latent(ssl)[0, 0].numpy().astype(np.int64)
    ids, bert = reference_phones(ref_text, lang, bert_dir, explicit_ids, explicit_bert)
    ge = compute_ge(model, waves, sv_path)
    arrays = {"prompt_semantic": prompt, "ref_phone_ids": ids, "ref_bert": bert, "ge": ge}
    bert_source = "the ref_bert array given" if explicit_bert is not None else f"the BERT folder {bert_dir}"
    _check_finite_arrays(arrays, bert_source, sovits, sv_path)
    return arrays, cfg.version, warnings


def _check_finite_arrays(arrays: dict[str, np.ndarray], bert_source: str, sovits: Path,
                         sv_path: Path | None) -> None:
    """NaN/inf in what the helpers computed means a damaged helper model; say which one."""
    sources = {"ref_bert": bert_source,
               "ge": f"the SoVITS weights {sovits}" + (f" or the speaker-verification model {sv_path}"
                                                        if sv_path is not None else "")}
    for key, source in sources.items():
        if not np.all(np.isfinite(arrays[key])):
            raise VoiceError(f"the reference's {key} came out with NaN or infinite values: {source} is damaged "
                             "(copy it again from the GPT-SoVITS install)")
