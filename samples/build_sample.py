"""Zip samples/book/ into samples/sample-book.epub, byte for byte reproducibly.

EPUB rules: 'mimetype' is the first entry, STORED (uncompressed) with no extra field; everything else is
DEFLATED. Reproducibility: entries in sorted path order, a fixed timestamp (2020-01-01 00:00:00), fixed
permissions and host system, fixed compression level.

    python samples/build_sample.py            # (re)write samples/sample-book.epub
    python samples/build_sample.py --check    # exit 1 if the committed file differs from a fresh build
"""

from __future__ import annotations

import argparse
import io
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "book"
TARGET = HERE / "sample-book.epub"
FIXED_TIME = (2020, 1, 1, 0, 0, 0)


def _entry(name: str, compress_type: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
    info.compress_type = compress_type
    info.create_system = 3  # Unix, whatever machine builds it
    info.external_attr = 0o644 << 16
    return info


def build(source: Path = SOURCE) -> bytes:
    """The EPUB's bytes for the book folder ``source``."""
    files = sorted(p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file())
    if "mimetype" not in files:
        raise SystemExit(f"{source}/mimetype is missing")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(_entry("mimetype", zipfile.ZIP_STORED), (source / "mimetype").read_bytes())
        for name in files:
            if name != "mimetype":
                zf.writestr(_entry(name, zipfile.ZIP_DEFLATED), (source / name).read_bytes(), compresslevel=9)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed file instead of writing")
    args = parser.parse_args(argv)
    data = build()
    if args.check:
        same = TARGET.is_file() and TARGET.read_bytes() == data
        print(f"{TARGET.name}: {'up to date' if same else 'DIFFERS from a fresh build'}")
        return 0 if same else 1
    TARGET.write_bytes(data)
    print(f"wrote {TARGET} ({len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
