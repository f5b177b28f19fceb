"""A voice's own speaking rate: the norm a take's tokens and speech seconds per phone are judged against.

The prior comes from the reference clip (its prompt semantic tokens per reference phone, in the voice's
``prompt.npz``); every finished, clean chunk then moves the norm toward what the voice really does. The
norm is a geometric mean (rates are ratios: 2x too slow and 2x too fast are equally far), with the prior
counted as ``prior_weight`` chunks. While few chunks are known the limits are widened by ``spread``
(shrinking as 1/(1 + n/prior_weight)), because a reference clip's pauses can make its rate differ from
the narration's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

__all__ = ["SECONDS_PER_TOKEN", "SPEECH_SHARE", "ReferencePrompt", "VoiceNorm"]

#: One semantic token is 1280 samples at 32 kHz (GPT-SoVITS v2 family) at speed 1.0.
SECONDS_PER_TOKEN = 1280 / 32000
#: Share of a reference clip that is speech rather than pause (3-10 s clips cut around one sentence):
#: turns the prior's token rate into a speech-seconds rate.
SPEECH_SHARE = 0.85


class ReferencePrompt(Protocol):
    """What the prior reads of a voice: the reference clip's semantic tokens and phones."""

    prompt_semantic: np.ndarray
    ref_phone_ids: np.ndarray


@dataclass(frozen=True)
class VoiceNorm:
    """Geometric-mean tokens per phone and speech seconds per phone, worth ``weight`` chunks.

    ``observations`` counts the chunks learned (the prior is not one); ``spread`` is the extra
    tolerance while they are few (see module docstring).
    """

    tokens_per_phone: float
    speech_s_per_phone: float
    weight: float
    observations: int = 0
    prior_weight: float = 8.0
    spread: float = 1.3

    def __post_init__(self) -> None:
        if not (self.tokens_per_phone > 0 and self.speech_s_per_phone > 0 and self.weight > 0):
            raise ValueError(f"a voice norm needs positive rates and weight, got {self}")

    @classmethod
    def from_reference(cls, prompt_tokens: int, ref_phones: int, *, speed: float = 1.0,
                       prior_weight: float = 8.0, spread: float = 1.3) -> VoiceNorm:
        """The prior: the reference clip's prompt tokens per reference phone (at ``speed`` 1.0 a token
        is :data:`SECONDS_PER_TOKEN` of audio, of which :data:`SPEECH_SHARE` is speech)."""
        if prompt_tokens <= 0 or ref_phones <= 0:
            raise ValueError("the reference clip needs tokens and phones for a prior")
        per_phone = prompt_tokens / ref_phones
        return cls(tokens_per_phone=per_phone, speech_s_per_phone=per_phone * SECONDS_PER_TOKEN * SPEECH_SHARE / speed,
                   weight=prior_weight, prior_weight=prior_weight, spread=spread)

    @classmethod
    def from_voice(cls, voice: ReferencePrompt, *, speed: float = 1.0) -> VoiceNorm:
        """Prior of a loaded voice (``renderer.voice.Voice`` or any object with its prompt arrays)."""
        return cls.from_reference(int(voice.prompt_semantic.size), int(voice.ref_phone_ids.size), speed=speed)

    def learned(self, rates: Iterable[tuple[float, float]]) -> VoiceNorm:
        """The norm after (tokens per phone, speech seconds per phone) of more finished chunks."""
        log_t = math.log(self.tokens_per_phone) * self.weight
        log_s = math.log(self.speech_s_per_phone) * self.weight
        weight, n = self.weight, self.observations
        for tokens_per_phone, speech_per_phone in rates:
            if tokens_per_phone <= 0 or speech_per_phone <= 0:
                continue
            log_t += math.log(tokens_per_phone)
            log_s += math.log(speech_per_phone)
            weight += 1.0
            n += 1
        return replace(self, tokens_per_phone=math.exp(log_t / weight), speech_s_per_phone=math.exp(log_s / weight),
                       weight=weight, observations=n)

    @property
    def tolerance(self) -> float:
        """Factor (>= 1) by which the rate limits are widened while few chunks are known."""
        return 1.0 + (self.spread - 1.0) / (1.0 + self.observations / self.prior_weight)
