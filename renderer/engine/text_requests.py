"""Text -> synthesis requests (for callers that have plain text, e.g. ``render say``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from renderer.engine.api import SynthesisRequest


def requests_from_text(frontend: Any, key: str, text: str, language: str,
                       chunking: Any = None) -> list[SynthesisRequest]:
    """Split ``text`` into chunks (sentence-sized), phonemise them and attach BERT features.

    Keys are ``{key}/{index}`` so results can be put back in reading order.
    """
    from renderer.text import Block, chunk_blocks

    blocks = [Block(kind="paragraph", text=part) for part in text.split("\n\n") if part.strip()]
    chunks = chunk_blocks(blocks, language, chunking) if chunking is not None else chunk_blocks(blocks, language)
    phonemes = [frontend.phonemize(c.normalized, c.language) for c in chunks]
    berts = frontend.bert_features(phonemes)
    return [SynthesisRequest(key=f"{key}/{i}", phone_ids=np.asarray(p.phone_ids, dtype=np.int64), bert=b,
                             language=p.language)
            for i, (p, b) in enumerate(zip(phonemes, berts, strict=True))]
