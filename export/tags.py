"""Metadata: ID3 (MP3, with CHAP/CTOC chapters for a single-file book), Vorbis comments (FLAC), MP4 atoms (M4B).

Besides title/album/artist/track/cover: the narrator (the voice's name) as composer, where audiobook
players (Audiobookshelf, Plex, Prologue) look for it, and as an explicit NARRATOR field; the year, the
description and the publisher from the OPF; the language.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mutagen.flac import FLAC, Picture
from mutagen.id3 import (
    APIC,
    CHAP,
    COMM,
    CTOC,
    ID3,
    TALB,
    TCOM,
    TCON,
    TDRC,
    TIT2,
    TLAN,
    TPE1,
    TPE2,
    TPUB,
    TRCK,
    TXXX,
    CTOCFlags,
    ID3NoHeaderError,
)
from mutagen.mp4 import MP4, MP4Cover, MP4FreeForm

from export.encode import ChapterMark
from export.model import BookInfo

_FRONT_COVER = 3  # ID3/FLAC picture type "Cover (front)"


def tag_file(path: Path, fmt: str, book: BookInfo, title: str, track: int, total: int,
             marks: Sequence[ChapterMark] = ()) -> None:
    """Write title, album (= book title), artist (= author), track n/N and the cover, per container."""
    if fmt == "mp3":
        _tag_mp3(path, book, title, track, total, marks)
    elif fmt == "flac":
        _tag_flac(path, book, title, track, total)
    elif fmt == "m4b":
        _tag_mp4(path, book, title, track, total)
    # WAV: no widely-read tag standard; the report carries the metadata instead.


def _tag_mp3(path: Path, book: BookInfo, title: str, track: int, total: int, marks: Sequence[ChapterMark]) -> None:
    try:
        tags = ID3(str(path))
    except ID3NoHeaderError:
        tags = ID3()
    tags.add(TIT2(encoding=3, text=title))
    tags.add(TALB(encoding=3, text=book.title))
    tags.add(TPE1(encoding=3, text=book.author))
    tags.add(TPE2(encoding=3, text=book.author))
    tags.add(TRCK(encoding=3, text=f"{track}/{total}"))
    tags.add(TCON(encoding=3, text="Audiobook"))
    if book.language:
        tags.add(TLAN(encoding=3, text=book.language))
    if book.cover:
        tags.add(APIC(encoding=3, mime=book.cover_mime, type=_FRONT_COVER, desc="Cover", data=book.cover))
    if book.narrator:
        tags.add(TCOM(encoding=3, text=book.narrator))
        tags.add(TXXX(encoding=3, desc="NARRATOR", text=book.narrator))
    if book.year:
        tags.add(TDRC(encoding=3, text=book.year))  # saved as TYER in ID3v2.3
    if book.description:
        tags.add(COMM(encoding=3, lang="eng", desc="", text=book.description))
    if book.publisher:
        tags.add(TPUB(encoding=3, text=book.publisher))
    if marks:
        ids = [f"ch{i}" for i in range(len(marks))]
        tags.add(CTOC(element_id="toc", flags=CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED, child_element_ids=ids,
                      sub_frames=[TIT2(encoding=3, text=book.title)]))
        for element_id, mark in zip(ids, marks, strict=True):
            tags.add(CHAP(element_id=element_id, start_time=int(mark.start_s * 1000), end_time=int(mark.end_s * 1000),
                          sub_frames=[TIT2(encoding=3, text=mark.title)]))
    tags.save(str(path), v2_version=3)


def _tag_flac(path: Path, book: BookInfo, title: str, track: int, total: int) -> None:
    audio = FLAC(str(path))
    audio["title"], audio["album"], audio["artist"] = title, book.title, book.author
    audio["tracknumber"], audio["tracktotal"], audio["genre"] = str(track), str(total), "Audiobook"
    extra = {"language": book.language, "composer": book.narrator, "performer": book.narrator,
             "narrator": book.narrator, "date": book.year, "description": book.description,
             "organization": book.publisher}
    for key, value in extra.items():
        if value:
            audio[key] = value
    if book.cover:
        picture = Picture()
        picture.type, picture.mime, picture.desc = _FRONT_COVER, book.cover_mime or "", "Cover"
        picture.data = book.cover
        audio.add_picture(picture)
    audio.save()


def _tag_mp4(path: Path, book: BookInfo, title: str, track: int, total: int) -> None:
    audio = MP4(str(path))
    tags = audio.tags if audio.tags is not None else audio.add_tags() or audio.tags
    assert tags is not None
    tags["\xa9nam"], tags["\xa9alb"], tags["\xa9ART"] = [title], [book.title], [book.author]
    tags["aART"], tags["\xa9gen"], tags["trkn"] = [book.author], ["Audiobook"], [(track, total)]
    if book.cover:
        kind = MP4Cover.FORMAT_PNG if book.cover_mime == "image/png" else MP4Cover.FORMAT_JPEG
        tags["covr"] = [MP4Cover(book.cover, imageformat=kind)]
    for key, value in (("\xa9wrt", book.narrator), ("\xa9day", book.year), ("desc", book.description),
                       ("\xa9cmt", book.description)):
        if value:
            tags[key] = [value]
    for name, value in (("NARRATOR", book.narrator), ("LANGUAGE", book.language), ("PUBLISHER", book.publisher)):
        if value:
            tags[f"----:com.apple.iTunes:{name}"] = [MP4FreeForm(value.encode("utf-8"))]
    audio.save()
