"""``render text "sentence"``: what the voice will read, and why (normalised text, languages, phones)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


def _segment_words(segment: Any) -> list[dict[str, Any]]:
    """Phones per word of one language segment (per character for Chinese)."""
    if segment.language == "en":
        from renderer.text.g2p_en import g2p_en_words

        words = [{"word": w, "phones": p, "source": src} for w, p, src in g2p_en_words(segment.text)]
        spoken = [p for w in words for p in w["phones"]]
        extra = list(segment.phones[: len(segment.phones) - len(spoken)])
        if extra:  # the original puts "," before English runs of under four phones
            words.insert(0, {"word": "", "phones": extra, "source": "short-run pause"})
        return words
    if segment.language == "zh":
        out, pos, i = [], 0, 0
        text, counts = segment.text, segment.word2ph
        while i < len(text):
            end = text.index("}", i) + 1 if text[i] == "{" and "}" in text[i:] else i + 1  # a lexicon phone group
            n = sum(counts[i:end])
            if n:
                source = "lexicon" if end - i > 1 else "pinyin"
                out.append({"word": text[i:end], "phones": list(segment.phones[pos : pos + n]), "source": source})
            pos, i = pos + n, end
        return out
    return [{"word": segment.text, "phones": list(segment.phones), "source": segment.language}]


def describe(text: str, language: str, heading: bool, lexicon_path: Path | None) -> dict[str, Any]:
    """Everything ``render text`` prints, as a dict (also the ``--json`` output)."""
    from renderer.text import TextFrontend, detect_language
    from renderer.text.frontend import apply_lexicon
    from renderer.text.lexicon import Lexicon

    lexicon = Lexicon.from_tsv(lexicon_path) if lexicon_path else Lexicon()
    lang = detect_language(text, "en") if language == "auto" else language
    frontend = TextFrontend(lexicon=lexicon)
    result = frontend.phonemize(text, lang, heading=heading)
    return {
        "text": text,
        "language": lang,
        "normalized": apply_lexicon(lexicon, text, lang, heading=heading),
        "model_text": result.norm_text,
        "segments": [
            {"language": s.language, "text": s.text, "phones": list(s.phones), "words": _segment_words(s)}
            for s in result.segments
        ],
        "phones": result.phones,
        "unknown_phones": result.unknown,
        "lexicon": lexicon.digest if lexicon.entries else None,
    }


def _print(info: dict[str, Any]) -> None:
    click.echo(f"normalised  {info['normalized']}")
    click.echo(f"model text  {info['model_text']}   (language {info['language']})")
    click.echo("segments")
    for seg in info["segments"]:
        click.echo(f"  {seg['language']}  {seg['text']!r}")
        for word in seg["words"]:
            click.echo(f"      {word['word']:<16} {' '.join(word['phones']):<32} {word['source']}")
    click.echo(f"phones ({len(info['phones'])})  {' '.join(info['phones'])}")
    if info["unknown_phones"]:
        click.echo(f"warning: {info['unknown_phones']} phone(s) are not in the model's symbol table (read as UNK)")


@click.command("text")
@click.argument("text")
@click.option("--lang", "language", type=click.Choice(["auto", "en", "zh", "ja"]), default="auto", show_default=True,
              help="Language of the text; auto decides from its scripts (spans are always split by language).")
@click.option("--heading", is_flag=True, help="Read the text as a chapter heading (Roman numerals, capitals).")
@click.option("--lexicon", "lexicon_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A lexicon.tsv (word<TAB>respelling or /PHONES/) to apply first, as a book's lexicon is.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of the readable listing.")
def text_cmd(text: str, language: str, heading: bool, lexicon_path: Path | None, as_json: bool) -> None:
    """Show how TEXT is read: its normalised form, language segments and the phones of every word
    with where they came from (dictionary, names, spelled, compound, neural, homograph, lexicon).

    Nothing is synthesised and no voice is needed. Use it to see why a word is mispronounced,
    then fix it with a lexicon entry.
    """
    info = describe(text, language, heading, lexicon_path)
    if as_json:
        click.echo(json.dumps(info, ensure_ascii=False, indent=2))
    else:
        _print(info)


COMMANDS = [text_cmd]
