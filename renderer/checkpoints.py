"""Safe loading of real GPT-SoVITS weight files.

Accepted files, byte for byte as GPT-SoVITS writes them:

* GPT ``.ckpt``: a ``torch.save`` ZIP holding ``{"weight": OrderedDict, "config": dict, "info": str}``;
  tensor names carry the ``model.`` prefix; weights are float16.
* SoVITS ``.pth``: the same ZIP format, but the first two bytes may be a version tag that replaces
  ``PK`` (``00`` v1, ``01`` v2, ``02`` v3, ``03`` v3-LoRA, ``04`` v4-LoRA, ``05`` v2Pro, ``06`` v2ProPlus).
  The config is a pickled ``utils.HParams`` object; ``enc_q.*`` tensors are absent.

Pickled code is never executed: we use ``torch.load(weights_only=True)``, whose unpickler only
rebuilds tensors, containers and primitives, and we allow exactly one extra class, a stand-in for
``utils.HParams`` that only stores attributes. Any other global is refused with
:class:`UnsafeCheckpointError`.

Damaged files are refused before they can render noise: every archive entry's CRC-32 is checked
before unpickling (torch's reader skips them) and every floating tensor must be finite
(:mod:`renderer.checkpoint_integrity`).
"""

from __future__ import annotations

import io
import pickle
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from renderer.checkpoint_integrity import check_finite_tensors, verify_archive_checksums
from renderer.errors import CheckpointError, UnsafeCheckpointError

SUPPORTED_SOVITS_VERSIONS = ("v2", "v2Pro", "v2ProPlus")

#: Version tags written in place of ``PK`` by upstream's saver.
SOVITS_TAGS: dict[bytes, str] = {
    b"00": "v1",
    b"01": "v2",
    b"02": "v3",
    b"03": "v3-LoRA",
    b"04": "v4-LoRA",
    b"05": "v2Pro",
    b"06": "v2ProPlus",
}

#: Rows of ``enc_p.text_embedding.weight`` in a v1 model (the v1 symbol table).
V1_SYMBOL_ROWS = 322


class HParams:
    """Stand-in for upstream's ``utils.HParams``: holds the pickled attribute dict, nothing else."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


# The weights-only unpickler matches globals by "module.qualname".
HParams.__module__ = "utils"
HParams.__qualname__ = "HParams"


def hparams_to_dict(value: Any) -> Any:
    """Recursively turn ``HParams`` objects into plain dicts."""
    if isinstance(value, HParams):
        return {key: hparams_to_dict(item) for key, item in vars(value).items()}
    if isinstance(value, dict):
        return {key: hparams_to_dict(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(hparams_to_dict(item) for item in value)
    return value


@dataclass(frozen=True)
class GPTCheckpoint:
    """Contents of a GPT ``.ckpt``: weights without the ``model.`` prefix, in float32."""

    path: Path
    config: dict[str, Any]
    weights: dict[str, torch.Tensor]
    info: str = ""

    @property
    def model_config(self) -> dict[str, Any]:
        return dict(self.config["model"])

    @property
    def max_sec(self) -> float:
        return float(self.config.get("data", {}).get("max_sec", 54))


@dataclass(frozen=True)
class SoVITSCheckpoint:
    """Contents of a SoVITS ``.pth``: detected version, plain-dict config, float32 weights."""

    path: Path
    version: str
    tag: str
    config: dict[str, Any]
    weights: dict[str, torch.Tensor]
    info: str = ""
    notes: list[str] = field(default_factory=list)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(path, "file not found") from None
    except IsADirectoryError:
        raise CheckpointError(path, "is a folder, not a weight file") from None
    except OSError as exc:
        raise CheckpointError(path, f"cannot be read: {exc.strerror or exc}") from None


def _unpickle(path: Path, data: bytes) -> Any:
    """Load a ``torch.save`` archive from bytes without running pickled code."""
    if len(data) < 4:
        raise CheckpointError(path, f"is only {len(data)} bytes long", "the file is empty or truncated")
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise CheckpointError(
            path,
            "is not a PyTorch checkpoint archive (no ZIP directory found)",
            "the file is truncated or not a GPT-SoVITS weight file; copy or download it again",
        )
    verify_archive_checksums(path, data)
    try:
        with torch.serialization.safe_globals([HParams]):
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        found = re.search(r"GLOBAL ([\w.]+)", text)
        if found:
            name = found.group(1)
            raise UnsafeCheckpointError(
                path,
                f"the file asks to run or build '{name}', which a weight file never needs; refused",
                "only tensors, containers and utils.HParams are allowed; do not use files from untrusted sources",
            ) from None
        lines = [line for line in text.splitlines() if line.strip()]
        raise UnsafeCheckpointError(path, f"refused by the safe unpickler: {lines[-1] if lines else text}") from None
    except (RuntimeError, zipfile.BadZipFile, EOFError, KeyError, ValueError) as exc:
        raise CheckpointError(
            path, f"is damaged or truncated ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})",
            "copy or download the file again",
        ) from None


def _float32_weights(path: Path, raw: Any) -> dict[str, torch.Tensor]:
    if not isinstance(raw, Mapping) or not raw:
        raise CheckpointError(path, "has no 'weight' table of tensors")
    weights: dict[str, torch.Tensor] = {}
    for name, tensor in raw.items():
        if not isinstance(tensor, torch.Tensor):
            raise CheckpointError(path, f"entry '{name}' of 'weight' is a {type(tensor).__name__}, not a tensor")
        weights[str(name)] = tensor.float() if tensor.is_floating_point() else tensor
    check_finite_tensors(path, weights)
    return weights


def _top_level_dict(path: Path, obj: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping) or "weight" not in obj:
        found = sorted(obj)[:8] if isinstance(obj, Mapping) else type(obj).__name__
        raise CheckpointError(
            path,
            f"is not a GPT-SoVITS {what} file (found {found}, expected a dict with 'weight' and 'config')",
            "training checkpoints from logs/ are not inference weights; use the exported weights files",
        )
    return obj


def load_gpt_checkpoint(path: str | Path) -> GPTCheckpoint:
    """Load a GPT ``.ckpt`` (text-to-semantic weights).

    Raises :class:`CheckpointError` when the file is not a GPT checkpoint, naming what was found.
    """
    path = Path(path)
    data = _read_bytes(path)
    if data[:2] != b"PK" and data[:2] in SOVITS_TAGS:
        raise CheckpointError(
            path, f"is a SoVITS weight file (version tag {data[:2].decode()}), not GPT weights",
            "pass it with --sovits; the GPT file usually ends in .ckpt",
        )
    obj = _top_level_dict(path, _unpickle(path, data), "GPT")
    weights = _float32_weights(path, obj["weight"])
    if not any(name.startswith("model.") for name in weights):
        if any(name.startswith(("enc_p.", "dec.", "flow.")) for name in weights):
            raise CheckpointError(path, "is a SoVITS weight file, not GPT weights", "pass it with --sovits")
        raise CheckpointError(path, "has no 'model.' tensors; it is not a GPT-SoVITS GPT checkpoint")
    if any(".lora_" in name or "lora_A" in name for name in weights):
        raise CheckpointError(path, "holds LoRA weights, which are not supported", "merge the LoRA first")
    config = obj.get("config")
    if not isinstance(config, Mapping) or "model" not in config:
        raise CheckpointError(path, "has no config['model'] section describing the GPT")
    stripped = {name[len("model."):]: tensor for name, tensor in weights.items() if name.startswith("model.")}
    for required in ("ar_text_embedding.word_embeddings.weight", "ar_audio_embedding.word_embeddings.weight",
                     "ar_predict_layer.weight", "bert_proj.weight"):
        if required not in stripped:
            raise CheckpointError(path, f"is missing tensor 'model.{required}'",
                                  "the file is damaged or of another model")
    return GPTCheckpoint(path=path, config=dict(config), weights=stripped, info=str(obj.get("info", "")))


def _detect_sovits_version(path: Path, tag: bytes, config: Mapping[str, Any],
                           weights: Mapping[str, torch.Tensor]) -> str:
    if tag != b"PK":
        version = SOVITS_TAGS.get(tag)
        if version is None:
            raise CheckpointError(path, f"starts with unknown bytes {tag!r}", "not a GPT-SoVITS weight file")
    elif any(name.startswith(("cfm.", "model.")) for name in weights):
        version = "v3/v4" if any(name.startswith("cfm.") for name in weights) else "GPT"
    elif "sv_emb.weight" in weights:
        stored = str(config.get("model", {}).get("version", ""))
        version = stored if stored in ("v2Pro", "v2ProPlus") else "v2Pro"
    else:
        embedding = weights.get("enc_p.text_embedding.weight")
        if embedding is None:
            raise CheckpointError(path, "has no 'enc_p.text_embedding.weight'; not a SoVITS synthesizer")
        version = "v1" if embedding.shape[0] == V1_SYMBOL_ROWS else "v2"
    if version == "GPT":
        raise CheckpointError(path, "is a GPT checkpoint, not SoVITS weights", "pass it with --gpt")
    if version not in SUPPORTED_SOVITS_VERSIONS:
        raise CheckpointError(
            path, f"is a SoVITS {version} file, which is not supported",
            f"supported versions: {', '.join(SUPPORTED_SOVITS_VERSIONS)}",
        )
    return version


def load_sovits_checkpoint(path: str | Path) -> SoVITSCheckpoint:
    """Load a SoVITS ``.pth`` (v2, v2Pro or v2ProPlus), handling the 2-byte version tag."""
    path = Path(path)
    data = _read_bytes(path)
    tag = data[:2]
    if tag != b"PK" and tag in SOVITS_TAGS:
        data = b"PK" + data[2:]
    obj = _top_level_dict(path, _unpickle(path, data), "SoVITS")
    weights = _float32_weights(path, obj["weight"])
    config = hparams_to_dict(obj.get("config"))
    if not isinstance(config, dict):
        config = {}
    version = _detect_sovits_version(path, tag, config, weights)
    if "model" not in config:
        raise CheckpointError(path, "has no config.model section describing the SoVITS model")
    notes = []
    if any(name.startswith("enc_q.") for name in weights):
        weights = {name: t for name, t in weights.items() if not name.startswith("enc_q.")}
        notes.append("dropped training-only enc_q.* tensors")
    return SoVITSCheckpoint(
        path=path, version=version, tag=tag.decode("latin-1"), config=config,
        weights=weights, info=str(obj.get("info", "")), notes=notes,
    )


def read_raw_checkpoint(path: str | Path) -> tuple[bytes, Any]:
    """The 2-byte tag and the safely unpickled top-level object, tensors in their stored dtype."""
    path = Path(path)
    data = _read_bytes(path)
    tag = data[:2]
    if tag != b"PK" and tag in SOVITS_TAGS:
        data = b"PK" + data[2:]
    return tag, _unpickle(path, data)
