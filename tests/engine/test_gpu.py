"""GPU backends (CUDA torch, ONNX Runtime CUDA EP, native TensorRT): same checks as on CPU.

They skip with a reason on machines without an NVIDIA GPU; the error paths are tested everywhere.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

from renderer.backends.tensorrt_backend import TensorRTBackend, import_tensorrt
from renderer.backends.torch_backend import TorchBackend, resolve_device
from renderer.errors import BackendUnavailableError
from tests.engine.test_torch_backend import check_conformance, check_independence, check_teacher_forced

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA GPU (torch.cuda.is_available() is False)")


def _ort_has_cuda() -> bool:
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


@needs_cuda
def test_torch_cuda_backend(batched_gpt, reference_gpt, conformance, vectors) -> None:
    from renderer.engine.batched_gpt import BatchedGPT
    from renderer.models.gpt import Text2SemanticModel

    gpt = BatchedGPT(Text2SemanticModel(batched_gpt.config))
    gpt.load_state_dict(batched_gpt.state_dict())
    backend = TorchBackend(gpt, device="cuda")
    check_conformance(backend, conformance)
    check_teacher_forced(backend, reference_gpt, vectors)
    check_independence(backend, reference_gpt, vectors)


@pytest.mark.skipif(not torch.cuda.is_available() or not _ort_has_cuda(),
                    reason="no CUDA GPU or onnxruntime without CUDAExecutionProvider")
def test_onnx_cuda_backend(conformance, vectors, reference_gpt, tmp_path, gpt_path) -> None:
    from renderer.backends.onnx_backend import OnnxBackend
    from renderer.engine.api import VoiceParts
    from renderer.export_onnx import export_voice_onnx

    voice = VoiceParts(gpt_path, None, vectors["gpt_prompt_semantic"], vectors["gpt_prompt_phones"],
                       vectors["gpt_prompt_bert"], None)
    export_voice_onnx(voice, tmp_path, include_vocoder=False)
    backend = OnnxBackend(tmp_path, device="cuda")
    check_conformance(backend, conformance)
    check_teacher_forced(backend, reference_gpt, vectors)


@pytest.mark.skipif(not torch.cuda.is_available() or importlib.util.find_spec("tensorrt") is None,
                    reason="TensorRT needs an NVIDIA GPU and the tensorrt package")
def test_tensorrt_backend(vectors, reference_gpt, tmp_path, gpt_path) -> None:
    from renderer.engine.api import VoiceParts
    from renderer.export_onnx import export_voice_onnx

    voice = VoiceParts(gpt_path, None, vectors["gpt_prompt_semantic"], vectors["gpt_prompt_phones"],
                       vectors["gpt_prompt_bert"], None)
    export_voice_onnx(voice, tmp_path, include_vocoder=False)
    backend = TensorRTBackend(tmp_path, device="cuda")
    check_teacher_forced(backend, reference_gpt, vectors)
    check_independence(backend, reference_gpt, vectors)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error path of a machine without a GPU")
def test_gpu_backends_fail_clearly_without_gpu(tmp_path) -> None:
    with pytest.raises(BackendUnavailableError, match="GPU"):
        import_tensorrt()
    with pytest.raises(BackendUnavailableError, match="GPU"):
        TensorRTBackend(tmp_path, device="cpu")
    with pytest.raises(BackendUnavailableError, match="CUDA"):
        resolve_device("cuda")


def test_backend_status_reports_every_backend() -> None:
    from renderer.backends import backend_status

    status = backend_status("cpu")
    assert set(status) == {"torch", "onnx", "tensorrt"}
    assert status["torch"] == "ok" and status["onnx"] == "ok"
    if not torch.cuda.is_available():
        assert status["tensorrt"] != "ok"
