"""The English dictionaries the original GPT-SoVITS frontend reads words from.

- ``words()``: the original's lookup table (CMUdict 0.7b as it ships it, completed by its
  "cmudict-fast" list and its hot list, minus six entries it deletes), one pronunciation per
  word, from ``data/en_dict.tsv.gz`` (see ``data/make_en_dict.py`` for how it was made).
- ``names()``: the original's name list, read only for capitalised words the table lacks.
- ``g2p_en_dir()``: the installed ``g2p_en`` package folder, where the neural model for unknown
  words (``checkpoint20.npz``) and the homograph list (``homographs.en``) ship. The package is
  located without being imported: importing it tries to download NLTK data.

Phones outside the v2 symbol table (the dictionary has a few tags such as ``FOREIGN``) are
dropped here, as the original drops them after G2P.
"""

from __future__ import annotations

import functools
import gzip
import importlib.resources
import importlib.util
from pathlib import Path

from renderer.errors import TextError
from renderer.text.symbols import SYMBOL_TO_ID


def _read_table(name: str) -> dict[str, tuple[str, ...]]:
    raw = importlib.resources.files("renderer.text.data").joinpath(name).read_bytes()
    table: dict[str, tuple[str, ...]] = {}
    for line in gzip.decompress(raw).decode("utf-8").splitlines():
        word, _, phones = line.partition("\t")
        table[word] = tuple(p for p in phones.split() if p in SYMBOL_TO_ID)
    return table


@functools.lru_cache(maxsize=1)
def words() -> dict[str, tuple[str, ...]]:
    """Lower-case word (letters, apostrophes, hyphens) -> ARPAbet phones with stress."""
    return _read_table("en_dict.tsv.gz")


@functools.lru_cache(maxsize=1)
def names() -> dict[str, tuple[str, ...]]:
    """Lower-case name -> phones; the original consults it for Title-case words only."""
    return _read_table("en_names.tsv.gz")


@functools.lru_cache(maxsize=1)
def g2p_en_dir() -> Path:
    """Folder of the installed ``g2p_en`` package (found without importing it)."""
    spec = importlib.util.find_spec("g2p_en")
    if spec is None or not spec.submodule_search_locations:
        raise TextError("the g2p-en package is not installed: English needs its model for unknown words")
    return Path(next(iter(spec.submodule_search_locations)))
