"""Execution backends behind one protocol (see :mod:`renderer.engine.backend`).

``create_backend(voice, kind=..., device=...)`` picks one: ``torch`` (eager, CPU/CUDA), ``onnx``
(ONNX Runtime on graphs exported by :func:`renderer.export_onnx.export_voice_onnx`), ``tensorrt``
(native engines built from the same ONNX files; GPU only), or ``auto``. ``open_engine`` builds the
backend and the :class:`~renderer.engine.api.Engine` on top of it in one call.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from renderer.errors import BackendUnavailableError, OptionsError
from renderer.tuning import EngineTuning, apply_process_settings

if TYPE_CHECKING:
    from renderer.engine.api import Engine

BACKENDS = ("auto", "torch", "onnx", "tensorrt")


def default_onnx_dir(voice: Any) -> Path | None:
    """Where ``render voice export-onnx`` puts a voice's graphs (``<voice folder>/onnx``), if any."""
    folder = getattr(voice, "folder", None)
    if folder is None:
        return None
    path = Path(folder) / "onnx"
    return path if (path / "export.json").is_file() else None


PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def open_engine(voice: Any, *, backend: str = "auto", device: str = "cpu", precision: str = "auto",
                tuning: EngineTuning | None = None, onnx_dir: str | Path | None = None) -> Engine:
    """The engine for ``voice`` on the requested backend and device.

    ``tuning`` None = :meth:`EngineTuning.resolve` (defaults and the ``RENDER_*`` environment).
    Raises BackendUnavailableError / OptionsError (typed) when the combination cannot run here.
    """
    from renderer.engine.api import Engine

    tuning = tuning if tuning is not None else EngineTuning.resolve()
    apply_process_settings(tuning)  # before the backend's first torch work (precision check, packing)
    instance = create_backend(voice, kind=backend, device=device, precision=precision, tuning=tuning,
                              onnx_dir=onnx_dir)
    from renderer.engine.autotune import apply_measured

    # batch sizes and thread split left automatic: measured on this machine on first use (cached)
    return Engine(voice, instance, apply_measured(voice, instance, tuning))


def create_backend(voice: Any, kind: str = "auto", device: str = "cpu", precision: str = "fp32",
                   tuning: EngineTuning | None = None, onnx_dir: str | Path | None = None) -> Any:
    """Build the requested backend for ``voice``; BackendUnavailableError when it cannot run here.

    precision: 'fp32', 'bf16' (CPU with AVX512-BF16/AMX), 'fp16' (CUDA), or 'auto' = the reduced
    precision of the device only when its tolerance check against fp32 passes (torch backend).
    """
    tuning = tuning if tuning is not None else EngineTuning()
    if kind not in BACKENDS:
        raise OptionsError(f"unknown backend {kind!r}; choose one of {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise OptionsError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    folder = Path(onnx_dir) if onnx_dir is not None else default_onnx_dir(voice)
    if kind == "auto":
        kind = "torch"
    if kind == "torch":
        return _torch_backend(voice, device, precision, tuning)
    if precision not in ("auto", "fp32"):
        raise OptionsError(f"precision {precision!r} is available with the torch backend only")
    if folder is None:
        raise BackendUnavailableError(
            f"backend {kind!r} needs exported ONNX graphs; "
            f"run `render voice export-onnx {getattr(voice, 'name', 'NAME')}`")
    if kind == "onnx":
        from renderer.backends.onnx_backend import OnnxBackend

        return OnnxBackend(folder, voice=voice, device=device, tuning=tuning)
    from renderer.backends.tensorrt_backend import TensorRTBackend

    return TensorRTBackend(folder, voice=voice, device=device, tuning=tuning)


def torch_vocoder(voice: Any, device: str, tuning: EngineTuning | None = None) -> Any:
    """SoVITS of the voice wrapped for batched rendering, or None when the voice has no SoVITS file."""
    if getattr(voice, "sovits_path", None) is None or getattr(voice, "ge", None) is None:
        return None
    from renderer.engine.vocoder import TorchVocoder
    from renderer.models.sovits import load_sovits

    tuning = tuning if tuning is not None else EngineTuning()
    model, _cfg, _ckpt = load_sovits(voice.sovits_path)
    return TorchVocoder(model, voice.ge, device=device, max_batch=tuning.vocoder_batch,
                        bucket_tokens=tuning.vocoder_bucket_tokens,
                        window_s=tuning.vocoder_window_s)


def _torch_backend(voice: Any, device: str, precision: str, tuning: EngineTuning) -> Any:
    import copy

    import torch

    from renderer.backends.torch_backend import TorchBackend, resolve_device
    from renderer.engine.batched_gpt import BatchedGPT
    from renderer.engine.precision import choose_precision

    resolve_device(device)
    gpt = BatchedGPT.from_checkpoint(voice.gpt_path)
    vocoder = torch_vocoder(voice, device, tuning)

    def make(dtype: Any) -> TorchBackend:
        return TorchBackend(gpt if dtype is None else copy.deepcopy(gpt).cast_linears(dtype), device=device,
                            tuning=tuning)

    chosen, report = choose_precision(voice, device, precision, gpt, make, vocoder)
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
    if chosen in dtypes:
        gpt.cast_linears(dtypes[chosen])
        if vocoder is not None:
            vocoder.set_precision(dtypes[chosen])
    backend = TorchBackend(gpt, vocoder=vocoder, device=device, tuning=tuning)
    backend.precision = chosen
    backend.precision_report = report
    return backend


def backend_status(device: str = "cpu") -> dict[str, str]:
    """For ``render doctor``: each backend -> 'ok' or the reason it cannot run on ``device``."""
    import importlib.util

    import torch

    out: dict[str, str] = {}
    cuda = torch.cuda.is_available()
    out["torch"] = "ok" if device == "cpu" or cuda else "no CUDA GPU visible to torch"
    if importlib.util.find_spec("onnxruntime") is None:
        out["onnx"] = "onnxruntime is not installed"
    else:
        import onnxruntime as ort

        providers = ort.get_available_providers()
        needed = "CPUExecutionProvider" if device == "cpu" else "CUDAExecutionProvider"
        out["onnx"] = "ok" if needed in providers else f"onnxruntime lacks {needed}"
    if not cuda:
        out["tensorrt"] = "needs an NVIDIA GPU"
    elif importlib.util.find_spec("tensorrt") is None:
        out["tensorrt"] = "the tensorrt package is not installed"
    else:
        out["tensorrt"] = "ok"
    return out
