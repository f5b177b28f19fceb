"""Text frontend: language split, normalisation, chunking, G2P to the v2 symbol table, BERT features.

Offline only: every resource comes from an installed package or a local folder the caller names.
"""

from renderer.text.chunking import Block, Boundary, ChunkingOptions, TextChunk, chunk_blocks, split_sentences
from renderer.text.frontend import Phonemes, Segment, TextFrontend
from renderer.text.langsplit import Span, detect_language, split_languages
from renderer.text.normalize import Lexicon, model_text, normalize
from renderer.text.symbols import SYMBOLS, UNK_ID, ids_to_phones, phones_to_ids

__all__ = [
    "SYMBOLS",
    "UNK_ID",
    "Block",
    "Boundary",
    "ChunkingOptions",
    "Lexicon",
    "Phonemes",
    "Segment",
    "Span",
    "TextChunk",
    "TextFrontend",
    "chunk_blocks",
    "detect_language",
    "ids_to_phones",
    "model_text",
    "normalize",
    "phones_to_ids",
    "split_languages",
    "split_sentences",
]
