"""Fast CPU inference path for the SoVITS generator (the HiFi-GAN-style vocoder, ≈ 40.6 GFLOP per
audio second for full-size v2, > 95 % of a SoVITS decode).

What it changes, and why (measured in :mod:`jobs.bench.sovits`):

- **Channels-last layout**: activations live as ``[B, C, 1, T]`` tensors in ``channels_last`` memory
  format and the 1-D convolutions run as 2-D oneDNN convolutions with a height-1 kernel. oneDNN's
  native layout is "channels innermost" (nwc); torch's default ``[B, C, T]`` forces a reorder of every
  input and output around every convolution.
- **Fused post-ops**: ``leaky_relu(conv(x))`` and ``conv(x) + residual`` each run as one oneDNN call
  (``torch.ops.mkldnn._convolution_pointwise``), saving a full pass over the activation per op.
- **Masks only where there is padding**: the reference generator multiplies every activation by a
  0/1 mask at every resolution; here only the padded tail of a shorter row is zeroed in place, and a
  batch without padding (e.g. B=1) does no masking at all. Same values: ``x * 1 == x`` exactly.
- **bf16** (optional): generator weights and activations in bfloat16 (AVX512-BF16 dot products, half
  the memory traffic); ``conv_pre``/``cond`` (which add the ``ge`` conditioning), ``conv_post`` and the
  final ``tanh`` stay float32, as does everything outside the generator (text encoder, flow).

The fast generator holds no parameters or buffers of its own (plain tensor attributes), so the
model's ``state_dict()`` keeps exactly the checkpoint's keys. It runs on CPU only; on other devices
:meth:`SoVITSModel.decode` falls back to the reference generator.
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from renderer.hardware import cpu_has_bf16
from renderer.models.sovits import SoVITSModel
from renderer.models.sovits_modules import LRELU_SLOPE, Generator, ResBlock1, ResBlock2

__all__ = ["Precision", "FastGenerator", "prepare_for_inference", "cpu_supports_bf16", "fused_ops_available"]

Precision = Literal["fp32", "bf16"]
_DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16}


@functools.lru_cache(maxsize=1)
def cpu_supports_bf16() -> bool:
    """True when this CPU has native bf16 dot products (AVX512-BF16 or AMX) that oneDNN uses."""
    try:
        import torch.backends.mkldnn as mkldnn
        if not mkldnn.is_available():
            return False
        return cpu_has_bf16()
    except Exception:  # noqa: BLE001 (a probe: anything odd means "no")
        return False


@functools.lru_cache(maxsize=1)
def fused_ops_available() -> bool:
    """Whether torch exposes oneDNN's fused convolution ops (``mkldnn._convolution_pointwise``)."""
    try:
        x = torch.zeros(1, 2, 1, 4).contiguous(memory_format=torch.channels_last)
        w = torch.zeros(2, 2, 1, 1).contiguous(memory_format=torch.channels_last)
        torch.ops.mkldnn._convolution_pointwise(x, w, None, [0, 0], [1, 1], [1, 1], 1, "none", [], "")
        return True
    except Exception:  # noqa: BLE001
        return False


class _Conv:
    """One 1-D convolution stored as a channels-last height-1 2-D kernel (no nn.Parameter)."""

    def __init__(self, conv: nn.Conv1d, dtype: torch.dtype) -> None:
        w = conv.weight.detach()
        self.weight = w.unsqueeze(2).to(dtype).contiguous(memory_format=torch.channels_last)
        self.bias = None if conv.bias is None else conv.bias.detach().to(dtype).contiguous()
        self.padding = [0, int(conv.padding[0])]  # type: ignore[index]
        self.dilation = [1, int(conv.dilation[0])]

    def __call__(self, x: Tensor, attr: str = "none", residual: Tensor | None = None) -> Tensor:
        """x [B,C,1,T] channels-last -> conv(x) with ``attr`` ('none'|'leaky_relu') or + residual."""
        if not fused_ops_available():
            y = F.conv2d(x, self.weight, self.bias, 1, self.padding, self.dilation)
            if attr == "leaky_relu":
                y = F.leaky_relu(y, LRELU_SLOPE)
            return y if residual is None else y + residual
        if residual is not None:
            return torch.ops.mkldnn._convolution_pointwise(
                x, residual, self.weight, self.bias, self.padding, [1, 1], self.dilation, 1, "add", 1.0,
                None, [], None)
        scalars = [LRELU_SLOPE] if attr == "leaky_relu" else []
        return torch.ops.mkldnn._convolution_pointwise(
            x, self.weight, self.bias, self.padding, [1, 1], self.dilation, 1, attr, scalars, "")


class _UpConv:
    """A ConvTranspose1d as channels-last height-1 conv_transpose2d."""

    def __init__(self, conv: nn.ConvTranspose1d, dtype: torch.dtype) -> None:
        self.weight = conv.weight.detach().unsqueeze(2).to(dtype).contiguous(memory_format=torch.channels_last)
        self.bias = None if conv.bias is None else conv.bias.detach().to(dtype).contiguous()
        self.stride = (1, int(conv.stride[0]))
        self.padding = (0, int(conv.padding[0]))  # type: ignore[index]

    def __call__(self, x: Tensor) -> Tensor:
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding)


def _zero_tails(x: Tensor, lengths: list[int] | None) -> Tensor:
    """In place: x[i, ..., lengths[i]:] = 0 (the reference's ``x * mask``); None = no padding."""
    if lengths is not None:
        t = x.shape[-1]
        for i, n in enumerate(lengths):
            if n < t:
                x[i, ..., n:] = 0
    return x


class FastGenerator(nn.Module):
    """Same function as :class:`Generator` (B rows, masks from ``lengths``), faster on CPU."""

    def __init__(self, gen: Generator, precision: Precision = "fp32", window_frames: int = 0) -> None:
        super().__init__()
        if precision not in _DTYPES:
            raise ValueError(f"precision must be one of {sorted(_DTYPES)}, got {precision!r}")
        self.precision = precision
        self.dtype = _DTYPES[precision]
        self.rates = list(gen.rates)
        self.samples_per_frame = math.prod(self.rates)
        self.num_kernels = gen.num_kernels
        #: frames generated at once for long unpadded rows (0 = the whole row); see :meth:`_windowed`
        self.margin_frames = receptive_field_frames(gen) + 2
        self.window_frames = window_frames if _window_aligned(gen) else 0
        # conv_pre/cond/conv_post are kept as the reference modules (float32, [B,C,T]).
        self._ref = [gen]  # a list: not registered as a submodule, so no state_dict entries
        self.ups = [_UpConv(u, self.dtype) for u in gen.ups]  # type: ignore[arg-type]
        self.blocks: list[tuple[str, list[tuple[_Conv, _Conv | None]]]] = []
        for rb in gen.resblocks:
            if isinstance(rb, ResBlock1):
                pairs = [(_Conv(c1, self.dtype), _Conv(c2, self.dtype))  # type: ignore[arg-type]
                         for c1, c2 in zip(rb.convs1, rb.convs2, strict=True)]
                self.blocks.append(("1", pairs))  # type: ignore[arg-type]
            elif isinstance(rb, ResBlock2):
                self.blocks.append(("2", [(_Conv(c, self.dtype), None) for c in rb.convs]))  # type: ignore[arg-type]
            else:
                raise TypeError(f"unknown resblock type {type(rb).__name__}")

    def forward(self, x: Tensor, g: Tensor | None, lengths: Tensor | None = None) -> Tensor:
        """x [B,inter,F] f32, g [B,gin,1], lengths [B] frames (None = all valid) -> [B,1,F*prod(rates)] f32.

        Rows without padding longer than ``window_frames`` (plus the margins) are generated a window at a
        time (:meth:`_windowed`): the same audio, with the memory of one window instead of the whole chunk.
        """
        total = x.shape[2]
        valid = total if lengths is None else int(lengths.max())
        if not (self.window_frames and valid > self.window_frames + 2 * self.margin_frames):
            return self._whole(x, g, lengths)
        if x.shape[0] == 1 and valid < total:
            # one row padded to its length bucket: the masked tail is what zero padding past the end gives,
            # so the valid frames alone make the same audio; the tail's audio is silence (callers cut it)
            audio = self._windowed(x[:, :, :valid], g)
            return F.pad(audio, (0, (total - valid) * self.samples_per_frame))
        if _padded_lengths(lengths, total) is None:
            return self._windowed(x, g)
        # a ragged batch with a long row: row by row, each in windows (batching long rows saves little)
        rows = [self.forward(x[i : i + 1], g if g is None or g.shape[0] == 1 else g[i : i + 1],
                             None if lengths is None else lengths[i : i + 1]) for i in range(x.shape[0])]
        return torch.cat(rows, dim=0)

    def _windowed(self, x: Tensor, g: Tensor | None) -> Tensor:
        """Each window of ``window_frames`` is generated with ``margin_frames`` of its neighbours on both
        sides (at least the receptive field, :func:`receptive_field_frames`), which are then cut off: every
        output sample kept saw exactly the inputs it sees in the whole chunk, so the audio is the same
        (within float rounding: oneDNN may pick another kernel for another length)."""
        total, step, margin = x.shape[2], self.window_frames, self.margin_frames
        per_frame = self.samples_per_frame
        pieces = []
        for start in range(0, total, step):
            stop = min(start + step, total)
            lo, hi = max(0, start - margin), min(total, stop + margin)
            audio = self._whole(x[:, :, lo:hi], g, None)
            pieces.append(audio[:, :, (start - lo) * per_frame : (stop - lo) * per_frame])
        return torch.cat(pieces, dim=2)

    def _whole(self, x: Tensor, g: Tensor | None, lengths: Tensor | None) -> Tensor:
        gen = self._ref[0]
        with torch.autocast("cpu", enabled=False):
            h = gen.conv_pre(x.float())
            if g is not None and gen.cond is not None:
                h = h + gen.cond(g.float())
            frames = _padded_lengths(lengths, h.shape[2])
            _zero_tails(h, frames)
            h = h.unsqueeze(2).to(self.dtype).contiguous(memory_format=torch.channels_last)
            for i, up in enumerate(self.ups):
                h = up(F.leaky_relu(h, LRELU_SLOPE))
                frames = None if frames is None else [n * self.rates[i] for n in frames]
                _zero_tails(h, frames)
                h = self._stage(h, i, frames)
            out = h.squeeze(2).float()
            return torch.tanh(gen.conv_post(F.leaky_relu(out)))

    def _stage(self, x: Tensor, stage: int, lengths: list[int] | None) -> Tensor:
        """Mean of the stage's resblocks on x [B,C,1,T] (tails zeroed like the reference's masks)."""
        acc: Tensor | None = None
        for j in range(self.num_kernels):
            kind, convs = self.blocks[stage * self.num_kernels + j]
            r = _resblock1(x, convs, lengths) if kind == "1" else _resblock2(x, convs, lengths)
            acc = r if acc is None else acc.add_(r)
        assert acc is not None
        _zero_tails(acc, lengths)
        return acc.div_(self.num_kernels)


def _resblock1(x: Tensor, convs: list[tuple[_Conv, _Conv | None]], lengths: list[int] | None) -> Tensor:
    for c1, c2 in convs:
        xt = _zero_tails(F.leaky_relu(x, LRELU_SLOPE), lengths)
        xt = _zero_tails(c1(xt, "leaky_relu"), lengths)
        assert c2 is not None
        x = c2(xt, residual=x)
    return x


def _resblock2(x: Tensor, convs: list[tuple[_Conv, _Conv | None]], lengths: list[int] | None) -> Tensor:
    for c, _ in convs:
        xt = _zero_tails(F.leaky_relu(x, LRELU_SLOPE), lengths)
        x = c(xt, residual=x)
    return x


def receptive_field_frames(gen: Generator) -> int:
    """Input frames on each side that one output sample of ``gen`` can depend on (an upper bound).

    Summed stage by stage, each in the units of its own sample rate and rounded up to whole frames:
    conv_pre, each transposed convolution (an output sample sees ceil(kernel/stride) inputs), the widest
    resblock of each stage (its convolutions in sequence), conv_post."""
    frames = 0
    scale = 1  # samples of the current stage per input frame

    def conv_reach(conv: nn.Module) -> int:
        kernel, dilation = int(conv.kernel_size[0]), int(conv.dilation[0])  # type: ignore[index]
        return (kernel - 1) * dilation // 2 + 1

    frames += conv_reach(gen.conv_pre)
    for i, up in enumerate(gen.ups):
        frames += math.ceil(math.ceil(int(up.kernel_size[0]) / int(up.stride[0])) / scale)  # type: ignore[index]
        scale *= int(up.stride[0])  # type: ignore[index]
        widest = 0
        for rb in list(gen.resblocks)[i * gen.num_kernels : (i + 1) * gen.num_kernels]:
            convs = list(getattr(rb, "convs1", [])) + list(getattr(rb, "convs2", [])) + list(getattr(rb, "convs", []))
            widest = max(widest, sum(conv_reach(c) for c in convs))
        frames += math.ceil(widest / scale)
    frames += math.ceil(conv_reach(gen.conv_post) / scale)
    return frames


def _window_aligned(gen: Generator) -> bool:
    """Windows line up with the whole output only if every upsampler makes exactly stride x its input."""
    return all((int(u.kernel_size[0]) - int(u.stride[0])) == 2 * int(u.padding[0]) for u in gen.ups)  # type: ignore[index]


def _padded_lengths(lengths: Tensor | None, size: int) -> list[int] | None:
    """Row lengths as a list, or None when no row is shorter than ``size`` (nothing to mask)."""
    if lengths is None:
        return None
    values = [int(n) for n in lengths.tolist()]
    return values if any(n < size for n in values) else None


def prepare_for_inference(model: SoVITSModel, precision: Precision = "fp32", compile: bool = False,
                          window_s: float = 0.0) -> SoVITSModel:
    """Make ``model.decode`` use the fast CPU generator (in place; returns ``model``; idempotent).

    ``precision='bf16'`` runs the generator in bfloat16 (raises ValueError if the CPU lacks native bf16,
    see :func:`cpu_supports_bf16`). ``compile=True`` instead installs ``torch.compile`` (inductor with
    weight freezing) of the reference generator: measured slower than the fast generator, with a long
    compilation per new input shape (docs/benchmarks-history.md), so it exists for comparison only. The reference
    modules and ``state_dict()`` are untouched; the model is put in eval mode without gradients.
    ``window_s`` > 0 generates long chunks that many seconds at a time (:meth:`FastGenerator._windowed`).
    """
    if precision not in _DTYPES:
        raise ValueError(f"precision must be one of {sorted(_DTYPES)}, got {precision!r}")
    if precision == "bf16" and not cpu_supports_bf16():
        raise ValueError("this CPU has no native bf16 (AVX512-BF16/AMX); use precision='fp32'")
    model.eval()
    model.requires_grad_(False)
    current = model.fast_dec
    if compile:
        if precision != "fp32":
            raise ValueError("compile=True supports precision='fp32' only")
        if getattr(current, "_sovits_compiled", False) is not True:
            compiled = torch.compile(model.dec, options={"freezing": True})
            compiled._sovits_compiled = True  # type: ignore[attr-defined]
            model.fast_dec = compiled  # type: ignore[assignment]
        return model
    frames_per_s = model.cfg.sampling_rate / model.cfg.samples_per_frame
    window_frames = max(0, round(window_s * frames_per_s))
    if not (isinstance(current, FastGenerator) and current.precision == precision
            and current.window_frames == (window_frames if _window_aligned(model.dec) else 0)):
        model.fast_dec = FastGenerator(model.dec, precision, window_frames)
    return model
