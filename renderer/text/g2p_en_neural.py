"""Pronunciations of unknown English words from the neural G2P model the original frontend uses.

The ``g2p-en`` package ships the trained weights (``checkpoint20.npz``): a one-layer GRU encoder
over the word's letters and a one-layer GRU decoder that emits ARPAbet phones greedily. Only the
weights are taken from the package (its code tries to download NLTK data on import); inference
is written here in numpy from the shapes of those weights:

- letters: ``<pad> <unk> </s> a..z`` (29); the encoder reads the letters, then ``</s>``;
- phones: ``<pad> <unk> <s> </s>`` + 70 ARPAbet symbols in sorted order (74), decoding starts
  from ``<s>`` and stops at ``</s>`` or after 20 phones;
- a GRU cell with gates in the order reset, update, new (``w_ih`` [3H, E], ``w_hh`` [3H, H]; E = H = 256 in
  the released checkpoint).

The input projections of every letter and phone are computed once, so a step costs one
[H] x [H, 3H] product.
"""

from __future__ import annotations

import functools
import string

import numpy as np

from renderer.errors import TextError
from renderer.text.en_dict import g2p_en_dir

_VOWELS = "AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split()
_CONSONANTS = "B CH D DH F G HH JH K L M N NG P R S SH T TH V W Y Z ZH".split()
LETTERS = ("<pad>", "<unk>", "</s>", *string.ascii_lowercase)
PHONES = ("<pad>", "<unk>", "<s>", "</s>", *sorted([v + s for v in _VOWELS for s in "012"] + _CONSONANTS + ["UW"]))
_UNK, _END_LETTER = 1, 2
_START, _END = 2, 3
MAX_PHONES = 20


def _expected_shapes(emb: int, hidden: int) -> dict[str, tuple[int, ...]]:
    gates = 3 * hidden
    shapes: dict[str, tuple[int, ...]] = {"fc_w": (len(PHONES), hidden), "fc_b": (len(PHONES),)}
    for side, symbols in (("enc", len(LETTERS)), ("dec", len(PHONES))):
        shapes |= {f"{side}_emb": (symbols, emb), f"{side}_w_ih": (gates, emb), f"{side}_w_hh": (gates, hidden)}
        shapes |= {f"{side}_b_ih": (gates,), f"{side}_b_hh": (gates,)}
    return shapes


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))  # type: ignore[no-any-return]


class NeuralG2P:
    """Callable: lower-case word -> tuple of phones (may contain ``<unk>``-derived "UNK")."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        if "enc_emb" not in weights or "enc_w_hh" not in weights:
            raise TextError("English G2P weights: enc_emb / enc_w_hh missing")
        expected = _expected_shapes(weights["enc_emb"].shape[1], weights["enc_w_hh"].shape[1])
        for name, shape in expected.items():
            if name not in weights or tuple(weights[name].shape) != shape:
                got = tuple(weights[name].shape) if name in weights else "missing"
                raise TextError(f"English G2P weights: {name} should be {shape}, got {got}")
        w = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
        # Input side of every GRU step depends only on the symbol: precompute [symbols, 3H].
        self.enc_in = w["enc_emb"] @ w["enc_w_ih"].T + w["enc_b_ih"]
        self.dec_in = w["dec_emb"] @ w["dec_w_ih"].T + w["dec_b_ih"]
        self.enc_hh, self.enc_bh = w["enc_w_hh"].T.copy(), w["enc_b_hh"]
        self.dec_hh, self.dec_bh = w["dec_w_hh"].T.copy(), w["dec_b_hh"]
        self.fc_w, self.fc_b = w["fc_w"].T.copy(), w["fc_b"]
        self.letter_ids = {ch: i for i, ch in enumerate(LETTERS)}

    @staticmethod
    def _step(x_proj: np.ndarray, h: np.ndarray, w_hh: np.ndarray, b_hh: np.ndarray) -> np.ndarray:
        """One GRU step: x_proj [3H] (input projection + bias), h [H] -> new h [H]."""
        h_proj = h @ w_hh + b_hh
        size = h.shape[-1]
        reset = _sigmoid(x_proj[:size] + h_proj[:size])
        update = _sigmoid(x_proj[size : 2 * size] + h_proj[size : 2 * size])
        new = np.tanh(x_proj[2 * size :] + reset * h_proj[2 * size :])
        return (1.0 - update) * new + update * h  # type: ignore[no-any-return]

    def __call__(self, word: str) -> tuple[str, ...]:
        ids = [self.letter_ids.get(ch, _UNK) for ch in word] + [_END_LETTER]
        h = np.zeros(self.enc_hh.shape[0], np.float32)
        for i in ids:
            h = self._step(self.enc_in[i], h, self.enc_hh, self.enc_bh)
        out: list[str] = []
        prev = _START
        for _ in range(MAX_PHONES):
            h = self._step(self.dec_in[prev], h, self.dec_hh, self.dec_bh)
            prev = int(np.argmax(h @ self.fc_w + self.fc_b))
            if prev == _END:
                break
            out.append(PHONES[prev])
        return tuple(out)


@functools.lru_cache(maxsize=1)
def model() -> NeuralG2P:
    """The model with the weights of the installed ``g2p-en`` package (loaded once)."""
    path = g2p_en_dir() / "checkpoint20.npz"
    if not path.is_file():
        raise TextError(f"{path}: missing; reinstall the g2p-en package")
    with np.load(path) as npz:
        return NeuralG2P({name: npz[name] for name in npz.files})


@functools.lru_cache(maxsize=50_000)
def predict(word: str) -> tuple[str, ...]:
    """Phones the original frontend gets for an unknown word (before its phone filtering)."""
    return model()(word)
