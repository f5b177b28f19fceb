"""SoVITS building blocks: coupling flow, HiFi-GAN-style generator, reference encoder, quantizer.

Channel-first ``[B, C, T]`` tensors with float masks ``[B, 1, T]``. Weight-normalised convolutions
are plain convolutions here: :func:`renderer.models.sovits.fold_weight_norm` turns each stored
``weight_g``/``weight_v`` pair into the effective ``weight`` at load time.
"""

from __future__ import annotations

import math
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LRELU_SLOPE = 0.1
#: Reference encoder: spectrogram bins read, hidden width, heads, conv kernel.
REF_BINS = 704
REF_HIDDEN = 128
REF_HEADS = 2
REF_KERNEL = 5


def get_padding(kernel_size: int, dilation: int = 1) -> int:
    return (kernel_size * dilation - dilation) // 2


# ----------------------------------------------------------------------------- flow

class WN(nn.Module):
    """Gated dilated residual stack (WaveNet-like) conditioned on g."""

    def __init__(self, hidden: int, kernel_size: int, dilation_rate: int, n_layers: int, gin: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.n_layers = n_layers
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        for i in range(n_layers):
            dilation = dilation_rate**i
            self.in_layers.append(nn.Conv1d(hidden, 2 * hidden, kernel_size, dilation=dilation,
                                            padding=get_padding(kernel_size, dilation)))
            out = 2 * hidden if i < n_layers - 1 else hidden
            self.res_skip_layers.append(nn.Conv1d(hidden, out, 1))
        # Registered last, like upstream (this fixes the stored key order).
        self.cond_layer = nn.Conv1d(gin, 2 * hidden * n_layers, 1) if gin else None

    def forward(self, x: Tensor, mask: Tensor, g: Tensor | None) -> Tensor:
        output = torch.zeros_like(x)
        cond = self.cond_layer(g) if (g is not None and self.cond_layer is not None) else None
        n = self.hidden
        for i, (inl, rs) in enumerate(zip(self.in_layers, self.res_skip_layers, strict=True)):
            x_in = inl(x)
            if cond is not None:
                x_in = x_in + cond[:, i * 2 * n:(i + 1) * 2 * n, :]
            acts = torch.tanh(x_in[:, :n]) * torch.sigmoid(x_in[:, n:])
            res_skip = rs(acts)
            if i < self.n_layers - 1:
                x = (x + res_skip[:, :n]) * mask
                output = output + res_skip[:, n:]
            else:
                output = output + res_skip
        return output * mask


class ResidualCouplingLayer(nn.Module):
    """Mean-only affine coupling: x1 <- x1 - m(x0) in reverse."""

    def __init__(self, channels: int, hidden: int, kernel_size: int, dilation_rate: int, n_layers: int,
                 gin: int) -> None:
        super().__init__()
        self.half_channels = channels // 2
        self.pre = nn.Conv1d(self.half_channels, hidden, 1)
        self.enc = WN(hidden, kernel_size, dilation_rate, n_layers, gin)
        self.post = nn.Conv1d(hidden, self.half_channels, 1)

    def reverse(self, x: Tensor, mask: Tensor, g: Tensor | None) -> Tensor:
        x0, x1 = torch.split(x, [self.half_channels, self.half_channels], dim=1)
        h = self.pre(x0) * mask
        h = self.enc(h, mask, g)
        m = self.post(h) * mask
        x1 = (x1 - m) * mask
        return torch.cat([x0, x1], dim=1)


class Flip(nn.Module):
    """Reverses the channel order (no parameters; keeps the upstream module indices)."""

    def reverse(self, x: Tensor, mask: Tensor, g: Tensor | None) -> Tensor:
        return torch.flip(x, [1])


class ResidualCouplingBlock(nn.Module):
    """4 coupling layers interleaved with flips (``flow.flows.{0,2,4,6}``)."""

    def __init__(self, channels: int, hidden: int, gin: int, n_flows: int = 4) -> None:
        super().__init__()
        self.flows = nn.ModuleList()
        for _ in range(n_flows):
            self.flows.append(ResidualCouplingLayer(channels, hidden, 5, 1, 4, gin))
            self.flows.append(Flip())

    def reverse(self, x: Tensor, mask: Tensor, g: Tensor | None) -> Tensor:
        for flow in reversed(self.flows):
            x = cast(ResidualCouplingLayer | Flip, flow).reverse(x, mask, g)
        return x


# ----------------------------------------------------------------------------- generator

class ResBlock1(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilation: tuple[int, ...]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=get_padding(kernel_size, d))
            for d in dilation[:3])
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, padding=get_padding(kernel_size, 1)) for _ in dilation[:3])

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        for c1, c2 in zip(self.convs1, self.convs2, strict=True):
            xt = F.leaky_relu(x, LRELU_SLOPE)
            if mask is not None:
                xt = xt * mask
            xt = F.leaky_relu(c1(xt), LRELU_SLOPE)
            if mask is not None:
                xt = xt * mask
            x = c2(xt) + x
        return x * mask if mask is not None else x


class ResBlock2(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilation: tuple[int, ...]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=get_padding(kernel_size, d))
            for d in dilation[:2])

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        for c in self.convs:
            xt = F.leaky_relu(x, LRELU_SLOPE)
            if mask is not None:
                xt = xt * mask
            x = c(xt) + x
        return x * mask if mask is not None else x


class Generator(nn.Module):
    """Transposed-conv upsampler with multi-receptive-field residual blocks, ends in tanh.

    Masks are re-applied at every resolution so a padded batch row equals its unpadded B=1 run
    (upstream's zero padding beyond the end of the signal).
    """

    def __init__(self, in_channels: int, resblock: str, kernel_sizes: list[int], dilations: list[list[int]],
                 rates: list[int], initial: int, up_kernels: list[int], gin: int) -> None:
        super().__init__()
        self.rates = list(rates)
        self.num_kernels = len(kernel_sizes)
        self.conv_pre = nn.Conv1d(in_channels, initial, 7, 1, padding=3)
        block = ResBlock1 if str(resblock) == "1" else ResBlock2
        self.ups = nn.ModuleList(
            nn.ConvTranspose1d(initial // 2**i, initial // 2 ** (i + 1), k, u, padding=(k - u) // 2)
            for i, (u, k) in enumerate(zip(rates, up_kernels, strict=True)))
        self.resblocks = nn.ModuleList()
        ch = initial
        for i in range(len(self.ups)):
            ch = initial // 2 ** (i + 1)
            for k, d in zip(kernel_sizes, dilations, strict=True):
                self.resblocks.append(block(ch, k, tuple(d)))
        self.conv_post = nn.Conv1d(ch, 1, 7, 1, padding=3, bias=False)
        self.cond = nn.Conv1d(gin, initial, 1) if gin else None

    def forward(self, x: Tensor, g: Tensor | None, lengths: Tensor | None = None) -> Tensor:
        """x [B,inter,F], g [B,gin,1], lengths [B] frames (None = all valid) -> [B,1,F*prod(rates)]."""
        x = self.conv_pre(x)
        if g is not None and self.cond is not None:
            x = x + self.cond(g)
        frames = lengths
        mask = _frame_mask(frames, x.shape[2]) if frames is not None else None
        if mask is not None:
            x = x * mask
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            if frames is not None:
                frames = frames * self.rates[i]
                mask = _frame_mask(frames, x.shape[2])
                x = x * mask
            xs = None
            for j in range(self.num_kernels):
                r = self.resblocks[i * self.num_kernels + j](x, mask)
                xs = r if xs is None else xs + r
            assert xs is not None
            x = xs / self.num_kernels
        x = self.conv_post(F.leaky_relu(x))
        return torch.tanh(x)


def _frame_mask(lengths: Tensor, size: int) -> Tensor:
    return (torch.arange(size, device=lengths.device).view(1, -1) < lengths.view(-1, 1)).unsqueeze(1).float()


# ----------------------------------------------------------------------------- reference encoder

class _LinearNorm(nn.Module):
    def __init__(self, i: int, o: int) -> None:
        super().__init__()
        self.fc = nn.Linear(i, o)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(x)


class _Mish(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x * torch.tanh(F.softplus(x))


class _Dropout(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x


class _ConvNorm(nn.Module):
    def __init__(self, i: int, o: int, k: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(i, o, k, padding=(k - 1) // 2)


class _Conv1dGLU(nn.Module):
    def __init__(self, channels: int, k: int) -> None:
        super().__init__()
        self.channels = channels
        self.conv1 = _ConvNorm(channels, 2 * channels, k)

    def forward(self, x: Tensor) -> Tensor:
        a, b = torch.split(self.conv1.conv(x), self.channels, dim=1)
        return x + a * torch.sigmoid(b)


class _StyleAttention(nn.Module):
    """Self-attention with residual; scores divided by sqrt(d_model) (not sqrt(d_k)) as upstream."""

    def __init__(self, d_model: int, n_head: int) -> None:
        super().__init__()
        self.n_head = n_head
        self.d_k = d_model // n_head
        self.temperature = math.sqrt(d_model)
        self.w_qs = nn.Linear(d_model, d_model)
        self.w_ks = nn.Linear(d_model, d_model)
        self.w_vs = nn.Linear(d_model, d_model)
        self.fc = nn.Linear(d_model, d_model)

    def forward(self, x: Tensor, pad: Tensor | None) -> Tensor:
        """x [B,T,d]; pad bool [B,T] (True = padding) -> [B,T,d]."""
        b, t, d = x.shape
        h, dk = self.n_head, self.d_k
        q = self.w_qs(x).view(b, t, h, dk).transpose(1, 2)
        k = self.w_ks(x).view(b, t, h, dk).transpose(1, 2)
        v = self.w_vs(x).view(b, t, h, dk).transpose(1, 2)
        scores = (q @ k.transpose(-2, -1)) / self.temperature
        if pad is not None:
            scores = scores.masked_fill(pad.view(b, 1, 1, t), float("-inf"))
        out = torch.softmax(scores, dim=-1) @ v
        out = out.transpose(1, 2).reshape(b, t, d)
        return self.fc(out) + x


class MelStyleEncoder(nn.Module):
    """Reference encoder: spectrogram bins [B,704,T] -> global style vector [B,out,1]."""

    def __init__(self, n_bins: int, out_dim: int) -> None:
        super().__init__()
        self.spectral = nn.Sequential(_LinearNorm(n_bins, REF_HIDDEN), _Mish(), _Dropout(),
                                      _LinearNorm(REF_HIDDEN, REF_HIDDEN), _Mish(), _Dropout())
        self.temporal = nn.Sequential(_Conv1dGLU(REF_HIDDEN, REF_KERNEL), _Conv1dGLU(REF_HIDDEN, REF_KERNEL))
        self.slf_attn = _StyleAttention(REF_HIDDEN, REF_HEADS)
        self.fc = _LinearNorm(REF_HIDDEN, out_dim)

    def forward(self, spec: Tensor, mask: Tensor | None = None) -> Tensor:
        """spec [B,bins,T]; mask float [B,1,T] (1 = valid) or None -> [B,out,1] (masked time average)."""
        x = spec.transpose(1, 2)
        pad = (mask.squeeze(1) == 0) if mask is not None else None
        x = self.spectral(x)
        x = self.temporal(x.transpose(1, 2)).transpose(1, 2)
        if pad is not None:
            x = x.masked_fill(pad.unsqueeze(-1), 0)
        x = self.fc(self.slf_attn(x, pad))
        if pad is None:
            w = x.mean(dim=1)
        else:
            w = x.masked_fill(pad.unsqueeze(-1), 0).sum(dim=1) / (~pad).sum(dim=1, keepdim=True)
        return w.unsqueeze(-1)


# ----------------------------------------------------------------------------- quantizer

class _Codebook(nn.Module):
    def __init__(self, bins: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("inited", torch.ones(1))
        self.register_buffer("cluster_size", torch.zeros(bins))
        self.register_buffer("embed", torch.zeros(bins, dim))
        self.register_buffer("embed_avg", torch.zeros(bins, dim))


class _VQLayer(nn.Module):
    def __init__(self, bins: int, dim: int) -> None:
        super().__init__()
        self._codebook = _Codebook(bins, dim)


class _VQ(nn.Module):
    def __init__(self, bins: int, dim: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([_VQLayer(bins, dim)])


class Quantizer(nn.Module):
    """Single-layer residual VQ (``quantizer.vq.layers.0._codebook``), 1024 x 768."""

    def __init__(self, bins: int = 1024, dim: int = 768) -> None:
        super().__init__()
        self.vq = _VQ(bins, dim)

    @property
    def embed(self) -> Tensor:
        layer = cast(_VQLayer, self.vq.layers[0])
        return cast(Tensor, layer._codebook.embed)

    def decode(self, codes: Tensor) -> Tensor:
        """codes [B,T] int64 -> codebook vectors [B,768,T]."""
        return F.embedding(codes, self.embed).transpose(1, 2)

    def encode(self, x: Tensor) -> Tensor:
        """x [B,768,T] -> nearest codes [B,T] by squared Euclidean distance (upstream formula)."""
        b, d, t = x.shape
        flat = x.transpose(1, 2).reshape(-1, d)
        embed = self.embed.t()
        dist = -(flat.pow(2).sum(1, keepdim=True) - 2 * flat @ embed + embed.pow(2).sum(0, keepdim=True))
        return dist.max(dim=-1).indices.view(b, t)
