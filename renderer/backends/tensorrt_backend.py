"""Native TensorRT backend (GPU only): engines built from the exported ONNX graphs.

Engines are built once per (graph hash, TensorRT version, GPU, precision) with optimisation profiles
for batch, text, prompt and cache lengths, and cached as ``<export folder>/tensorrt/*.plan``. At run
time every input/output is a torch CUDA tensor bound by address (``set_tensor_address``); the KV cache
is the same per-layer torch buffers as the other backends, and a step writes only the new positions.
Written against the TensorRT >= 10 Python API; imported lazily so CPU machines never need it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from renderer.backends.torch_backend import TorchKVCache
from renderer.engine.backend import Candidates, PrefillBatch, StepInputs, VocodeItem
from renderer.errors import BackendUnavailableError
from renderer.export_onnx import read_sidecar
from renderer.tuning import EngineTuning

#: Shape ranges (min, opt, max) of the optimisation profiles.
PROFILE_BATCH = (1, 8, 64)
PROFILE_TEXT = (1, 128, 512)
PROFILE_PROMPT = (1, 150, 1024)
PROFILE_CAPACITY = (16, 512, 4096)


def import_tensorrt() -> Any:
    """The ``tensorrt`` module, or BackendUnavailableError explaining what is missing."""
    if not torch.cuda.is_available():
        raise BackendUnavailableError("TensorRT needs an NVIDIA GPU, and torch reports no CUDA device")
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BackendUnavailableError(
            "the TensorRT Python package is not installed (pip install tensorrt on a machine with an NVIDIA GPU); "
            "use --backend onnx or --backend torch instead") from exc
    if int(trt.__version__.split(".")[0]) < 10:
        raise BackendUnavailableError(f"TensorRT >= 10 is required, found {trt.__version__}")
    return trt


def _profile_shapes(name: str, n_layer: int, n_head: int, head_dim: int) -> dict[str, tuple[tuple[int, ...], ...]]:
    """min/opt/max shapes of every dynamic input of graph ``name``."""
    b = PROFILE_BATCH
    if name == "gpt_prefill":
        x, y = PROFILE_TEXT, PROFILE_PROMPT
        return {"phone_ids": tuple((b[i], x[i]) for i in range(3)),
                "bert": tuple((b[i], 1024, x[i]) for i in range(3)),
                "text_lens": tuple((b[i],) for i in range(3)), "prompt": tuple((b[i], y[i]) for i in range(3)),
                "presence": tuple((b[i], 1025) for i in range(3)), "penalty": tuple((b[i],) for i in range(3)),
                "eos_block": tuple((b[i],) for i in range(3))}
    c = PROFILE_CAPACITY
    shapes: dict[str, tuple[tuple[int, ...], ...]] = {
        n: tuple((b[i],) for i in range(3)) for n in ("tokens", "positions", "cache_lens", "penalty", "eos_block")}
    shapes["presence"] = tuple((b[i], 1025) for i in range(3))
    for layer in range(n_layer):
        shapes[f"past_key_{layer}"] = tuple((b[i], n_head, head_dim, c[i]) for i in range(3))
        shapes[f"past_value_{layer}"] = tuple((b[i], n_head, c[i], head_dim) for i in range(3))
    return shapes


def build_engine(trt: Any, onnx_path: Path, shapes: dict[str, tuple[tuple[int, ...], ...]], plan: Path,
                 fp16: bool = False) -> bytes:
    """Parse the ONNX file, build a serialized engine with one optimisation profile, cache it at ``plan``."""
    if plan.is_file():
        return plan.read_bytes()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendUnavailableError(f"TensorRT cannot parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 4 << 30)
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for name, (low, opt, high) in shapes.items():
        profile.set_shape(name, low, opt, high)
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendUnavailableError(f"TensorRT failed to build an engine for {onnx_path.name}")
    data = bytes(serialized)
    plan.parent.mkdir(parents=True, exist_ok=True)
    plan.write_bytes(data)
    return data


class _TrtGraph:
    """One engine + execution context; runs with torch tensors bound by address."""

    def __init__(self, trt: Any, data: bytes) -> None:
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self.runtime.deserialize_cuda_engine(data)
        self.context = self.engine.create_execution_context()

    def run(self, inputs: dict[str, Tensor], outputs: dict[str, Tensor]) -> None:
        for name, tensor in inputs.items():
            self.context.set_input_shape(name, tuple(tensor.shape))
            self.context.set_tensor_address(name, tensor.data_ptr())
        for name, tensor in outputs.items():
            self.context.set_tensor_address(name, tensor.data_ptr())
        stream = torch.cuda.current_stream()
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise BackendUnavailableError("TensorRT execution failed")
        stream.synchronize()


class TensorRTBackend:
    """Backend protocol on native TensorRT engines (CUDA only)."""

    name = "tensorrt"

    def __init__(self, folder: str | Path, voice: Any = None, device: str = "cuda", fp16: bool = False,
                 tuning: EngineTuning | None = None) -> None:
        if not device.startswith("cuda"):
            raise BackendUnavailableError("the TensorRT backend runs on a GPU only; use --device cuda")
        trt = import_tensorrt()
        self.torch_device = torch.device(device)
        self.device = str(self.torch_device)
        self.folder = Path(folder)
        sidecar = read_sidecar(self.folder)
        gpt = sidecar["gpt"]
        self.n_layer, n_head, d_model = int(gpt["n_layer"]), int(gpt["n_head"]), int(gpt["d_model"])
        self.vocab_size, self.eos = int(gpt["vocab_size"]), int(gpt["eos"])
        self.top_k_out = int(sidecar["top_k_out"])
        tag = hashlib.sha256(f"{trt.__version__}|{torch.cuda.get_device_name(self.torch_device)}|{fp16}".encode())
        self.graphs: dict[str, _TrtGraph] = {}
        for name in ("gpt_prefill", "gpt_step"):
            info = sidecar["graphs"][name]
            plan = self.folder / "tensorrt" / f"{name}-{info['sha256'][:16]}-{tag.hexdigest()[:12]}.plan"
            shapes = _profile_shapes(name, self.n_layer, n_head, d_model // n_head)
            self.graphs[name] = _TrtGraph(trt, build_engine(trt, self.folder / info["file"], shapes, plan, fp16))
        from renderer.backends import torch_vocoder

        self.vocoder = torch_vocoder(voice, device, tuning) if voice is not None else None
        self.cache = TorchKVCache(self.n_layer, n_head, d_model // n_head, self.torch_device)

    def start(self, slots: int, capacity: int) -> None:
        if slots > PROFILE_BATCH[2]:
            raise BackendUnavailableError(f"TensorRT engines were built for at most {PROFILE_BATCH[2]} slots")
        self.cache.allocate(slots, capacity)

    def ensure_capacity(self, needed: int, allow_shrink: bool = False) -> None:
        if needed > PROFILE_CAPACITY[2]:
            raise BackendUnavailableError(f"sequence of {needed} positions exceeds the TensorRT profile")
        self.cache.grow(needed, allow_shrink)

    def compact(self, keep: np.ndarray) -> None:
        self.cache.compact(torch.from_numpy(keep.astype(np.int64)).to(self.torch_device))

    def release(self) -> None:
        self.cache.free()

    def _t(self, array: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.torch_device)

    def _outputs(self, b: int) -> dict[str, Tensor]:
        k = min(self.top_k_out, self.vocab_size)
        dev = self.torch_device
        return {"top_values": torch.empty(b, k, device=dev), "lse": torch.empty(b, device=dev),
                "top_indices": torch.empty(b, k, dtype=torch.int64, device=dev)}

    @staticmethod
    def _candidates(out: dict[str, Tensor]) -> Candidates:
        return Candidates(values=out["top_values"].cpu().numpy(), indices=out["top_indices"].cpu().numpy(),
                          lse=out["lse"].cpu().numpy())

    def prefill(self, slots: np.ndarray, batch: PrefillBatch, return_logits: bool = False) -> Candidates:
        if batch.prompt.shape[1] == 0:
            raise BackendUnavailableError("reference-free decoding (no prompt) is not built into TensorRT engines")
        self.ensure_capacity(batch.total_len)
        b, total = len(batch.text_lens), batch.total_len
        inputs = {n: self._t(getattr(batch, n)) for n in ("phone_ids", "bert", "text_lens", "prompt", "presence",
                                                           "penalty", "eos_block")}
        out = self._outputs(b)
        h, hd = self.cache.n_head, self.cache.head_dim
        for i in range(self.n_layer):
            out[f"present_key_{i}"] = torch.empty(b, h, hd, total, device=self.torch_device)
            out[f"present_value_{i}"] = torch.empty(b, h, total, hd, device=self.torch_device)
        self.graphs["gpt_prefill"].run(inputs, out)
        self.cache.write_rows(self._t(slots.astype(np.int64)),
                              [out[f"present_key_{i}"] for i in range(self.n_layer)],
                              [out[f"present_value_{i}"] for i in range(self.n_layer)])
        return self._candidates(out)

    def step(self, inputs: StepInputs, return_logits: bool = False) -> Candidates:
        self.ensure_capacity(int(inputs.cache_lens.max()) + 1)
        b = len(inputs.tokens)
        feeds = {n: self._t(getattr(inputs, n)) for n in ("tokens", "positions", "cache_lens", "presence", "penalty",
                                                           "eos_block")}
        for i in range(self.n_layer):
            feeds[f"past_key_{i}"] = self.cache.keys[i]
            feeds[f"past_value_{i}"] = self.cache.values[i]
        out = self._outputs(b)
        h, hd = self.cache.n_head, self.cache.head_dim
        for i in range(self.n_layer):
            out[f"new_key_{i}"] = torch.empty(b, h, hd, device=self.torch_device)
            out[f"new_value_{i}"] = torch.empty(b, h, hd, device=self.torch_device)
        self.graphs["gpt_step"].run(feeds, out)
        self.cache.write_position(feeds["cache_lens"], [out[f"new_key_{i}"] for i in range(self.n_layer)],
                                  [out[f"new_value_{i}"] for i in range(self.n_layer)])
        return self._candidates(out)

    def vocode(self, items: list[VocodeItem], speed: float, noise_scale: float,
               seeds: list[int]) -> list[np.ndarray]:
        if self.vocoder is None:
            raise BackendUnavailableError("this backend has no SoVITS model (voice without sovits weights)")
        return self.vocoder.render(items, speed=speed, noise_scale=noise_scale, seeds=seeds)
