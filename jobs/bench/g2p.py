"""How well the neural G2P for unknown English words reads, measured against the dictionary.

    python -m jobs.bench.g2p [--seen 2000]

Two word sets, both scored against the phones of the original's dictionary (``en_dict``):

- held-out: the words of that dictionary which CMUdict 0.7b lacks (``renderer/text/data/g2p_heldout.txt``,
  newer entries such as webinar or obamacare): g2p-en's model never saw them in training, so this
  is the figure for a name or word the dictionary does not know;
- seen: a fixed random sample of dictionary words (alphabetic, 4+ letters), mostly in the model's
  training data: how close it gets where it had the answer.

Word accuracy is the share of words whose phones (stress included) all match; phone error rate
is the edit distance over the reference phones. The model runs in numpy from the weights in the
installed g2p-en wheel, as the frontend runs it.
"""

from __future__ import annotations

import argparse
import importlib.resources
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from renderer.text.en_dict import words
from renderer.text.g2p_en_neural import model


@dataclass(frozen=True)
class G2pScore:
    words: int
    word_accuracy: float
    phone_error_rate: float


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def score(predict: Callable[[str], Sequence[str]], reference: dict[str, tuple[str, ...]]) -> G2pScore:
    right = errors = total = 0
    for word, want in reference.items():
        got = tuple(p for p in predict(word) if not p.startswith("<"))  # no <pad>/<unk> in a fair comparison
        right += got == want
        errors += edit_distance(got, want)
        total += len(want)
    return G2pScore(len(reference), right / len(reference), errors / total)


def heldout_words() -> dict[str, tuple[str, ...]]:
    listed = importlib.resources.files("renderer.text.data").joinpath("g2p_heldout.txt").read_text("utf-8")
    table = words()
    names = [w for w in listed.splitlines() if w and not w.startswith("#")]
    return {w: table[w] for w in names if table.get(w)}


def seen_words(n: int, seed: int = 17) -> dict[str, tuple[str, ...]]:
    table = words()
    candidates = sorted(w for w in table if w.isalpha() and len(w) >= 4 and table[w])
    return {w: table[w] for w in random.Random(seed).sample(candidates, min(n, len(candidates)))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seen", type=int, default=2000, help="dictionary words in the 'seen' sample")
    args = parser.parse_args()
    predict = model()
    print("neural G2P (g2p-en checkpoint20, numpy) against the original's dictionary")
    for label, reference in (("held-out", heldout_words()), ("seen", seen_words(args.seen))):
        s = score(predict, reference)
        print(f"  {label:9s} {s.words:5d} words: word accuracy {s.word_accuracy:6.1%}, "
              f"phone error rate {s.phone_error_rate:6.1%}")  # fmt: skip


if __name__ == "__main__":
    main()
