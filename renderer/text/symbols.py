"""The GPT-SoVITS v2 phone symbol table (732 symbols) and phone -> id conversion.

The ids are positions in this list and are baked into every checkpoint's text embedding
(``ar_text_embedding`` has 732 rows for v2, ``enc_p.text_embedding`` 322 rows for v1), so the
order is part of the model format. How the order arises:

1. the v1 table: the sorted set of pad, Mandarin initials, toned finals, Japanese phones,
   punctuation + pause marks and ARPAbet phones (322 symbols, ids 0..321);
2. ``[`` and ``]`` (Japanese rising/falling pitch marks, ids 322, 323);
3. the Korean jamo plus the two Korean pause marks, sorted (ids 324..352);
4. the Cantonese (jyutping) phones, each prefixed with ``Y``, sorted (ids 353..731).
"""

from __future__ import annotations

from collections.abc import Iterable

PAD = "_"
UNK = "UNK"
PUNCTUATION: tuple[str, ...] = ("!", "?", "…", ",", ".", "-")
PAUSES: tuple[str, ...] = ("SP", "SP2", "SP3", UNK)

ZH_INITIALS = "AA EE OO b c ch d f g h j k l m n p q r s sh t w x y z zh".split()
ZH_FINALS = (
    "E En a ai an ang ao e ei en eng er i i0 ia ian iang iao ie in ing iong ir iu o ong ou u ua uai uan uang "
    "ui un uo v van ve vn"
).split()
JA_PHONES = "I N U a b by ch cl d dy e f g gy h hy i j k ky m my n ny o p py r ry s sh t ts u v w y z".split()
ARPABET_VOWELS = "AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split()
ARPABET_CONSONANTS = "B CH D DH F G HH JH K L M N NG P R S SH T TH V W Y Z ZH".split()
# Stress-less forms that the original table also lists.
ARPABET_EXTRA = ("ER", "IH")
KO_SYMBOLS = "ㄱㄴㄷㄹㅁㅂㅅㅇㅈㅊㅋㅌㅍㅎㄲㄸㅃㅆㅉㅏㅓㅗㅜㅡㅣㅐㅔ空停"

# Cantonese jyutping pieces, grouped by which tone variants exist (0 = the toneless form).
_YUE_TONELESS_ONLY = "b c d f gw h j kw l ng s w z"
_YUE_TONELESS_AND_TONES = "a aa ai ak au e g k m n o oi ok on ou p t uk"
_YUE_TONES_ONLY = (
    "aai aak aam aan aang aap aat aau am an ang ap at ei ek eng eoi eon eot i ik im in ing ip it iu oe oek "
    "oeng ong ot u ui un ung ut yu yun yut"
)


def _arpabet() -> set[str]:
    phones = set(ARPABET_CONSONANTS) | set(ARPABET_EXTRA)
    phones |= {v + str(stress) for v in ARPABET_VOWELS for stress in (0, 1, 2)}
    return phones


def _yue() -> set[str]:
    out = {"Y" + b for b in _YUE_TONELESS_ONLY.split()}
    for base in _YUE_TONELESS_AND_TONES.split():
        out |= {"Y" + base} | {f"Y{base}{t}" for t in range(1, 7)}
    for base in _YUE_TONES_ONLY.split():
        out |= {f"Y{base}{t}" for t in range(1, 7)}
    return out


def _build() -> list[str]:
    finals = [f + str(tone) for tone in range(1, 6) for f in ZH_FINALS]
    v1 = {PAD, *ZH_INITIALS, *finals, *JA_PHONES, *PUNCTUATION, *PAUSES, *_arpabet()}
    table = sorted(v1)
    table += ["[", "]"]
    table += sorted(KO_SYMBOLS)
    table += sorted(_yue())
    return table


SYMBOLS: tuple[str, ...] = tuple(_build())
SYMBOLS_V1_COUNT = 322
SYMBOL_TO_ID: dict[str, int] = {s: i for i, s in enumerate(SYMBOLS)}
UNK_ID = SYMBOL_TO_ID[UNK]
ARPABET: frozenset[str] = frozenset(_arpabet())

assert len(SYMBOLS) == 732 and len(SYMBOL_TO_ID) == 732, "v2 symbol table must have 732 unique symbols"


def phones_to_ids(phones: Iterable[str]) -> tuple[list[int], int]:
    """Map phones to v2 ids; unknown phones become ``UNK``. Returns (ids, number of unknown phones)."""
    ids: list[int] = []
    unknown = 0
    for ph in phones:
        idx = SYMBOL_TO_ID.get(ph)
        if idx is None:
            unknown += 1
            idx = UNK_ID
        ids.append(idx)
    return ids, unknown


def ids_to_phones(ids: Iterable[int]) -> list[str]:
    """Inverse of :func:`phones_to_ids` (for logs and tests)."""
    return [SYMBOLS[int(i)] for i in ids]
