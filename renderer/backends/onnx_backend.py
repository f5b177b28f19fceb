"""ONNX Runtime backend: exported prefill/step graphs with I/O binding on torch-owned buffers.

The KV cache is the same per-layer torch buffers as the torch backend (CPU or CUDA memory). Each
``past_key_{l}``/``past_value_{l}`` input is bound to its buffer by pointer, and every output is bound
to a pre-allocated torch tensor, so a step copies nothing but the new K/V (written at each row's
``cache_len`` with one indexed assignment per layer). Providers: CPU, CUDA, or ORT's TensorRT EP.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from renderer.backends.torch_backend import TorchKVCache, resolve_device
from renderer.engine.backend import Candidates, PrefillBatch, StepInputs, VocodeItem
from renderer.errors import BackendUnavailableError
from renderer.export_onnx import read_sidecar
from renderer.tuning import EngineTuning

_NP_TYPES = {torch.float32: np.float32, torch.int64: np.int64, torch.float16: np.float16}


def ort_session_options(threads: int | None) -> Any:
    """Sequential execution, all graph optimisations, intra-op threads = ``threads`` (no oversubscription)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.inter_op_num_threads = 1
    if threads:
        opts.intra_op_num_threads = int(threads)
    return opts


def providers_for(device: str, use_tensorrt_ep: bool = False) -> list[Any]:
    """ORT execution providers for ``device``; BackendUnavailableError when the build lacks them."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    wanted = ["TensorrtExecutionProvider"] if use_tensorrt_ep else []
    wanted += ["CUDAExecutionProvider"]
    missing = [p for p in wanted if p not in available]
    if missing:
        raise BackendUnavailableError(f"onnxruntime lacks {', '.join(missing)} (available: {', '.join(available)}); "
                                      "install onnxruntime-gpu")
    device_id = torch.device(device).index or 0
    return [(p, {"device_id": device_id}) for p in wanted] + ["CPUExecutionProvider"]


class OnnxBackend:
    """Backend protocol on ONNX Runtime sessions loaded from an export folder."""

    name = "onnx"

    def __init__(self, folder: str | Path, voice: Any = None, device: str = "cpu", threads: int | None = None,
                 use_tensorrt_ep: bool = False, vocoder: Any = None, tuning: EngineTuning | None = None) -> None:
        tuning = tuning if tuning is not None else EngineTuning(threads=threads)
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover
            raise BackendUnavailableError("onnxruntime is not installed") from exc
        self.torch_device = resolve_device(device)
        self.device = str(self.torch_device)
        self.folder = Path(folder)
        sidecar = read_sidecar(self.folder)
        self.sidecar = sidecar
        gpt = sidecar["gpt"]
        self.n_layer, n_head, d_model = int(gpt["n_layer"]), int(gpt["n_head"]), int(gpt["d_model"])
        self.vocab_size, self.eos = int(gpt["vocab_size"]), int(gpt["eos"])
        self.top_k_out = int(sidecar["top_k_out"])
        opts = ort_session_options(tuning.threads)
        providers = providers_for(device, use_tensorrt_ep)
        graphs = sidecar["graphs"]
        self.prefill_session = ort.InferenceSession(str(self.folder / graphs["gpt_prefill"]["file"]), opts,
                                                    providers=providers)
        self.step_session = ort.InferenceSession(str(self.folder / graphs["gpt_step"]["file"]), opts,
                                                 providers=providers)
        self.vocoder = vocoder if vocoder is not None else _vocoder_for(voice, self.folder, graphs, device, opts,
                                                                        providers, tuning)
        self.cache = TorchKVCache(self.n_layer, n_head, d_model // n_head, self.torch_device,
                                  huge_pages=tuning.huge_pages)
        self._ort_device = "cuda" if self.torch_device.type == "cuda" else "cpu"
        self._device_id = self.torch_device.index or 0

    # ------------------------------------------------------------------ cache
    def start(self, slots: int, capacity: int) -> None:
        self.cache.allocate(slots, capacity)

    def ensure_capacity(self, needed: int, allow_shrink: bool = False) -> None:
        self.cache.grow(needed, allow_shrink)

    def compact(self, keep: np.ndarray) -> None:
        self.cache.compact(torch.from_numpy(keep.astype(np.int64)).to(self.torch_device))

    def release(self) -> None:
        self.cache.free()

    # ------------------------------------------------------------------ binding helpers
    def _bind_in(self, binding: Any, name: str, tensor: Tensor) -> None:
        binding.bind_input(name, self._ort_device, self._device_id, _NP_TYPES[tensor.dtype], list(tensor.shape),
                           tensor.data_ptr())

    def _bind_out(self, binding: Any, name: str, tensor: Tensor) -> None:
        binding.bind_output(name, self._ort_device, self._device_id, _NP_TYPES[tensor.dtype], list(tensor.shape),
                            tensor.data_ptr())

    def _t(self, array: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.torch_device)

    def _empty(self, *shape: int, dtype: torch.dtype = torch.float32) -> Tensor:
        return torch.empty(shape, dtype=dtype, device=self.torch_device)

    def _candidates(self, b: int) -> tuple[Tensor, Tensor, Tensor]:
        k = min(self.top_k_out, self.vocab_size)
        return self._empty(b, k), self._empty(b, k, dtype=torch.int64), self._empty(b)

    @staticmethod
    def _out(vals: Tensor, idx: Tensor, lse: Tensor) -> Candidates:
        return Candidates(values=vals.cpu().numpy(), indices=idx.cpu().numpy(), lse=lse.cpu().numpy())

    # ------------------------------------------------------------------ GPT
    def prefill(self, slots: np.ndarray, batch: PrefillBatch, return_logits: bool = False) -> Candidates:
        self.ensure_capacity(batch.total_len)
        b, total = len(batch.text_lens), batch.total_len
        binding = self.prefill_session.io_binding()
        feeds = {"phone_ids": batch.phone_ids, "bert": batch.bert, "text_lens": batch.text_lens,
                 "prompt": batch.prompt, "presence": batch.presence, "penalty": batch.penalty,
                 "eos_block": batch.eos_block}
        keep = {name: self._t(arr) for name, arr in feeds.items()}
        for name, tensor in keep.items():
            self._bind_in(binding, name, tensor)
        vals, idx, lse = self._candidates(b)
        for name, tensor in (("top_values", vals), ("top_indices", idx), ("lse", lse)):
            self._bind_out(binding, name, tensor)
        h, hd = self.cache.n_head, self.cache.head_dim
        keys = [self._empty(b, h, hd, total) for _ in range(self.n_layer)]
        values = [self._empty(b, h, total, hd) for _ in range(self.n_layer)]
        for i in range(self.n_layer):
            self._bind_out(binding, f"present_key_{i}", keys[i])
            self._bind_out(binding, f"present_value_{i}", values[i])
        self.prefill_session.run_with_iobinding(binding)
        self.cache.write_rows(self._t(slots.astype(np.int64)), keys, values)
        return self._out(vals, idx, lse)

    def step(self, inputs: StepInputs, return_logits: bool = False) -> Candidates:
        self.ensure_capacity(int(inputs.cache_lens.max()) + 1)
        b = len(inputs.tokens)
        binding = self.step_session.io_binding()
        keep = {"tokens": self._t(inputs.tokens), "positions": self._t(inputs.positions),
                "cache_lens": self._t(inputs.cache_lens), "presence": self._t(inputs.presence),
                "penalty": self._t(inputs.penalty), "eos_block": self._t(inputs.eos_block)}
        for name, tensor in keep.items():
            self._bind_in(binding, name, tensor)
        for i in range(self.n_layer):
            self._bind_in(binding, f"past_key_{i}", self.cache.keys[i])
            self._bind_in(binding, f"past_value_{i}", self.cache.values[i])
        vals, idx, lse = self._candidates(b)
        for name, tensor in (("top_values", vals), ("top_indices", idx), ("lse", lse)):
            self._bind_out(binding, name, tensor)
        h, hd = self.cache.n_head, self.cache.head_dim
        new_k = [self._empty(b, h, hd) for _ in range(self.n_layer)]
        new_v = [self._empty(b, h, hd) for _ in range(self.n_layer)]
        for i in range(self.n_layer):
            self._bind_out(binding, f"new_key_{i}", new_k[i])
            self._bind_out(binding, f"new_value_{i}", new_v[i])
        if self.torch_device.type == "cuda":
            torch.cuda.synchronize(self.torch_device)
        self.step_session.run_with_iobinding(binding)
        self.cache.write_position(keep["cache_lens"], new_k, new_v)
        return self._out(vals, idx, lse)

    # ------------------------------------------------------------------ SoVITS
    def vocode(self, items: list[VocodeItem], speed: float, noise_scale: float,
               seeds: list[int]) -> list[np.ndarray]:
        if self.vocoder is None:
            raise BackendUnavailableError("this backend has no SoVITS model (voice without sovits weights)")
        return self.vocoder.render(items, speed=speed, noise_scale=noise_scale, seeds=seeds)


def _vocoder_for(voice: Any, folder: Path, graphs: dict[str, Any], device: str, opts: Any,
                 providers: list[Any], tuning: EngineTuning) -> Any:
    """ONNX SoVITS when it was exported (speed 1; other speeds use torch), else the torch vocoder."""
    from renderer.backends import torch_vocoder

    fallback = torch_vocoder(voice, device, tuning) if voice is not None else None
    if "sovits_decode" not in graphs or voice is None or getattr(voice, "ge", None) is None:
        return fallback
    from renderer.backends.onnx_vocoder import OnnxVocoder

    return OnnxVocoder(folder / graphs["sovits_decode"]["file"], voice.ge, opts, providers, fallback)
