"""A zip archive opened defensively: no path escapes, no zip bombs, no DRM, clear errors for damage.

Nothing is ever extracted to disk; entries are read into memory only after their declared sizes passed the
limits. An entry is inflated in bounded pieces (never in one call, which would let zlib expand a whole
compressed stream at once) and reading stops at its declared size, so a header that understates the size
costs at most that size before the CRC check refuses the entry. Text documents together may expand to at
most ``max_text_bytes``: a book that would exceed it is refused before the entry is inflated.
"""

from __future__ import annotations

import posixpath
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from jobs.errors import BookError

# Font obfuscation (IDPF and Adobe) scrambles embedded fonts only; it is not DRM on the text.
FONT_OBFUSCATION = (
    "http://www.idpf.org/2008/embedding",
    "http://ns.adobe.com/pdf/enc#RC",
)
DRM_MARKERS = ("META-INF/rights.xml", "META-INF/sinf.xml")
# Inflate at most this much per call: memory stays bounded whatever the compression ratio.
READ_PIECE_BYTES = 64 * 1024
_TEXT_SUFFIXES = (".xhtml", ".html", ".htm", ".xml", ".opf", ".ncx", ".txt")


def _unsafe_name(name: str) -> bool:
    if name.startswith(("/", "\\")) or "\\" in name or "\x00" in name:
        return True
    if len(name) > 1 and name[1] == ":":  # a Windows drive letter
        return True
    return ".." in PurePosixPath(name).parts


class SafeArchive:
    """Read-only view of an EPUB's zip with limits checked up front."""

    def __init__(
        self,
        path: Path,
        *,
        max_uncompressed_bytes: int,
        max_compression_ratio: float,
        max_text_bytes: int | None = None,
    ) -> None:
        self.path = path
        self.max_text_bytes = max_text_bytes
        self.text_bytes_read = 0
        try:
            self._zip = zipfile.ZipFile(path)
        except zipfile.BadZipFile as exc:
            raise BookError(
                path,
                f"not a readable zip archive ({exc}); the file is truncated or damaged",
                "download or copy the book again; an EPUB must be a complete zip file",
            ) from exc
        except OSError as exc:
            raise BookError(path, f"cannot open the file: {exc}") from exc
        self._infos = {info.filename: info for info in self._zip.infolist()}
        self._check_entries(max_uncompressed_bytes, max_compression_ratio)
        self._folded = {name.casefold(): name for name in self._infos}

    def _check_entries(self, max_total: int, max_ratio: float) -> None:
        total = 0
        for name, info in self._infos.items():
            if _unsafe_name(name):
                raise BookError(
                    self.path,
                    f"archive entry {name!r} has a path that escapes the archive (absolute or '..')",
                    "refusing to read it; this file is not a normal EPUB",
                )
            total += info.file_size
            # Tiny entries cannot do harm whatever their ratio; the ratio matters once sizes are large.
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > 1024 * 1024 and ratio > max_ratio:
                raise BookError(
                    self.path,
                    f"archive entry {name!r} would expand {ratio:.0f}x to {info.file_size:,} bytes (zip bomb?)",
                    f"refusing to decompress entries expanding more than {max_ratio:.0f}x",
                )
        if total > max_total:
            raise BookError(
                self.path,
                f"archive would decompress to {total:,} bytes, over the limit of {max_total:,} (zip bomb?)",
                "refusing to read it; raise max_uncompressed_bytes only if you trust this file",
            )

    def close(self) -> None:
        self._zip.close()

    def names(self) -> list[str]:
        return list(self._infos)

    def resolve(self, name: str) -> str | None:
        """The stored entry name for ``name`` (exact, else case-insensitive), or None."""
        if name in self._infos:
            return name
        return self._folded.get(name.casefold())

    def exists(self, name: str) -> bool:
        return self.resolve(name) is not None

    def read(self, name: str) -> bytes:
        stored = self.resolve(name)
        if stored is None:
            raise KeyError(name)
        info = self._infos[stored]
        is_text = stored.lower().endswith(_TEXT_SUFFIXES)
        if is_text:
            self._check_text_budget(stored, info.file_size)
        try:
            data = self._read_bounded(info)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise BookError(
                self.path, f"archive entry {stored!r} is damaged ({exc})", "download or copy the book again"
            ) from exc
        except RuntimeError as exc:  # zipfile's way of saying "password required"
            raise BookError(
                self.path,
                f"archive entry {stored!r} is password-encrypted ({exc})",
                "only unencrypted, DRM-free EPUBs can be read",
            ) from exc
        except NotImplementedError as exc:
            raise BookError(self.path, f"archive entry {stored!r} uses an unsupported compression: {exc}") from exc
        if is_text:
            self.text_bytes_read += len(data)
        return data

    def _read_bounded(self, info: zipfile.ZipInfo) -> bytes:
        """The entry's bytes, inflated piece by piece and never past its declared size."""
        pieces: list[bytes] = []
        left = info.file_size
        with self._zip.open(info) as stream:
            while left > 0:
                piece = stream.read(min(READ_PIECE_BYTES, left))
                if not piece:
                    break
                pieces.append(piece)
                left -= len(piece)
            if left == 0:
                # Reading one byte more lets zipfile reach the end of the entry and check its CRC: data beyond
                # the declared size (a lying header) or damage is refused here, at no more than a piece's cost.
                stream.read(1)
        return b"".join(pieces)

    def _check_text_budget(self, name: str, size: int) -> None:
        limit = self.max_text_bytes
        if limit is None or self.text_bytes_read + size <= limit:
            return
        raise BookError(
            self.path,
            f"the book's text would expand to more than {limit / 2**20:.0f} MiB (at {name!r}, which declares "
            f"{size:,} bytes); no real book is that large, so this looks like a zip bomb",
            "if you trust the file, raise the limit (render --max-text-mb N, or ReadOptions.max_text_bytes)",
        )

    def check_drm(self, content_names: set[str], parse_xml) -> None:  # type: ignore[no-untyped-def]
        """Raise BookError when the book's text is encrypted (DRM). Font obfuscation is allowed."""
        for marker in DRM_MARKERS:
            if self.exists(marker):
                raise BookError(
                    self.path,
                    f"the book is DRM-protected ({marker} present)",
                    "only DRM-free EPUBs can be read; use a DRM-free copy of the book",
                )
        if not self.exists("META-INF/encryption.xml"):
            return
        root = parse_xml(self.read("META-INF/encryption.xml"), "META-INF/encryption.xml")
        folded = {n.casefold() for n in content_names}
        for data in root.iter("{*}EncryptedData"):
            method = data.find("{*}EncryptionMethod")
            algorithm = method.get("Algorithm", "") if method is not None else ""
            ref = data.find(".//{*}CipherReference")
            uri = ref.get("URI", "") if ref is not None else ""
            if algorithm in FONT_OBFUSCATION:
                continue
            if uri.casefold() in folded or uri.lower().endswith((".xhtml", ".html", ".htm", ".opf", ".ncx")):
                raise BookError(
                    self.path,
                    f"the book is DRM-protected: {uri!r} is encrypted (META-INF/encryption.xml)",
                    "only DRM-free EPUBs can be read; use a DRM-free copy of the book",
                )


def join_href(base_file: str, href: str) -> str | None:
    """Resolve ``href`` (URL-encoded, relative to ``base_file``) to an archive path; None if it leaves the root."""
    from urllib.parse import unquote

    path = unquote(href.split("#", 1)[0])
    if not path:
        return base_file
    if "://" in path or path.startswith(("/", "mailto:", "data:")):
        return None
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(base_file), path))
    if joined.startswith("../") or joined == "..":
        return None
    return joined
