"""Sentence goldens: the phones the model reads, by the original GPT-SoVITS frontend's rules.

``goldens/en.tsv`` and ``goldens/zh.tsv`` hold sentences per category (numbers, dates, times,
currency, units, ranges, phone numbers, abbreviations, acronyms, homographs, compounds, names,
tone sandhi, polyphones, erhua, mixed Chinese/English, punctuation) and the phones of each, guards
included. Rows marked ``deviation`` rely on a documented difference from the original
(``renderer/text/DEVIATIONS.md``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from renderer.text import TextFrontend

GOLDENS = Path(__file__).parent / "goldens"


def _rows(name: str) -> list[tuple[str, str, str, bool]]:
    rows = []
    for line in (GOLDENS / name).read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        category, text, phones, mark = (line.split("\t") + [""])[:4]
        rows.append((category, text, phones, mark == "deviation"))
    return rows


@pytest.mark.parametrize(("name", "language"), [("en.tsv", "en"), ("zh.tsv", "zh")])
def test_sentence_goldens(name: str, language: str) -> None:
    frontend = TextFrontend()
    rows = _rows(name)
    assert len(rows) >= 150 and len({r[0] for r in rows}) >= 8
    wrong = []
    for category, text, phones, _ in rows:
        got = " ".join(frontend.phonemize(text, language, heading=category == "headings").phones)
        if got != phones:
            wrong.append(f"[{category}] {text}\n  want {phones}\n  got  {got}")
    assert not wrong, f"{len(wrong)} of {len(rows)} rows differ:\n" + "\n".join(wrong)


def test_deviation_rows_are_listed_and_not_the_majority() -> None:
    listed = (Path(__file__).parents[2] / "renderer/text/DEVIATIONS.md").read_text(encoding="utf-8")
    for name in ("en.tsv", "zh.tsv"):
        rows = _rows(name)
        assert sum(r[3] for r in rows) < len(rows) / 2
    assert "1200公里" in listed and "Dr. Jones" in listed
