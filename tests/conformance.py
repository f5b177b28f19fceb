"""A conformance set (checkpoints + ``vectors.npz`` + ``manifest.json``) and the facts the tests read from it.

Every set-specific fact comes from the set's own manifest: model sizes, the sampling arguments and early-stop
limits of each recorded call, whether it stopped by EOS, which items a batch held, which SoVITS cases and
intermediates were recorded. The same tests therefore run unchanged on any set produced the same way.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from renderer.engine.options import SamplingOptions
from tests.paths import conformance_dir

#: The three model sections of a manifest and the key of their checkpoint file.
MODELS = ("gpt", "sovits_v2", "sovits_v2pp")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class SovitsCase:
    """One recorded ``SynthesizerTrn.decode`` call: ``prefix`` of its arrays (``<prefix>_audio``, ...)."""

    prefix: str
    model: str  # manifest section: sovits_v2 | sovits_v2pp
    refs: tuple[str, ...]  # spectrogram arrays of the references
    svs: tuple[str, ...]  # speaker-verification embeddings (Pro models), else empty
    noise_scale: float
    speed: float

    @property
    def which(self) -> str:
        """``v2`` or ``v2pp`` (the fixture suffix)."""
        return self.model.removeprefix("sovits_")


@dataclass(frozen=True)
class ConformanceSet:
    path: Path
    manifest: dict[str, Any]

    @classmethod
    def load(cls, path: Path) -> ConformanceSet:
        return cls(path, json.loads((path / "manifest.json").read_text(encoding="utf-8")))

    @staticmethod
    def present(path: Path) -> bool:
        return (path / "manifest.json").is_file() and (path / "vectors.npz").is_file()

    # ------------------------------------------------------------------ files and arrays
    def file(self, model: str) -> Path:
        """The checkpoint of manifest section ``model`` (gpt | sovits_v2 | sovits_v2pp)."""
        return self.path / str(self.manifest[model]["checkpoint"])

    @functools.cached_property
    def arrays(self) -> dict[str, np.ndarray]:
        with np.load(self.path / "vectors.npz") as data:
            return {k: data[k] for k in data.files}

    def has(self, name: str) -> bool:
        return name in self.manifest.get("arrays", {}) or name in self.arrays

    # ------------------------------------------------------------------ GPT facts
    def call(self, name: str) -> dict[str, Any]:
        return dict(self.manifest["calls"][name])

    def args(self, name: str) -> dict[str, Any]:
        return dict(self.manifest["calls"][name]["args"])

    def options(self, name: str) -> SamplingOptions:
        """The sampling of a recorded GPT call, with its ``early_stop_num`` as ``early_stop_tokens``."""
        a = self.args(name)
        early = int(a.get("early_stop_num", -1))
        return SamplingOptions(top_k=int(a["top_k"]), top_p=float(a.get("top_p", 1.0)),
                               temperature=float(a.get("temperature", 1.0)),
                               repetition_penalty=float(a.get("repetition_penalty", 1.0)),
                               early_stop_tokens=None if early == -1 else early)

    def early_stop(self, name: str) -> int:
        return int(self.args(name).get("early_stop_num", -1))

    def stopped_by_eos(self, name: str) -> bool:
        return bool(self.call(name).get("stopped_by_eos", False))

    @property
    def prompt_len(self) -> int:
        return int(self.arrays["gpt_prompt_semantic"].shape[0])

    @property
    def eos(self) -> int:
        return int(self.manifest["gpt"]["config_model"].get("EOS", 1024))

    def batch_items(self) -> list[str]:
        """Suffixes of ``gpt_batch_target_phones_<i>`` in order (the items of the ``gpt_batch`` call)."""
        found = [k for k in self.manifest["arrays"] if re.fullmatch(r"gpt_batch_target_phones_\d+", k)]
        return sorted((k.rsplit("_", 1)[1] for k in found), key=int)

    def eos_batch_targets(self) -> list[str]:
        """The target-phone arrays of the ``gpt_batch_eos`` call's rows, in order (read from its args)."""
        text = str(self.args("gpt_batch_eos")["x"])
        return [n for n in _NAME.findall(text) if n.startswith("gpt_") and "_phones" in n]

    def target(self, phones_name: str) -> tuple[np.ndarray, np.ndarray]:
        """Target phones and their BERT features (``..._phones[_i]`` -> ``..._bert[_i]``)."""
        return self.arrays[phones_name], self.arrays[phones_name.replace("_phones", "_bert")]

    # ------------------------------------------------------------------ SoVITS facts
    def sovits_cases(self) -> list[SovitsCase]:
        """Every recorded ``SynthesizerTrn.decode`` call."""
        cases = []
        for name, call in self.manifest["calls"].items():
            if not str(call.get("function", "")).endswith("SynthesizerTrn.decode"):
                continue
            a = call["args"]
            refs = tuple(_NAME.findall(str(a.get("refer", ""))))
            svs = tuple(_NAME.findall(str(a["sv_emb"]))) if a.get("sv_emb") else ()
            cases.append(SovitsCase(name, str(call["model"]), refs, svs, float(a["noise_scale"]), float(a["speed"])))
        return cases


def load_if_present() -> ConformanceSet | None:
    """The set at :func:`conformance_dir`, or None (for parametrising at collection time; the
    ``conformance`` fixture fails or skips with the reason)."""
    path = conformance_dir()
    return ConformanceSet.load(path) if ConformanceSet.present(path) else None


def sovits_case_params() -> list[SovitsCase]:
    found = load_if_present()
    return found.sovits_cases() if found is not None else []
