"""Rebuild ``en_dict.tsv.gz`` and ``en_names.tsv.gz`` from a GPT-SoVITS ``text`` folder (maintenance tool).

The original frontend looks English words up in ``engdict_cache.pickle`` (CMUdict 0.7b from
``cmudict.rep`` plus ``cmudict-fast.rep`` for words 0.7b lacks, one pronunciation per word), then
overrides it with ``engdict-hot.rep`` and deletes six entries it reads wrongly; capitalised
names missing there come from ``namedict_cache.pickle``. This script writes those tables as
sorted ``word<TAB>phones`` lines. The pickles are read with an unpickler that refuses every
class, so nothing in them is executed.

    python -m renderer.text.data.make_en_dict /path/to/GPT_SoVITS/text
"""

from __future__ import annotations

import gzip
import pickle
import re
import sys
from pathlib import Path

# The original's hot list (engdict-hot.rep) and the entries it deletes at start-up.
HOT = {"chatgpt": "CH AE1 T JH IY1 P IY1 T IY1"}
DELETED = ("ae", "ai", "ar", "ios", "hud", "os")
# Only keys a tokenised word can ever match: a letter, then letters, apostrophes or hyphens.
REACHABLE = re.compile(r"[a-z][a-z'\-]*")


class _DataOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # type: ignore[no-untyped-def]
        raise pickle.UnpicklingError(f"refusing {module}.{name}: the dictionary pickles hold only dicts and lists")


def _load(path: Path) -> dict[str, list[list[str]]]:
    with path.open("rb") as f:
        return _DataOnly(f).load()  # type: ignore[no-any-return]


def _write(path: Path, table: dict[str, str]) -> None:
    lines = "".join(f"{w}\t{p}\n" for w, p in sorted(table.items()))
    path.write_bytes(gzip.compress(lines.encode("utf-8"), compresslevel=9, mtime=0))


def main(text_dir: str) -> None:
    src = Path(text_dir)
    words = {w: " ".join(v[0]) for w, v in _load(src / "engdict_cache.pickle").items() if REACHABLE.fullmatch(w)}
    words.update(HOT)
    for w in DELETED:
        words.pop(w, None)
    names = {w: " ".join(v[0]) for w, v in _load(src / "namedict_cache.pickle").items() if REACHABLE.fullmatch(w)}
    out = Path(__file__).parent
    _write(out / "en_dict.tsv.gz", words)
    _write(out / "en_names.tsv.gz", names)
    print(f"{len(words)} words, {len(names)} names")


if __name__ == "__main__":
    main(sys.argv[1])
