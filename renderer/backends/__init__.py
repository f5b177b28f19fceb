"""Execution backends behind one protocol (see :mod:`renderer.backends.base`).

``create_backend(voice, kind=..., device=...)`` picks one: ``torch`` (eager, CPU/CUDA), ``onnx``
(ONNX Runtime on graphs exported by :func:`renderer.export_onnx.export_voice_onnx`), ``tensorrt``
(native engines built from the same ONNX files; GPU only), or ``auto``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from renderer.errors import BackendUnavailableError, OptionsError

BACKENDS = ("auto", "torch", "onnx", "tensorrt")


def default_onnx_dir(voice: Any) -> Path | None:
    """Where ``render voice export-onnx`` puts a voice's graphs (``<voice folder>/onnx``), if any."""
    folder = getattr(voice, "folder", None)
    if folder is None:
        return None
    path = Path(folder) / "onnx"
    return path if (path / "export.json").is_file() else None


def create_backend(voice: Any, kind: str = "auto", device: str = "cpu", threads: int | None = None,
                   onnx_dir: str | Path | None = None) -> Any:
    """Build the requested backend for ``voice``; BackendUnavailableError when it cannot run here."""
    if kind not in BACKENDS:
        raise OptionsError(f"unknown backend {kind!r}; choose one of {', '.join(BACKENDS)}")
    folder = Path(onnx_dir) if onnx_dir is not None else default_onnx_dir(voice)
    if kind == "auto":
        kind = "torch"
    if kind == "torch":
        return _torch_backend(voice, device)
    if folder is None:
        raise BackendUnavailableError(
            f"backend {kind!r} needs exported ONNX graphs; "
            f"run `render voice export-onnx {getattr(voice, 'name', 'NAME')}`")
    if kind == "onnx":
        from renderer.backends.onnx_backend import OnnxBackend

        return OnnxBackend(folder, voice=voice, device=device, threads=threads)
    from renderer.backends.tensorrt_backend import TensorRTBackend

    return TensorRTBackend(folder, voice=voice, device=device)


def torch_vocoder(voice: Any, device: str) -> Any:
    """SoVITS of the voice wrapped for batched rendering, or None when the voice has no SoVITS file."""
    if getattr(voice, "sovits_path", None) is None or getattr(voice, "ge", None) is None:
        return None
    from renderer.engine.vocoder import TorchVocoder
    from renderer.models.sovits import load_sovits

    model, _cfg, _ckpt = load_sovits(voice.sovits_path)
    return TorchVocoder(model, voice.ge, device=device)


def _torch_backend(voice: Any, device: str) -> Any:
    from renderer.backends.torch_backend import TorchBackend, resolve_device
    from renderer.engine.gpt import BatchedGPT

    resolve_device(device)
    gpt = BatchedGPT.from_checkpoint(voice.gpt_path)
    return TorchBackend(gpt, vocoder=torch_vocoder(voice, device), device=device)
