"""Chunk text -> synthesis requests: phones, then BERT features.

:func:`prepare_requests` is the one way text becomes requests: the worker (for claimed chunks), its
background prefetch (for the next claim) and :func:`requests_from_text` (``render say``, benchmarks)
all call it, so the same text always gives the same request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from renderer.engine.api import SynthesisRequest
from renderer.errors import TextError

if TYPE_CHECKING:  # renderer.protocols imports this package: only for type checking here
    from renderer.protocols import Frontend
    from renderer.text.frontend import Phonemes


@dataclass(frozen=True)
class PreparedRequests:
    """requests: one per key the frontend could handle, in the order given.
    errors: key -> why its text cannot be spoken (a message for the chunk's failure record)."""

    requests: dict[str, SynthesisRequest] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def prepare_requests(frontend: Frontend, texts: Mapping[str, tuple[str, str]]) -> PreparedRequests:
    """``key -> (normalised text, language)`` to synthesis requests with phones and BERT features.

    A text the frontend refuses (:class:`TextError`, or no phones at all) is reported under its key and
    the others go on. BERT features are computed for all texts in one batch; if the batch fails, text by
    text, so that only the culprit fails.
    """
    phonemes: dict[str, Phonemes] = {}
    errors: dict[str, str] = {}
    for key, (text, language) in texts.items():
        try:
            phones = frontend.phonemize(text, language)
            if not list(phones.phone_ids):
                raise TextError("the text frontend produced no phones for this text")
        except TextError as exc:
            errors[key] = f"text error: {exc}"
            continue
        phonemes[key] = phones
    berts = _bert_features(frontend, phonemes, errors)
    requests = {
        key: SynthesisRequest(key=key, phone_ids=np.asarray(phones.phone_ids, dtype=np.int64), bert=berts[key],
                              language=texts[key][1])
        for key, phones in phonemes.items()
        if key in berts
    }
    return PreparedRequests(requests, errors)


def _bert_features(frontend: Frontend, phonemes: dict[str, Phonemes], errors: dict[str, str]) -> dict[str, np.ndarray]:
    keys = list(phonemes)
    if not keys:
        return {}
    try:
        return dict(zip(keys, frontend.bert_features([phonemes[k] for k in keys]), strict=True))
    except TextError:
        found: dict[str, np.ndarray] = {}
        for key in keys:
            try:
                found[key] = frontend.bert_features([phonemes[key]])[0]
            except TextError as exc:
                errors[key] = f"text error (BERT features): {exc}"
        return found


def requests_from_text(frontend: Frontend, key: str, text: str, language: str,
                       chunking: Any = None) -> list[SynthesisRequest]:
    """Split plain ``text`` into sentence-sized chunks and prepare a request for each (``render say``).

    Keys are ``{key}/{index}`` so results can be put back in reading order. Text the frontend cannot
    handle raises :class:`TextError`.
    """
    from renderer.text import Block, chunk_blocks

    blocks = [Block(kind="paragraph", text=part) for part in text.split("\n\n") if part.strip()]
    chunks = chunk_blocks(blocks, language, chunking) if chunking is not None else chunk_blocks(blocks, language)
    prepared = prepare_requests(frontend, {f"{key}/{i}": (c.normalized, c.language) for i, c in enumerate(chunks)})
    if prepared.errors:
        failed, reason = next(iter(prepared.errors.items()))
        raise TextError(f"chunk {failed}: {reason}")
    return list(prepared.requests.values())
