"""Micro-benchmark of the text frontend (normalise + G2P, no BERT) on one core.

    python -m jobs.bench.text [--seconds 3] [--words 2000]

Prints English and Chinese sentences per second. Sentences vary (numbers change every round) so
whole-sentence caching cannot help; per-word caches warm up as they would on a real book.

Also measures the neural G2P for unknown English words against the dictionary: word accuracy
and phone error rate (edit distance / reference phones) on a fixed sample of dictionary words
(alphabetic, 4+ letters). The model was trained on CMUdict, so most of these words were seen in
training; the figure says how close the fallback gets, not how it does on truly new names.
"""

from __future__ import annotations

import argparse
import os
import time

EN_TEMPLATES = [
    "Mr. Smith paid ${n}.50 for {m} apples on May {d}th, 19{y}.",
    "It was {h}:{mm} p.m. when {m} of the {n},000 guests finally left the hall.",
    '"Don\'t go," she whispered, "it\'s only {m} km away from the old station."',
    "Dr. Jones walked down Baker St. and stopped at number {n} to read the letter.",
    "The price rose by {m}% in {y} years, e.g. from ${n} to ${n}{m}, which surprised everyone.",
    "Chapter {m} begins with a storm that lasted {n} hours and ruined the harvest.",
    "The FBI agent looked at the map, frowned, and said nothing for {m} minutes.",
    "She had never seen anything so beautiful in all her {n} years of travelling.",
]
ZH_TEMPLATES = [
    "今天是{y}年{mo}月{d}日，天气很好，我们一起去公园散步吧。",
    "他说这件事情不太容易，但是我们可以试试{m}次。",
    "电话号码是138{n}5678，请在下午{h}点{mm}分以前打过来。",
    "这个小孩儿的花儿开得很漂亮，大概有{m}朵。",
    "我用iPhone拍了{n}张照片，效果非常不错！",
    "价格上涨了{m}%，很多人都觉得不太合理。",
    "老师告诉我们，学习要一步一步来，不能着急。",
    "第{m}章讲的是一个关于勇气和友谊的故事。",
]


def _sentences(templates: list[str], rounds: int) -> list[str]:
    out = []
    for r in range(rounds):
        for t in templates:
            out.append(
                t.format(
                    n=100 + r, m=2 + r % 50, d=1 + r % 28, y=10 + r % 89, h=1 + r % 12, mm=10 + r % 49, mo=1 + r % 12
                )  # fmt: skip
            )
    return out


def _rate(frontend: object, sentences: list[str], language: str, seconds: float) -> tuple[float, float]:
    """(sentences per CPU-second, sentences per wall-second)."""
    phonemize = frontend.phonemize  # type: ignore[attr-defined]
    for s in sentences[:50]:  # warm-up: imports, dictionaries, jieba
        phonemize(s, language)
    done = 0
    # CPU time of this process: on a shared machine wall time also measures the neighbours
    cpu0, wall0 = time.process_time(), time.perf_counter()
    while time.process_time() - cpu0 < seconds:
        for s in sentences[done % len(sentences) : done % len(sentences) + 100]:
            phonemize(s, language)
            done += 1
    return done / (time.process_time() - cpu0), done / (time.perf_counter() - wall0)


def _edit_distance(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def g2p_accuracy(n_words: int) -> tuple[float, float, int]:
    """(word accuracy, phone error rate, words) of the neural G2P against the dictionary."""
    import random

    from renderer.text.en_dict import words
    from renderer.text.g2p_en_neural import model

    table = words()
    candidates = sorted(w for w in table if w.isalpha() and len(w) >= 4 and table[w])
    sample = random.Random(17).sample(candidates, min(n_words, len(candidates)))
    g2p = model()
    right = errors = total = 0
    for word in sample:
        want = table[word]
        got = tuple(p for p in g2p(word) if not p.startswith("<"))  # no <pad>/<unk> in a fair comparison
        right += got == want
        errors += _edit_distance(got, want)
        total += len(want)
    return right / len(sample), errors / total, len(sample)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per language (seconds)")
    parser.add_argument("--words", type=int, default=2000, help="dictionary words for the G2P accuracy (0: skip)")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    from renderer.text import TextFrontend

    frontend = TextFrontend()
    en = _rate(frontend, _sentences(EN_TEMPLATES, 400), "en", args.seconds)
    zh = _rate(frontend, _sentences(ZH_TEMPLATES, 400), "zh", args.seconds)
    print("text frontend (normalise + G2P, no BERT), one core")
    print(f"  English: {en[0]:8.0f} sentences per CPU-second ({en[1]:.0f}/s wall clock)  (target >= 2000)")
    print(f"  Chinese: {zh[0]:8.0f} sentences per CPU-second ({zh[1]:.0f}/s wall clock)  (target >= 500)")
    if args.words:
        accuracy, per, n = g2p_accuracy(args.words)
        print(f"  neural G2P on {n} dictionary words: word accuracy {accuracy:.1%}, phone error rate {per:.1%}")
    print(f"  load average: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
