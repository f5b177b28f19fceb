"""User lexicon: how a book (or a voice) wants certain words said, applied before G2P.

An entry maps a word to either a respelling ("Saoirse" -> "Seersha", "重庆" -> "崇庆") or phones
in the v2 symbol table, written ``/S IH1 R SH AH0/`` or ``{S IH1 R SH AH0}``. Applying the
lexicon rewrites the text: respellings replace the word, phones become a ``{...}`` group that
normalisation keeps and the G2P passes through. So the lexicon's effect is visible in the
normalised text, which feeds the render key: changing an entry re-renders exactly the chunks
whose text contains the word.

Latin-script words match whole words, ignoring case; other scripts match as substrings.
Longer words are replaced first ("New York" before "York").

File format (``lexicon.tsv``, UTF-8): ``word<TAB>replacement`` per line; ``#`` starts a comment.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from renderer.errors import TextError
from renderer.text.symbols import SYMBOL_TO_ID


def parse_phones(value: str) -> list[str] | None:
    """``/A B/`` or ``{A B}`` -> ["A", "B"]; None for a respelling."""
    value = value.strip()
    if len(value) >= 2 and value[0] + value[-1] in ("//", "{}"):
        return value[1:-1].split()
    return None


@dataclass(frozen=True)
class Lexicon:
    """``word -> respelling`` or ``word -> "/PH ON ES/"`` (validated on creation)."""

    entries: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for word, value in self.entries.items():
            if not word.strip() or "{" in word or "}" in word:
                raise TextError(f"lexicon: {word!r} is not a word")
            phones = parse_phones(value)
            if phones is not None:
                bad = [p for p in phones if p not in SYMBOL_TO_ID]
                if not phones or bad:
                    raise TextError(f"lexicon entry {word!r}: unknown phone symbols {bad or value!r}")
            elif not value.strip():
                raise TextError(f"lexicon entry {word!r}: empty replacement")

    @classmethod
    def from_tsv(cls, path: str | Path) -> Lexicon:
        """Read ``word<TAB>replacement`` lines; errors name the file and line."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise TextError(f"{path}: cannot read the lexicon ({e})") from e
        entries: dict[str, str] = {}
        for number, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].rstrip() if not line.lstrip().startswith("{") else line.rstrip()
            if not line.strip():
                continue
            word, tab, value = line.partition("\t")
            if not tab or not word.strip() or not value.strip():
                raise TextError(f"{path}:{number}: expected 'word<TAB>respelling or /PHONES/', got {line!r}")
            entries[word.strip()] = value.strip()
        try:
            return cls(entries)
        except TextError as e:
            raise TextError(f"{path}: {e}") from None

    def to_tsv(self) -> str:
        return "".join(f"{w}\t{v}\n" for w, v in sorted(self.entries.items()))

    @property
    def digest(self) -> str:
        """Short hash of the entries (shown by ``render text`` and the plan)."""
        return hashlib.sha256(self.to_tsv().encode("utf-8")).hexdigest()[:12]

    @property
    def phones(self) -> dict[str, list[str]]:
        """Lower-case word -> phones, for the entries given as phones."""
        out = {}
        for word, value in self.entries.items():
            ph = parse_phones(value)
            if ph is not None:
                out[word.lower()] = ph
        return out

    def _replacement(self, value: str) -> str:
        phones = parse_phones(value)
        return "{" + " ".join(phones) + "}" if phones is not None else value

    def apply(self, text: str) -> str:
        """``text`` with every entry's word replaced (phone groups already in the text stay as they are)."""
        if not self.entries:
            return text
        parts = re.split(r"(\{[^{}]*\})", text)
        for word in sorted(self.entries, key=len, reverse=True):
            repl = self._replacement(self.entries[word])
            for i in range(0, len(parts), 2):
                if word.isascii():
                    pattern = rf"(?<![A-Za-z0-9'-]){re.escape(word)}(?![A-Za-z0-9'-])"
                    parts[i] = re.sub(pattern, lambda _m, r=repl: r, parts[i], flags=re.IGNORECASE)
                else:
                    parts[i] = parts[i].replace(word, repl)
            parts = re.split(r"(\{[^{}]*\})", "".join(parts))
        return "".join(parts)

    def matches(self, text: str) -> bool:
        """True when applying the lexicon would change ``text``."""
        return bool(self.entries) and self.apply(text) != text
