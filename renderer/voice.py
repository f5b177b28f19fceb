"""Voices: a folder holding everything rendering needs, computed once at import.

Layout of ``<voices_dir>/<name>/``::

    voice.json   schema_version, name, version, language, ref_text, sampling defaults, source hashes
    gpt.ckpt     copy of the user's GPT weights
    sovits.pth   copy of the user's SoVITS weights
    prompt.npz   prompt_semantic int64 [Ly], ref_phone_ids int64 [Lr], ref_bert float32 [1024, Lr],
                 ge float32 [1, gin, 1]

:func:`import_voice` runs the expensive helpers (HuBERT, BERT, the v2Pro speaker model) exactly once;
re-importing identical inputs is a no-op (compared by SHA-256), changed inputs recompute the folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from renderer.errors import RendererError, VoiceError
from renderer.files import sha256_file

__all__ = [
    "SCHEMA_VERSION",
    "ImportResult",
    "Voice",
    "VoiceStore",
    "import_voice",
    "voices_dir",
    "validate_voice_name",
]

SCHEMA_VERSION = 1
VOICE_JSON = "voice.json"
PROMPT_NPZ = "prompt.npz"
GPT_FILE = "gpt.ckpt"
SOVITS_FILE = "sovits.pth"
_NAME_RE = re.compile(r"^[^\W][\w.\- ]{0,63}$")
#: Upstream appends a full stop to a prompt text that does not end in punctuation.
_SENTENCE_END = set(",.;?!、，。？！;：…")


def voices_dir(override: str | Path | None = None) -> Path:
    """Where voices live: override > $RENDER_VOICES_DIR > $XDG_DATA_HOME/audiobook-renderer/voices."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get("RENDER_VOICES_DIR")
    if env:
        return Path(env).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home).expanduser() / "audiobook-renderer" / "voices"


def validate_voice_name(name: str) -> str:
    """A voice name is a folder name: letters, digits, ``_ - .`` and spaces, no path separators."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or name.strip() != name or ".." in name:
        raise VoiceError(
            f"invalid voice name {name!r}: use 1-64 letters, digits, '_', '-', '.' or spaces, "
            "starting with a letter or digit")
    return name


def _source_entry(path: Path) -> dict[str, Any]:
    return {"path": str(path.resolve()), "sha256": sha256_file(path), "bytes": path.stat().st_size}


def _folder_entry(folder: Path) -> dict[str, Any]:
    """Hash of every file in a helper folder (BERT / HuBERT), by relative name."""
    digest = hashlib.sha256()
    for item in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(item.relative_to(folder)).encode())
        digest.update(sha256_file(item).encode())
    return {"path": str(folder.resolve()), "sha256": digest.hexdigest()}


@dataclass
class Voice:
    """A loaded voice folder (see module docstring). ``ge`` may be None only for legacy folders."""

    name: str
    folder: Path
    version: str
    language: str
    ref_text: str
    gpt_path: Path
    sovits_path: Path
    prompt_semantic: np.ndarray
    ref_phone_ids: np.ndarray
    ref_bert: np.ndarray
    ge: np.ndarray | None
    sampling_defaults: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""

    @classmethod
    def load(cls, folder: str | Path) -> Voice:
        folder = Path(folder)
        meta = _read_meta(folder)
        try:
            with np.load(folder / PROMPT_NPZ) as npz:
                arrays = {key: np.array(npz[key]) for key in npz.files}
        except (OSError, ValueError) as exc:
            raise VoiceError(f"{folder}: cannot read {PROMPT_NPZ} ({exc}); import the voice again") from None
        missing = [k for k in ("prompt_semantic", "ref_phone_ids", "ref_bert") if k not in arrays]
        if missing:
            raise VoiceError(f"{folder / PROMPT_NPZ}: missing arrays {missing}; import the voice again")
        for name in (GPT_FILE, SOVITS_FILE):
            if not (folder / name).is_file():
                raise VoiceError(f"{folder}: {name} is missing; import the voice again")
        damaged = [key for key, array in arrays.items() if array.dtype.kind == "f" and not np.isfinite(array).all()]
        if damaged:
            raise VoiceError(f"{folder / PROMPT_NPZ}: {', '.join(damaged)} hold NaN or infinite values; "
                             "import the voice again")
        return cls(
            # The folder name is the voice's name: renaming the folder renames the voice.
            name=folder.name, folder=folder,
            version=str(meta["version"]), language=str(meta["language"]),
            ref_text=str(meta.get("ref_text", "")), gpt_path=folder / GPT_FILE, sovits_path=folder / SOVITS_FILE,
            prompt_semantic=arrays["prompt_semantic"].astype(np.int64),
            ref_phone_ids=arrays["ref_phone_ids"].astype(np.int64),
            ref_bert=arrays["ref_bert"].astype(np.float32),
            ge=arrays["ge"].astype(np.float32) if "ge" in arrays else None,
            sampling_defaults=dict(meta.get("sampling_defaults", {})),
            sources=dict(meta.get("sources", {})), fingerprint=str(meta.get("fingerprint", "")),
        )

    def sampling_options(self, **overrides: Any) -> Any:
        """``SamplingOptions`` from the voice's defaults, with explicit overrides applied."""
        from renderer.protocols import RenderOptions

        return RenderOptions.resolve(self.sampling_defaults, overrides).sampling

    def summary(self) -> dict[str, Any]:
        """Plain facts for ``voice show`` / ``voice list``."""
        return {
            "name": self.name, "folder": str(self.folder), "version": self.version, "language": self.language,
            "ref_text": self.ref_text, "prompt_tokens": int(self.prompt_semantic.size),
            "ref_phones": int(self.ref_phone_ids.size), "gin": None if self.ge is None else int(self.ge.shape[1]),
            "sampling_defaults": self.sampling_defaults, "fingerprint": self.fingerprint,
            "sources": self.sources,
        }


def _read_meta(folder: Path) -> dict[str, Any]:
    path = folder / VOICE_JSON
    if not path.is_file():
        raise VoiceError(f"{folder}: not a voice folder (no {VOICE_JSON})")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise VoiceError(f"{path}: unreadable ({exc}); import the voice again") from None
    version = meta.get("schema_version") if isinstance(meta, dict) else None
    if version != SCHEMA_VERSION:
        raise VoiceError(f"{path}: schema_version {version!r} is not supported (expected {SCHEMA_VERSION})")
    return meta


@dataclass(frozen=True)
class ImportResult:
    """The imported voice, whether anything was (re)computed, and warnings about its inputs."""

    voice: Voice
    changed: bool
    reason: str
    #: e.g. a reference clip that is mostly silence: imported, but worth telling the user
    warnings: tuple[str, ...] = ()


class VoiceStore:
    """The folder of voices (``voices_dir()`` by default)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = voices_dir(root)

    def path(self, name: str) -> Path:
        return self.root / validate_voice_name(name)

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / VOICE_JSON).is_file())

    def list(self) -> list[Voice]:
        return [self.get(name) for name in self.names()]

    def get(self, name: str) -> Voice:
        folder = self.path(name)
        if not (folder / VOICE_JSON).is_file():
            known = ", ".join(self.names()) or "none"
            raise VoiceError(f"no voice named {name!r} in {self.root} (known voices: {known})")
        return Voice.load(folder)

    def remove(self, name: str) -> Path:
        folder = self.path(name)
        if not (folder / VOICE_JSON).is_file():
            raise VoiceError(f"no voice named {name!r} in {self.root}")
        shutil.rmtree(folder)
        return folder

    def add(self, name: str, gpt: str | Path, sovits: str | Path, ref_wav: str | Path, ref_text: str,
            lang: str, **kwargs: Any) -> ImportResult:
        return import_voice(name, gpt, sovits, ref_wav, ref_text, lang, store=self, **kwargs)


# --------------------------------------------------------------------------------------------- import

def _existing(path: str | Path | None, what: str, folder: bool = False) -> Path | None:
    if path is None:
        return None
    p = Path(path).expanduser()
    if folder and not p.is_dir():
        raise VoiceError(f"{what} folder not found: {p}")
    if not folder and not p.is_file():
        raise VoiceError(f"{what} file not found: {p}")
    return p


def import_voice(
    name: str,
    gpt: str | Path,
    sovits: str | Path,
    ref_wav: str | Path,
    ref_text: str,
    lang: str,
    bert_dir: str | Path | None = None,
    hubert_dir: str | Path | None = None,
    sv_path: str | Path | None = None,
    aux_refs: list[str | Path] | tuple[str | Path, ...] = (),
    store: VoiceStore | None = None,
    *,
    ref_phone_ids: np.ndarray | list[int] | None = None,
    ref_bert: np.ndarray | None = None,
    sampling_defaults: dict[str, Any] | None = None,
    force: bool = False,
) -> ImportResult:
    """Import (or refresh) a voice; see the module docstring for what is computed.

    ``ref_phone_ids`` (+ optional ``ref_bert`` [1024, Lr]) bypass the text frontend. ``aux_refs`` are
    extra reference clips whose timbre is averaged into ``ge`` together with ``ref_wav`` (as upstream's
    TTS pipeline does). v2Pro/v2ProPlus need ``sv_path`` (the ERes2NetV2 checkpoint).
    """
    from renderer.engine.options import SamplingOptions
    from renderer.voice_import import compute_voice_arrays, inputs_fingerprint

    store = store or VoiceStore()
    folder = store.path(name)
    inputs = _resolve_inputs(gpt, sovits, ref_wav, aux_refs, bert_dir, hubert_dir, sv_path)
    if not ref_text.strip():
        raise VoiceError("the reference transcript (ref_text) is empty")
    defaults = SamplingOptions.from_dict(dict(sampling_defaults or {})).to_dict()
    explicit = None if ref_phone_ids is None else np.asarray(ref_phone_ids, dtype=np.int64).reshape(-1)
    fingerprint = inputs_fingerprint(name, inputs.sources(), ref_text, lang, defaults, explicit, ref_bert)

    if not force and (folder / VOICE_JSON).is_file():
        try:
            current: Voice | None = Voice.load(folder)
        except VoiceError:
            current = None
        if current is not None and current.fingerprint == fingerprint:
            return ImportResult(current, changed=False, reason="inputs unchanged")

    try:
        arrays, version, warnings = compute_voice_arrays(
            inputs.gpt, inputs.sovits, inputs.ref, inputs.aux, ref_text, lang, inputs.bert, inputs.hubert,
            inputs.sv, explicit, ref_bert)
    except VoiceError:
        raise
    except RendererError as exc:
        raise VoiceError(f"cannot import voice {name!r}: {exc}") from exc
    meta = {
        "schema_version": SCHEMA_VERSION, "name": name, "version": version, "language": lang,
        "ref_text": ref_text, "sampling_defaults": defaults, "sources": inputs.sources(), "fingerprint": fingerprint,
        "prompt_tokens": int(arrays["prompt_semantic"].size), "ref_phones": int(arrays["ref_phone_ids"].size),
    }
    _write_folder(folder, meta, arrays, inputs.gpt, inputs.sovits)
    return ImportResult(Voice.load(folder), changed=True, reason="imported", warnings=tuple(warnings))


@dataclass
class _Inputs:
    """Checked input paths of an import; ``sources()`` hashes them once (cached)."""

    gpt: Path
    sovits: Path
    ref: Path
    aux: list[Path]
    bert: Path | None
    hubert: Path | None
    sv: Path | None
    _sources: dict[str, Any] | None = None

    def sources(self) -> dict[str, Any]:
        if self._sources is None:
            sources: dict[str, Any] = {
                "gpt": _source_entry(self.gpt), "sovits": _source_entry(self.sovits),
                "ref_wav": _source_entry(self.ref), "aux_refs": [_source_entry(p) for p in self.aux]}
            for key, folder_path in (("bert", self.bert), ("hubert", self.hubert)):
                if folder_path is not None:
                    sources[key] = _folder_entry(folder_path)
            if self.sv is not None:
                sources["sv"] = _source_entry(self.sv)
            self._sources = sources
        return self._sources


def _resolve_inputs(gpt: str | Path, sovits: str | Path, ref_wav: str | Path, aux_refs: Any,
                    bert_dir: str | Path | None, hubert_dir: str | Path | None,
                    sv_path: str | Path | None) -> _Inputs:
    gpt_p = _existing(gpt, "GPT weights")
    sovits_p = _existing(sovits, "SoVITS weights")
    ref_p = _existing(ref_wav, "reference audio")
    assert gpt_p is not None and sovits_p is not None and ref_p is not None
    aux_ps = [p for p in (_existing(a, "auxiliary reference audio") for a in aux_refs) if p is not None]
    return _Inputs(gpt=gpt_p, sovits=sovits_p, ref=ref_p, aux=aux_ps, bert=_existing(bert_dir, "BERT", folder=True),
                   hubert=_existing(hubert_dir, "HuBERT", folder=True),
                   sv=_existing(sv_path, "speaker-verification checkpoint"))


def _write_folder(folder: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray], gpt: Path,
                  sovits: Path) -> None:
    """Build the voice in a sibling temp folder, then swap it in (a crash never leaves half a voice)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        shutil.copyfile(gpt, tmp / GPT_FILE)
        shutil.copyfile(sovits, tmp / SOVITS_FILE)
        np.savez(tmp / PROMPT_NPZ, prompt_semantic=arrays["prompt_semantic"], ref_phone_ids=arrays["ref_phone_ids"],
                 ref_bert=arrays["ref_bert"], ge=arrays["ge"])
        (tmp / VOICE_JSON).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        old = None
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(folder, old)
        os.replace(tmp, folder)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
