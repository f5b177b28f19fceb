"""Deterministic ONNX export of a voice's prefill, step and vocoder graphs (+ a sidecar JSON).

Graphs (opset :data:`OPSET`, named inputs/outputs, dynamic batch and length axes):

* ``gpt_prefill.onnx``: phone_ids [b,X], bert [b,1024,X], text_lens [b], prompt [b,Y], presence [b,V],
  penalty [b], eos_block [b] -> top_values [b,K], top_indices [b,K], lse [b],
  present_key_{l} [b,H,hd,X+Y], present_value_{l} [b,H,X+Y,hd]
* ``gpt_step.onnx``: tokens [B], positions [B], cache_lens [B], presence, penalty, eos_block,
  past_key_{l} [B,H,hd,cap], past_value_{l} [B,H,cap,hd] -> top_values, top_indices, lse,
  new_key_{l} [B,H,hd], new_value_{l} [B,H,hd]   (the runtime writes the new K/V at cache_lens)
* ``sovits_decode.onnx`` (speed 1): codes [b,T], code_lengths [b], phones [b,N], phone_lengths [b],
  ge [b,gin,1], noise [b,inter,2T], noise_scale [] -> audio [b,samples], audio_lengths [b]

Every graph is run with ONNX Runtime on random inputs and compared with torch before the sidecar marks
it usable; the sidecar also records each file's SHA-256 so a backend refuses stale or edited graphs.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from renderer.engine.batched_gpt import BatchedGPT
from renderer.errors import BackendUnavailableError, RendererError
from renderer.files import sha256_file
from renderer.models.gpt import BERT_DIM

#: Fixed ONNX opset of every exported graph.
OPSET = 17
#: Sidecar format version.
EXPORT_FORMAT = 1
#: Candidates returned per row by exported GPT graphs (top_k up to this minus a tie margin).
ONNX_TOP_K = 128
#: Largest |ONNX - torch| accepted on random inputs (float32 kernels differ only in summation order).
VERIFY_ATOL = {"gpt_prefill": 1e-4, "gpt_step": 1e-4, "sovits_decode": 1e-3}


class PrefillGraph(nn.Module):
    """Flat-output wrapper of :meth:`BatchedGPT.prefill` for export."""

    def __init__(self, gpt: BatchedGPT) -> None:
        super().__init__()
        self.gpt = gpt

    def forward(self, phone_ids: Tensor, bert: Tensor, text_lens: Tensor, prompt: Tensor, presence: Tensor,
                penalty: Tensor, eos_block: Tensor) -> tuple[Tensor, ...]:
        vals, idx, lse, keys, values, _ = self.gpt.prefill(phone_ids, bert, text_lens, prompt, presence, penalty,
                                                           eos_block)
        out: list[Tensor] = [vals, idx, lse]
        for k, v in zip(keys, values, strict=True):
            out += [k, v]
        return tuple(out)


class StepGraph(nn.Module):
    """Flat-input/output wrapper of :meth:`BatchedGPT.step` for export."""

    def __init__(self, gpt: BatchedGPT) -> None:
        super().__init__()
        self.gpt = gpt

    def forward(self, tokens: Tensor, positions: Tensor, cache_lens: Tensor, presence: Tensor, penalty: Tensor,
                eos_block: Tensor, *past: Tensor) -> tuple[Tensor, ...]:
        vals, idx, lse, new_k, new_v, _ = self.gpt.step(tokens, positions, cache_lens, presence, penalty, eos_block,
                                                        list(past[0::2]), list(past[1::2]))
        out: list[Tensor] = [vals, idx, lse]
        for k, v in zip(new_k, new_v, strict=True):
            out += [k, v]
        return tuple(out)


class VocoderGraph(nn.Module):
    """SoVITS decode at speed 1 with injected noise (the runtime draws per-chunk noise itself)."""

    def __init__(self, sovits: nn.Module) -> None:
        super().__init__()
        self.sovits = sovits

    def forward(self, codes: Tensor, code_lengths: Tensor, phones: Tensor, phone_lengths: Tensor, ge: Tensor,
                noise: Tensor, noise_scale: Tensor) -> tuple[Tensor, Tensor]:
        return self.sovits.decode(codes, code_lengths, phones, phone_lengths, ge,  # type: ignore[operator]
                                  noise_scale=noise_scale, speed=1.0, noise=noise)


@dataclass(frozen=True)
class GraphSpec:
    """Names and dynamic axes of one exported graph."""

    name: str
    inputs: list[str]
    outputs: list[str]
    dynamic_axes: dict[str, dict[int, str]]


def prefill_spec(n_layer: int) -> GraphSpec:
    inputs = ["phone_ids", "bert", "text_lens", "prompt", "presence", "penalty", "eos_block"]
    outputs = ["top_values", "top_indices", "lse"]
    axes: dict[str, dict[int, str]] = {"phone_ids": {0: "batch", 1: "text"}, "bert": {0: "batch", 2: "text"},
                                       "text_lens": {0: "batch"}, "prompt": {0: "batch", 1: "prompt"},
                                       "presence": {0: "batch"}, "penalty": {0: "batch"}, "eos_block": {0: "batch"},
                                       "top_values": {0: "batch"}, "top_indices": {0: "batch"}, "lse": {0: "batch"}}
    for i in range(n_layer):
        outputs += [f"present_key_{i}", f"present_value_{i}"]
        axes[f"present_key_{i}"] = {0: "batch", 3: "total"}
        axes[f"present_value_{i}"] = {0: "batch", 2: "total"}
    return GraphSpec("gpt_prefill", inputs, outputs, axes)


def step_spec(n_layer: int) -> GraphSpec:
    inputs = ["tokens", "positions", "cache_lens", "presence", "penalty", "eos_block"]
    outputs = ["top_values", "top_indices", "lse"]
    axes: dict[str, dict[int, str]] = {n: {0: "batch"} for n in inputs + outputs}
    for i in range(n_layer):
        inputs += [f"past_key_{i}", f"past_value_{i}"]
        outputs += [f"new_key_{i}", f"new_value_{i}"]
        axes[f"past_key_{i}"] = {0: "batch", 3: "capacity"}
        axes[f"past_value_{i}"] = {0: "batch", 2: "capacity"}
        axes[f"new_key_{i}"] = {0: "batch"}
        axes[f"new_value_{i}"] = {0: "batch"}
    return GraphSpec("gpt_step", inputs, outputs, axes)


def vocoder_spec() -> GraphSpec:
    inputs = ["codes", "code_lengths", "phones", "phone_lengths", "ge", "noise", "noise_scale"]
    axes = {"codes": {0: "batch", 1: "tokens"}, "code_lengths": {0: "batch"}, "phones": {0: "batch", 1: "phones"},
            "phone_lengths": {0: "batch"}, "ge": {0: "batch"}, "noise": {0: "batch", 2: "frames"},
            "audio": {0: "batch", 1: "samples"}, "audio_lengths": {0: "batch"}}
    return GraphSpec("sovits_decode", inputs, ["audio", "audio_lengths"], axes)


# ---------------------------------------------------------------------------------------------- inputs
def random_prefill_inputs(gpt: BatchedGPT, b: int = 3, x: int = 11, y: int = 7, seed: int = 0) -> tuple[Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    d = gpt.config
    lens = torch.randint(2, x + 1, (b,), generator=g)
    lens[0] = x
    presence = (torch.rand(b, d.vocab_size, generator=g) < 0.02).float()
    return (torch.randint(0, d.phoneme_vocab_size, (b, x), generator=g), torch.randn(b, BERT_DIM, x, generator=g),
            lens, torch.randint(0, 1024, (b, y), generator=g), presence, torch.full((b,), 1.35),
            torch.tensor([1.0] + [0.0] * (b - 1)))


def random_step_inputs(gpt: BatchedGPT, b: int = 3, cap: int = 24, seed: int = 0) -> tuple[Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    d = gpt.config
    past: list[Tensor] = []
    for _ in range(d.n_layer):
        past += [torch.randn(b, d.n_head, d.head_dim, cap, generator=g),
                 torch.randn(b, d.n_head, cap, d.head_dim, generator=g)]
    lens = torch.randint(1, cap, (b,), generator=g)
    presence = (torch.rand(b, d.vocab_size, generator=g) < 0.02).float()
    return (torch.randint(0, 1024, (b,), generator=g), torch.randint(0, 300, (b,), generator=g), lens, presence,
            torch.full((b,), 1.35), torch.tensor([0.0] * (b - 1) + [1.0]), *past)


def random_vocoder_inputs(sovits: nn.Module, ge: Tensor, b: int = 2, t: int = 9, n: int = 7,
                          seed: int = 0) -> tuple[Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    inter = int(getattr(sovits, "cfg").inter_channels)  # noqa: B009 (untyped nn.Module attr)
    code_lens = torch.tensor([t] + [max(1, t - 3)] * (b - 1))
    phone_lens = torch.tensor([n] + [max(1, n - 2)] * (b - 1))
    return (torch.randint(0, 1024, (b, t), generator=g), code_lens, torch.randint(1, 732, (b, n), generator=g),
            phone_lens, ge.reshape(1, -1, 1).expand(b, -1, -1).contiguous(),
            torch.randn(b, inter, 2 * t, generator=g), torch.tensor(0.5))


# ---------------------------------------------------------------------------------------------- export
def export_graph(module: nn.Module, args: tuple[Tensor, ...], spec: GraphSpec, path: Path) -> None:
    """TorchScript-based export (deterministic for the same weights and inputs)."""
    torch.manual_seed(0)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), input_names=spec.inputs, output_names=spec.outputs,
                          dynamic_axes=spec.dynamic_axes, opset_version=OPSET, do_constant_folding=True,
                          dynamo=False)


def verify_graph(module: nn.Module, path: Path, spec: GraphSpec, args: tuple[Tensor, ...]) -> float:
    """Max |ORT - torch| over every float output (integer outputs must match exactly)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {name: a.numpy() for name, a in zip(spec.inputs, args, strict=True)}
    got = session.run(spec.outputs, feeds)
    with torch.no_grad():
        want = module(*args)
    worst = 0.0
    for name, g, w in zip(spec.outputs, got, want, strict=True):
        w_np = w.numpy()
        if g.shape != w_np.shape:
            raise RendererError(f"exported graph {path.name}: output {name} has shape {g.shape}, torch {w_np.shape}")
        if np.issubdtype(w_np.dtype, np.integer) and name != "top_indices":
            if not np.array_equal(g, w_np):
                raise RendererError(f"exported graph {path.name}: integer output {name} differs from torch")
        elif name != "top_indices":
            worst = max(worst, float(np.abs(g - w_np).max()) if g.size else 0.0)
    return worst


def _export_one(name: str, module: nn.Module, args: tuple[Tensor, ...], spec: GraphSpec, out_dir: Path,
                check_args: tuple[Tensor, ...]) -> dict[str, Any]:
    path = out_dir / f"{name}.onnx"
    export_graph(module, args, spec, path)
    diff = verify_graph(module, path, spec, check_args)
    if diff > VERIFY_ATOL[name]:
        path.unlink()
        raise RendererError(f"exported {name} differs from torch by {diff:.2e} (> {VERIFY_ATOL[name]:.0e}); "
                            "the graph was discarded")
    return {"file": path.name, "sha256": sha256_file(path), "inputs": spec.inputs, "outputs": spec.outputs,
            "verified_max_abs_diff": diff, "tolerance": VERIFY_ATOL[name]}


def export_voice_onnx(voice: Any, out_dir: str | Path, include_vocoder: bool = True) -> Path:
    """Export the voice's GPT (and SoVITS) graphs into ``out_dir``; returns the sidecar path."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError as exc:  # pragma: no cover - onnxruntime is a core dependency
        raise BackendUnavailableError("onnxruntime is not installed; ONNX export cannot be verified") from exc
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    gpt = BatchedGPT.from_checkpoint(voice.gpt_path, top_k_out=ONNX_TOP_K)
    d = gpt.config
    graphs = {
        "gpt_prefill": _export_one("gpt_prefill", PrefillGraph(gpt), random_prefill_inputs(gpt),
                                   prefill_spec(d.n_layer), out, random_prefill_inputs(gpt, b=4, x=13, y=5, seed=1)),
        "gpt_step": _export_one("gpt_step", StepGraph(gpt), random_step_inputs(gpt), step_spec(d.n_layer), out,
                                random_step_inputs(gpt, b=5, cap=40, seed=1)),
    }
    vocoder_error = None
    if include_vocoder and getattr(voice, "sovits_path", None) is not None and getattr(voice, "ge", None) is not None:
        from renderer.models.sovits import load_sovits

        sovits, _cfg, _ckpt = load_sovits(voice.sovits_path)
        ge = torch.as_tensor(np.asarray(voice.ge, dtype=np.float32))
        try:
            graphs["sovits_decode"] = _export_one(
                "sovits_decode", VocoderGraph(sovits), random_vocoder_inputs(sovits, ge), vocoder_spec(), out,
                random_vocoder_inputs(sovits, ge, b=3, t=13, n=5, seed=1))
        except Exception as exc:  # noqa: BLE001 - the vocoder graph is optional; the backend falls back to torch
            vocoder_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
    sidecar = {
        "format": EXPORT_FORMAT, "opset": OPSET, "torch": torch.__version__, "top_k_out": ONNX_TOP_K,
        "gpt": {"d_model": d.d_model, "n_head": d.n_head, "n_layer": d.n_layer, "vocab_size": d.vocab_size,
                "eos": d.eos, "checkpoint_sha256": sha256_file(Path(voice.gpt_path))},
        "sovits_checkpoint_sha256": (sha256_file(Path(voice.sovits_path))
                                     if getattr(voice, "sovits_path", None) is not None else None),
        "graphs": graphs, "verified": True, "sovits_decode_error": vocoder_error,
    }
    path = out / "export.json"
    path.write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    return path


def read_sidecar(folder: str | Path) -> dict[str, Any]:
    """The sidecar of an export folder, checked: verified, and every graph file unchanged."""
    folder = Path(folder)
    path = folder / "export.json"
    if not path.is_file():
        raise BackendUnavailableError(f"{folder}: no export.json; run `render voice export-onnx NAME` first")
    sidecar = json.loads(path.read_text())
    if sidecar.get("format") != EXPORT_FORMAT or not sidecar.get("verified"):
        raise BackendUnavailableError(f"{path}: unsupported or unverified export; export the voice again")
    for name, graph in sidecar["graphs"].items():
        file = folder / graph["file"]
        if not file.is_file() or sha256_file(file) != graph["sha256"]:
            raise BackendUnavailableError(f"{file}: missing or changed since export ({name}); export the voice again")
    return sidecar


def default_export_dir(voice: Any) -> Path:
    """``<voice folder>/onnx``: where ``render voice export-onnx`` writes and ``--backend onnx`` looks."""
    folder = getattr(voice, "folder", None)
    if folder is None:
        raise RendererError("this voice has no folder; pass an explicit output directory")
    return Path(folder) / "onnx"
