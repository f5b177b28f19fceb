"""Integrity checks for weight files: archive checksums and finite tensors.

PyTorch's archive reader does not verify the CRC-32 stored for each ZIP entry, so a file whose tensor
bytes were damaged on disk or in transfer (the ZIP directory intact) loads without complaint and
renders NaN/inf noise. :func:`verify_archive_checksums` reads every entry through :mod:`zipfile`,
which does check them, before anything is unpickled; :func:`check_finite_tensors` catches what a
checksum cannot (a file saved with non-finite values, e.g. from a diverged training run).

When a tensor's storage entry is damaged the error names the tensor: :func:`storage_tensor_names`
reads the (intact) pickle with an unpickler that only records which storage key each tensor uses;
it builds no tensors and calls no pickled globals.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from renderer.errors import CheckpointError

__all__ = ["verify_archive_checksums", "check_finite_tensors", "storage_tensor_names"]

_COPY_AGAIN = "the file was damaged on disk or while copying; copy or download it again"


def verify_archive_checksums(path: Path, data: bytes) -> None:
    """Read every entry of the ``torch.save`` ZIP in ``data``; raise :class:`CheckpointError` on a bad one.

    The error names the damaged entry and, for a tensor's storage, the tensor(s) stored there.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            try:
                with archive.open(info) as entry:
                    while entry.read(1 << 22):  # zipfile compares the CRC-32 once the entry is read
                        pass
            except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
                raise CheckpointError(path, _damage(archive, info.filename, exc), _COPY_AGAIN) from None


def _damage(archive: zipfile.ZipFile, entry: str, exc: Exception) -> str:
    """'tensor 'x' (archive entry 'root/data/7') is damaged: ...' or just the entry when no tensor is known."""
    reason = "its bytes do not match the checksum stored in the file" if "CRC" in str(exc) \
        else f"it cannot be read ({str(exc)[:120]})"
    folder, _, key = entry.rpartition("/data/")
    names = storage_tensor_names(archive, folder).get(key, []) if folder else []
    if not names:
        return f"archive entry '{entry}' is damaged: {reason}"
    shown = ", ".join(f"'{name}'" for name in names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return f"tensor {shown} (archive entry '{entry}') is damaged: {reason}"


class _TensorRef:
    """Where the pickle rebuilds a tensor: only its storage key is kept."""

    def __init__(self, key: str) -> None:
        self.key = key


def _rebuild_tensor(storage: Any, *_args: Any) -> _TensorRef:
    return _TensorRef(str(storage))


class _Opaque:
    """Stands in for every other pickled global: accepts any arguments and state, does nothing."""

    def __new__(cls, *_args: Any, **_kwargs: Any) -> _Opaque:
        return super().__new__(cls)

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        pass

    def __setstate__(self, _state: Any) -> None:
        pass


class _StorageKeyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        return _Opaque

    def persistent_load(self, pid: Any) -> Any:
        # torch.save's persistent id: ('storage', storage type, key, location, numel)
        return str(pid[2]) if isinstance(pid, tuple) and len(pid) > 2 else ""


def storage_tensor_names(archive: zipfile.ZipFile, folder: str) -> dict[str, list[str]]:
    """Storage key -> names of the tensors kept in it, read from ``<folder>/data.pkl``; {} if unreadable."""
    try:
        obj = _StorageKeyUnpickler(io.BytesIO(archive.read(f"{folder}/data.pkl"))).load()
    except Exception:  # noqa: BLE001 - best effort: the caller still names the archive entry
        return {}
    found: dict[str, list[str]] = {}

    def walk(value: Any, name: str) -> None:
        if isinstance(value, _TensorRef):
            found.setdefault(value.key, []).append(name)
        elif isinstance(value, Mapping):
            for key, item in value.items():
                # The weight table's names are the tensors' names; other levels are just containers.
                walk(item, str(key) if name in ("", "weight") else f"{name}.{key}")

    walk(obj, "")
    return found


def check_finite_tensors(path: Path, tensors: Mapping[str, torch.Tensor]) -> None:
    """Raise :class:`CheckpointError` naming the first floating tensor that holds NaN or infinity."""
    for name, tensor in tensors.items():
        if not tensor.is_floating_point():
            continue
        finite = torch.isfinite(tensor)
        if bool(finite.all()):
            continue
        bad = int(finite.numel() - int(finite.sum()))
        raise CheckpointError(
            path, f"tensor '{name}' holds {bad:,} NaN or infinite values (of {tensor.numel():,})",
            "the file is damaged or was saved from a diverged training run; copy it again or use the "
            "weights of another epoch")
