"""The seam between the application (``jobs``) and the engine: the only renderer types jobs relies on.

- :class:`Frontend`: text -> :class:`~renderer.text.Phonemes` -> BERT features
  (``renderer.text.TextFrontend`` satisfies it);
- :class:`Engine`: :class:`~renderer.engine.SynthesisRequest` s -> :class:`~renderer.engine.SynthesisResult` s
  (``renderer.engine.Engine`` satisfies it);
- :class:`RenderOptions`: everything a caller chooses that changes a chunk's audio (sampling and
  precision), frozen and validated here; its :meth:`RenderOptions.to_dict` is what render keys hash.

The protocols are structural: the renderer's classes do not inherit from them, and tests pass fakes
that satisfy them (``tests/fakes``). Importing this module imports torch (through the sampling options);
``jobs`` modules that must start fast import it lazily or for type checking only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Protocol

from renderer.backends import PRECISIONS
from renderer.engine.options import SamplingOptions
from renderer.errors import OptionsError

if TYPE_CHECKING:
    import numpy as np

    from renderer.engine.api import SynthesisRequest, SynthesisResult
    from renderer.text.frontend import Phonemes

#: Precision of a new render when nobody chose one.
DEFAULT_PRECISION = "auto"
#: Precision of stored options written before precision was recorded (those chunks were rendered in fp32).
LEGACY_PRECISION = "fp32"


class Frontend(Protocol):
    """Text of one chunk -> phones, then BERT features for a batch of phonemised chunks.

    Both raise :class:`renderer.errors.TextError` for text they cannot handle.
    """

    def phonemize(self, text: str, language: str) -> Phonemes: ...

    def bert_features(self, items: list[Phonemes]) -> list[np.ndarray]: ...


class Engine(Protocol):
    """Batched synthesis for one voice: results come out in completion order, each with its request's key.

    ``batch_size``: rows decoded at once (the worker claims a multiple of it). Out of memory raises
    ``MemoryError`` (or torch's ``OutOfMemoryError``); a chunk the engine cannot render raises
    :class:`renderer.errors.RendererError`.
    """

    @property
    def batch_size(self) -> int: ...

    def synthesize(self, requests: Iterable[SynthesisRequest], options: SamplingOptions) -> Iterator[SynthesisResult]:
        ...


@dataclass(frozen=True)
class RenderOptions:
    """What a chunk is rendered with, apart from its text and voice: part of every render key.

    sampling: how semantic tokens are drawn and how SoVITS renders them (:class:`SamplingOptions`).
    precision: engine arithmetic, one of ``renderer.backends.PRECISIONS``; 'auto' = bf16 (CPU) / fp16 (CUDA)
        only where supported and checked against fp32 (reduced precision changes the audio).
    """

    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    precision: str = DEFAULT_PRECISION

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise OptionsError(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")

    @classmethod
    def resolve(cls, voice_defaults: Mapping[str, Any] | None, overrides: Mapping[str, Any]) -> RenderOptions:
        """The one merge: built-in defaults < the voice's stored defaults < the caller's ``overrides``.

        ``overrides`` is a flat mapping (sampling fields and ``precision``); a key the caller did not
        choose must be absent, not None. Unknown override keys are refused; the voice's defaults are
        read for sampling fields only (a voice stores no precision).
        """
        known = _sampling_fields()
        merged = {k: v for k, v in (voice_defaults or {}).items() if k in known}
        chosen = dict(overrides)
        precision = chosen.pop("precision", None) or DEFAULT_PRECISION
        merged.update(chosen)
        return cls(SamplingOptions.from_dict(merged), precision)

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON-able mapping (every sampling field plus ``precision``), as stored with a book and hashed
        into its render keys: keep its shape, or every rendered chunk of every book renders again."""
        return {**self.sampling.to_dict(), "precision": self.precision}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RenderOptions:
        """Inverse of :meth:`to_dict`; missing sampling fields take their defaults, unknown keys are refused."""
        values = dict(data)
        precision = values.pop("precision", None) or LEGACY_PRECISION
        return cls(SamplingOptions.from_dict(values), precision)


def _sampling_fields() -> set[str]:
    return {f.name for f in fields(SamplingOptions)}
