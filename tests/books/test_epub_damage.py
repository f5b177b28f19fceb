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
    message = _error(path)
    assert "text/c1.xhtml ('One'): missing file" in message and "--allow-missing" in message
    book = read_book(path, ReadOptions(allow_missing=True))
    assert [m.describe() for m in book.missing] == ["OEBPS/text/c1.xhtml ('One'): missing file"]
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


def _understate_size(path: Path, entry: str, declared: int) -> None:
    """Rewrite the local header and central directory so ``entry`` claims ``declared`` uncompressed bytes."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(entry)
    data[info.header_offset + 22 : info.header_offset + 26] = declared.to_bytes(4, "little")
    record = data.find(b"PK\x01\x02")
    while record != -1:  # walk the central directory to the entry's record
        name_len = int.from_bytes(data[record + 28 : record + 30], "little")
        if data[record + 46 : record + 46 + name_len].decode() == entry:
            data[record + 24 : record + 28] = declared.to_bytes(4, "little")
            break
        record = data.find(b"PK\x01\x02", record + 46)
    assert record != -1, entry
    path.write_bytes(bytes(data))


def test_entry_that_understates_its_size_is_refused_within_bounded_memory(tmp_path: Path) -> None:
    """Issue 24: a header saying 4,000 bytes over 64 MB of data must cost ~4,000 bytes, not the 64 MB."""
    import tracemalloc

    payload = b"<p>" + b" " * (64 * 1024 * 1024) + b"</p>"
    page = b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body><h1>Two</h1>'
    path = build_epub(tmp_path / "b.epub", _spec(extra={"OEBPS/text/c2.xhtml": page + payload + b"</body></html>"}))
    _understate_size(path, "OEBPS/text/c2.xhtml", 4000)
    tracemalloc.start()
    try:
        message = _error(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "c2.xhtml" in message and "damaged" in message
    assert peak < 8 * 1024 * 1024, f"peak {peak:,} bytes while refusing a lying entry"


def test_text_budget_refuses_a_book_that_expands_too_far(tmp_path: Path) -> None:
    """An honest but huge entry (issue 24: 480 MiB at 57:1) is refused before it is inflated or parsed."""
    import tracemalloc

    words = " ".join(f"word{i % 977}" for i in range(400_000))  # ~3.6 MB, a realistic compression ratio
    huge = f'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body><p>{words}</p></body></html>'
    path = build_epub(tmp_path / "b.epub", _spec(extra={"OEBPS/text/c2.xhtml": huge.encode()}))
    tracemalloc.start()
    try:
        message = _error(path, ReadOptions(max_text_bytes=1024 * 1024))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "text would expand to more than 1 MiB" in message and "c2.xhtml" in message
    assert "--max-text-mb" in message
    assert peak < 2 * 1024 * 1024
    assert [c.title for c in read_book(path).chapters] == ["One", "Two"]  # the default limit reads it


def test_missing_container_advice_names_an_option_that_exists(tmp_path: Path) -> None:
    """The advice says --lenient; the CLI has that option and it reads the book."""
    from click.testing import CliRunner

    from jobs.cli import cli

    path = build_epub(tmp_path / "b.epub", _spec(drop={"META-INF/container.xml"}))
    assert "--lenient" in _error(path)
    result = CliRunner().invoke(cli, ["plan", str(path), "--lenient"])
    assert result.exit_code == 0, result.output
    assert "One" in result.output and "container.xml is missing" in result.output


def test_unresolved_entity_in_the_opf_title_is_not_shown(tmp_path: Path) -> None:
    """Issue 24: an OPF title 'T &xxe;' (external entity, never loaded) reads 'T', not 'T &xxe;'."""
    opf = (
        '<?xml version="1.0"?><!DOCTYPE package [<!ENTITY xxe SYSTEM "file:///etc/hostname">]>'
        '<package xmlns="http://www.idpf.org/2007/opf" version="3.0"><metadata '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>T &xxe;</dc:title><dc:creator>A &xxe;B</dc:creator>'
        '</metadata><manifest><item id="d0" href="text/c1.xhtml" media-type="application/xhtml+xml"/></manifest>'
        '<spine><itemref idref="d0"/></spine></package>'
    )
    path = build_epub(tmp_path / "b.epub", _spec(extra={"OEBPS/content.opf": opf.encode()}))
    book = read_book(path)
    assert (book.metadata.title, book.metadata.author) == ("T", "A B")


def test_html_entities_in_an_xhtml_doctype_become_characters(tmp_path: Path) -> None:
    doc = (
        '<?xml version="1.0"?><!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.1//EN" '
        '"http://www.w3.org/TR/xhtml11/DTD/xhtml11.dtd"><html xmlns="http://www.w3.org/1999/xhtml"><body>'
        "<h1>Two</h1><p>Yes&mdash;no &amp; maybe&hellip;</p></body></html>"
    )
    path = build_epub(tmp_path / "b.epub", _spec(extra={"OEBPS/text/c2.xhtml": doc.encode()}))
    assert read_book(path).chapters[1].blocks[-1].text == "Yes—no & maybe…"
