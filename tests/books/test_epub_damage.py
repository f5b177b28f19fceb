"""Broken and hostile EPUBs: clear BookErrors (or warnings and the rest of the book), never a traceback."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from jobs.books import BookError, ReadOptions, read_book
from tests.books.epubkit import Doc, EpubSpec, build_epub

TWO_CHAPTERS = [
    Doc("c1.xhtml", "<h1>One</h1><p>First.</p>"),
    Doc("c2.xhtml", "<h1>Two</h1><p>Second.</p>"),
]
TOC = [(0, "One", "text/c1.xhtml"), (0, "Two", "text/c2.xhtml")]


def _spec(**kw) -> EpubSpec:  # type: ignore[no-untyped-def]
    return EpubSpec(docs=list(TWO_CHAPTERS), toc=list(TOC), **kw)


def _error(path: Path, options: ReadOptions = ReadOptions()) -> str:
    with pytest.raises(BookError) as info:
        read_book(path, options)
    return str(info.value)


def test_truncated_zip(tmp_path: Path) -> None:
    good = build_epub(tmp_path / "good.epub", _spec()).read_bytes()
    cut = tmp_path / "cut.epub"
    cut.write_bytes(good[: len(good) // 2])
    message = _error(cut)
    assert "truncated or damaged" in message and str(cut) in message


def test_damaged_entry_data(tmp_path: Path) -> None:
    path = build_epub(tmp_path / "b.epub", _spec())
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("OEBPS/text/c2.xhtml")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start : start + 8] = b"\xff" * 8  # corrupt the deflate stream
    path.write_bytes(bytes(data))
    assert "damaged" in _error(path)


def test_missing_container(tmp_path: Path) -> None:
    path = build_epub(tmp_path / "b.epub", _spec(drop={"META-INF/container.xml"}))
    message = _error(path)
    assert "META-INF/container.xml is missing" in message and "OEBPS/content.opf" in message
    book = read_book(path, ReadOptions(lenient=True))
    assert [c.title for c in book.chapters] == ["One", "Two"]
    assert any("container.xml is missing" in w for w in book.warnings)


def test_opf_lists_a_missing_file(tmp_path: Path) -> None:
    path = build_epub(tmp_path / "b.epub", _spec(drop={"OEBPS/text/c1.xhtml"}))
    book = read_book(path)
    one, two = book.chapters
    assert (one.title, one.skipped, one.skip_reason, one.blocks) == ("One", True, "missing file", [])
    assert not two.skipped and two.blocks[-1].text == "Second."
    assert any("c1.xhtml" in w and "missing" in w for w in book.warnings)


def test_malformed_xhtml_recovers_with_a_warning(tmp_path: Path) -> None:
    broken = (
        '<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body>'
        "<h1>Two</h1><p>Unclosed &nbsp;paragraph<p>Next one.</div></body></html>"
    )
    path = build_epub(tmp_path / "b.epub", _spec(extra={"OEBPS/text/c2.xhtml": broken.encode()}))
    book = read_book(path)
    assert [b.text for b in book.chapters[1].blocks] == ["Two", "Unclosed paragraph", "Next one."]
    assert any("not well-formed" in w and "c2.xhtml" in w for w in book.warnings)


@pytest.mark.parametrize("marker", ["META-INF/rights.xml", "META-INF/encryption.xml"])
def test_drm_is_refused(tmp_path: Path, marker: str) -> None:
    encryption = (
        '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
        'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
        '<enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>'
        '<enc:CipherData><enc:CipherReference URI="OEBPS/text/c1.xhtml"/></enc:CipherData>'
        "</enc:EncryptedData></encryption>"
    )
    data = b"<rights/>" if marker.endswith("rights.xml") else encryption.encode()
    path = build_epub(tmp_path / "b.epub", _spec(extra={marker: data}))
    assert "DRM-protected" in _error(path)


def test_font_obfuscation_is_not_drm(tmp_path: Path) -> None:
    encryption = (
        '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
        'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
        '<enc:EncryptionMethod Algorithm="http://www.idpf.org/2008/embedding"/>'
        '<enc:CipherData><enc:CipherReference URI="OEBPS/fonts/f.otf"/></enc:CipherData>'
        "</enc:EncryptedData></encryption>"
    )
    path = build_epub(tmp_path / "b.epub", _spec(extra={"META-INF/encryption.xml": encryption.encode()}))
    assert [c.title for c in read_book(path).chapters] == ["One", "Two"]


def test_zip_bomb_ratio(tmp_path: Path) -> None:
    # 16 MB of zeros deflates to ~16 KB: a 1000x expansion, far beyond any real book's text.
    path = build_epub(tmp_path / "b.epub", _spec(extra={"OEBPS/images/bomb.bin": bytes(16 * 1024 * 1024)}))
    message = _error(path)
    assert "zip bomb" in message and "bomb.bin" in message


def test_zip_bomb_total_size(tmp_path: Path) -> None:
    path = build_epub(tmp_path / "b.epub", _spec())
    message = _error(path, ReadOptions(max_uncompressed_bytes=1000))
    assert "would decompress to" in message and "zip bomb" in message


@pytest.mark.parametrize("name", ["../evil.xhtml", "/etc/evil.xhtml", "OEBPS/../../evil.xhtml", "C:/evil.xhtml"])
def test_path_traversal_is_refused(tmp_path: Path, name: str) -> None:
    path = build_epub(tmp_path / "b.epub", _spec(extra={name: b"x"}))
    assert "escapes the archive" in _error(path)


def test_not_a_book(tmp_path: Path) -> None:
    assert "unsupported book format" in _error(tmp_path / "x.pdf")
    assert "file not found" in _error(tmp_path / "missing.epub")
    junk = tmp_path / "junk.epub"
    junk.write_bytes(b"this is not a zip")
    assert "not a readable zip archive" in _error(junk)


def test_opf_without_spine(tmp_path: Path) -> None:
    opf = (
        '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>T</dc:title></metadata>'
        "<manifest/><spine/></package>"
    )
    path = build_epub(tmp_path / "b.epub", _spec(extra={"OEBPS/content.opf": opf.encode()}))
    assert "no readable documents in its spine" in _error(path)


def test_external_entities_are_not_resolved(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    xxe = (
        f'<?xml version="1.0"?><!DOCTYPE html [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        '<html xmlns="http://www.w3.org/1999/xhtml"><body><h1>Two</h1><p>Leak: &xxe;</p></body></html>'
    )
    path = build_epub(tmp_path / "b.epub", _spec(extra={"OEBPS/text/c2.xhtml": xxe.encode()}))
    book = read_book(path)
    assert "TOPSECRET" not in book.chapters[1].text
