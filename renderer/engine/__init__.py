"""Batched GPT-SoVITS synthesis: ``open_engine(voice, ...).synthesize(requests, options)``
(:func:`renderer.backends.open_engine` builds the backend and the :class:`Engine` on it)."""

from renderer.engine.api import SAMPLE_RATE, Engine, SynthesisRequest, SynthesisResult, VoiceParts
from renderer.engine.options import SamplingOptions, row_seed
from renderer.engine.text_requests import requests_from_text

__all__ = ["SAMPLE_RATE", "Engine", "SamplingOptions", "SynthesisRequest", "SynthesisResult", "VoiceParts",
           "requests_from_text", "row_seed"]
