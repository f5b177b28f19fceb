"""Publish an export: the output folder ends up holding exactly the files of the latest export.

The export is written to a staging folder first. Publishing then (1) records in the folder's manifest every
file the program has written there, old and new; (2) moves each new file into place (each rename is
atomic, so a reader sees the old file or the new one, never half of one); (3) deletes the files of earlier
exports that this one did not write again (a chapter exported before and not now, a subtitle format no longer
asked for); (4) records the new list. Only files named in the manifest are ever deleted: whatever else is in
the folder (the job store, chunk audio, the user's own files) is left alone. A crash at any step leaves a
manifest naming every program-written file, so the next export finishes the clean-up.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from export.errors import ExportError

MANIFEST_NAME = ".render-export.json"
_LEGACY_REPORT = "report.json"  # exports before the manifest existed listed their files here


def _safe_name(name: object) -> bool:
    return isinstance(name, str) and bool(name) and "/" not in name and "\\" not in name and name not in (".", "..")


def written_files(out_dir: Path) -> set[str]:
    """Names of the files earlier exports wrote into ``out_dir`` (from its manifest, else its report.json)."""
    manifest = Path(out_dir) / MANIFEST_NAME
    try:
        if manifest.is_file():
            names = json.loads(manifest.read_text(encoding="utf-8")).get("files", [])
        elif (Path(out_dir) / _LEGACY_REPORT).is_file():
            report = json.loads((Path(out_dir) / _LEGACY_REPORT).read_text(encoding="utf-8"))
            names = [f.get("name") for f in report.get("files", [])] + ["report.json", "report.txt"]
        else:
            names = []
    except (OSError, ValueError, AttributeError):
        names = []  # unreadable: delete nothing rather than guess
    return {n for n in names if _safe_name(n)}


def _write_manifest(out_dir: Path, names: Iterable[str]) -> None:
    path = Path(out_dir) / MANIFEST_NAME
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"written_by": "audiobook-renderer", "files": sorted(names)}, f, indent=1, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def publish(staging: Path, out_dir: Path, on_step: Callable[[str], None] | None = None) -> list[str]:
    """Move every file of ``staging`` into ``out_dir`` and delete the stale files of earlier exports.

    Returns the names of the stale files that were removed. ``on_step(name)`` is called after each move
    (crash tests pause there)."""
    staging, out_dir = Path(staging), Path(out_dir)
    new = sorted(p.name for p in staging.iterdir() if p.is_file())
    if any(p.is_dir() and not p.name.startswith(".") for p in staging.iterdir()):
        raise ExportError(f"internal: the export staging folder {staging} holds sub-folders")
    old = written_files(out_dir)
    _write_manifest(out_dir, old | set(new))
    for name in new:
        os.replace(staging / name, out_dir / name)
        if on_step is not None:
            on_step(name)
    stale = sorted(old - set(new))
    for name in stale:
        target = out_dir / name
        if target.is_file() and not target.is_symlink():
            target.unlink()
    _write_manifest(out_dir, new)
    shutil.rmtree(staging, ignore_errors=True)
    return stale
