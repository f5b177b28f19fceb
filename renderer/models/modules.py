"""SoVITS content/text encoder (``enc_p``): relative-position attention encoders and MRTE.

Channel-first tensors throughout: ``x [B, C, T]`` with a float mask ``[B, 1, T]`` (1 = valid frame).
Masked attention scores are filled with -1e4 like upstream, which gives exactly zero weight in
float32, so padded batch rows compute the same values as unpadded single rows.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Hard-wired widths (upstream ignores the config for these).
TEXT_HIDDEN = 192
MRTE_CHANNELS = 512
MRTE_HEADS = 4
SSL_DIM = 768
#: Relative attention window of the encoders (emb_rel_* have 2*4+1 rows).
REL_WINDOW = 4


def sequence_mask(lengths: Tensor, max_len: int) -> Tensor:
    """lengths [B] -> float mask [B, 1, max_len]."""
    pos = torch.arange(max_len, device=lengths.device)
    return (pos.view(1, -1) < lengths.view(-1, 1)).unsqueeze(1).float()


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel dim of [B, C, T] (parameters ``gamma``/``beta``)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.channels = channels
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        y = F.layer_norm(x.transpose(1, -1), (self.channels,), self.gamma, self.beta, self.eps)
        return y.transpose(1, -1)


def _relative_index(t: int, window: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """offset[i, j] = j - i + window, valid where |j - i| <= window; both [t, t]."""
    pos = torch.arange(t, device=device)
    offset = pos.view(1, -1) - pos.view(-1, 1) + window
    valid = (offset >= 0) & (offset <= 2 * window)
    return offset, valid


class MultiHeadAttention(nn.Module):
    """1x1-conv multi-head attention, optionally with shared relative position embeddings."""

    def __init__(self, channels: int, out_channels: int, n_heads: int, window_size: int | None = None) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.k_channels = channels // n_heads
        self.window_size = window_size
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, out_channels, 1)
        if window_size is not None:
            self.emb_rel_k = nn.Parameter(torch.randn(1, 2 * window_size + 1, self.k_channels) * self.k_channels**-0.5)
            self.emb_rel_v = nn.Parameter(torch.randn(1, 2 * window_size + 1, self.k_channels) * self.k_channels**-0.5)

    def forward(self, x: Tensor, c: Tensor, mask: Tensor | None) -> Tensor:
        """x [B,C,Tq] queries, c [B,C,Tk] keys/values, mask [B,1,Tq,Tk] (0 = blocked) -> [B,C_out,Tq]."""
        b, ch, tq = x.shape
        tk = c.shape[2]
        h, kc = self.n_heads, self.k_channels
        q = self.conv_q(x).view(b, h, kc, tq).transpose(2, 3) / math.sqrt(kc)
        k = self.conv_k(c).view(b, h, kc, tk).transpose(2, 3)
        v = self.conv_v(c).view(b, h, kc, tk).transpose(2, 3)
        scores = q @ k.transpose(-2, -1)
        if self.window_size is not None:
            offset, valid = _relative_index(tq, self.window_size, x.device)
            rel = q @ self.emb_rel_k[0].transpose(0, 1)  # [B,H,T,2w+1]
            rel = F.pad(rel, (0, 1))  # last column = 0 for offsets outside the window
            index = torch.where(valid, offset, torch.full_like(offset, 2 * self.window_size + 1))
            scores = scores + torch.gather(rel, 3, index.expand(b, h, tq, tq))
        if mask is not None:
            scores = scores.masked_fill(mask == 0, -1e4)
        p = torch.softmax(scores, dim=-1)
        out = p @ v
        if self.window_size is not None:
            out = out + self._relative_values(p)
        out = out.transpose(2, 3).contiguous().view(b, ch, tq)
        return self.conv_o(out)

    def _relative_values(self, p: Tensor) -> Tensor:
        """p [B,H,T,T] -> sum_j p[i,j] * emb_rel_v[j - i + w] over |j - i| <= w: [B,H,T,kc]."""
        b, h, t, _ = p.shape
        w = self.window_size
        assert w is not None
        pos = torch.arange(t, device=p.device)
        cols = pos.view(-1, 1) + torch.arange(-w, w + 1, device=p.device).view(1, -1)  # [T, 2w+1]
        inside = (cols >= 0) & (cols < t)
        padded = F.pad(p, (0, 1))
        index = torch.where(inside, cols, torch.full_like(cols, t))
        weights = torch.gather(padded, 3, index.expand(b, h, t, 2 * w + 1))
        return weights @ self.emb_rel_v[0]


class FFN(nn.Module):
    """Two 'same'-padded convolutions with ReLU, masked before each conv."""

    def __init__(self, channels: int, filter_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.conv_1 = nn.Conv1d(channels, filter_channels, kernel_size)
        self.conv_2 = nn.Conv1d(filter_channels, channels, kernel_size)

    def _pad(self, x: Tensor) -> Tensor:
        k = self.kernel_size
        return F.pad(x, ((k - 1) // 2, k // 2))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = torch.relu(self.conv_1(self._pad(x * mask)))
        return self.conv_2(self._pad(x * mask)) * mask


class Encoder(nn.Module):
    """Post-norm transformer encoder with relative attention (window 4)."""

    def __init__(self, channels: int, filter_channels: int, n_heads: int, n_layers: int, kernel_size: int) -> None:
        super().__init__()
        self.attn_layers = nn.ModuleList(
            MultiHeadAttention(channels, channels, n_heads, window_size=REL_WINDOW) for _ in range(n_layers))
        self.norm_layers_1 = nn.ModuleList(ChannelLayerNorm(channels) for _ in range(n_layers))
        self.ffn_layers = nn.ModuleList(FFN(channels, filter_channels, kernel_size) for _ in range(n_layers))
        self.norm_layers_2 = nn.ModuleList(ChannelLayerNorm(channels) for _ in range(n_layers))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x [B,C,T], mask [B,1,T] -> [B,C,T]."""
        attn_mask = mask.unsqueeze(2) * mask.unsqueeze(-1)
        x = x * mask
        for attn, n1, ffn, n2 in zip(self.attn_layers, self.norm_layers_1, self.ffn_layers, self.norm_layers_2,
                                     strict=True):
            x = n1(x + attn(x, x, attn_mask))
            x = n2(x + ffn(x, mask))
        return x * mask


class MRTE(nn.Module):
    """Timbre fusion: content features attend to text features; + global conditioning (512 wide)."""

    def __init__(self) -> None:
        super().__init__()
        self.cross_attention = MultiHeadAttention(MRTE_CHANNELS, MRTE_CHANNELS, MRTE_HEADS)
        self.c_pre = nn.Conv1d(TEXT_HIDDEN, MRTE_CHANNELS, 1)
        self.text_pre = nn.Conv1d(TEXT_HIDDEN, MRTE_CHANNELS, 1)
        self.c_post = nn.Conv1d(MRTE_CHANNELS, TEXT_HIDDEN, 1)

    def forward(self, ssl: Tensor, ssl_mask: Tensor, text: Tensor, text_mask: Tensor, ge: Tensor) -> Tensor:
        """ssl [B,192,Ts], text [B,192,Tt], ge [B,512,1] -> [B,192,Ts]."""
        attn_mask = text_mask.unsqueeze(2) * ssl_mask.unsqueeze(-1)
        ssl_enc = self.c_pre(ssl * ssl_mask)
        text_enc = self.text_pre(text * text_mask)
        x = self.cross_attention(ssl_enc * ssl_mask, text_enc * text_mask, attn_mask) + ssl_enc + ge
        return self.c_post(x * ssl_mask)


class TextEncoder(nn.Module):
    """``enc_p``: content (SSL codes) + phones -> prior mean/log-std [B, inter, F]."""

    def __init__(self, out_channels: int, hidden: int, filter_channels: int, n_heads: int, n_layers: int,
                 kernel_size: int, n_symbols: int) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.ssl_proj = nn.Conv1d(SSL_DIM, hidden, 1)
        self.encoder_ssl = Encoder(hidden, filter_channels, n_heads, n_layers // 2, kernel_size)
        self.encoder_text = Encoder(hidden, filter_channels, n_heads, n_layers, kernel_size)
        self.text_embedding = nn.Embedding(n_symbols, hidden)
        self.mrte = MRTE()
        self.encoder2 = Encoder(hidden, filter_channels, n_heads, n_layers // 2, kernel_size)
        self.proj = nn.Conv1d(hidden, out_channels * 2, 1)

    def forward(self, y: Tensor, y_lengths: Tensor, text: Tensor, text_lengths: Tensor, ge: Tensor,
                speed: float = 1.0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """y [B,768,T] content, text [B,N] phone ids, ge [B,512,1]; returns (m, logs, mask, lengths) with
        m/logs [B,inter,F], mask [B,1,F], lengths [B] (F = T, or int(T/speed)+1 per row)."""
        y_mask = sequence_mask(y_lengths, y.shape[2])
        y = self.ssl_proj(y * y_mask) * y_mask
        y = self.encoder_ssl(y * y_mask, y_mask)
        text_mask = sequence_mask(text_lengths, text.shape[1])
        t = self.text_embedding(text).transpose(1, 2)
        t = self.encoder_text(t * text_mask, text_mask)
        y = self.mrte(y, y_mask, t, text_mask, ge)
        y = self.encoder2(y * y_mask, y_mask)
        if speed != 1:
            y, y_lengths = resample_frames(y, y_lengths, speed)
            y_mask = sequence_mask(y_lengths, y.shape[2])
        stats = self.proj(y) * y_mask
        m, logs = torch.split(stats, self.out_channels, dim=1)
        return m, logs, y_mask, y_lengths


def resample_frames(y: Tensor, lengths: Tensor, speed: float) -> tuple[Tensor, Tensor]:
    """Per row: linear interpolation (align_corners=False) of the valid frames to int(T/speed)+1.

    y [B,C,T], lengths [B] -> ([B,C,F_max], new lengths [B]). Each row equals upstream's B=1 call.
    """
    new_lengths = [int(int(n) / speed) + 1 for n in lengths.tolist()]
    out = y.new_zeros(y.shape[0], y.shape[1], max(new_lengths))
    for i, (n, f) in enumerate(zip(lengths.tolist(), new_lengths, strict=True)):
        out[i, :, :f] = F.interpolate(y[i:i + 1, :, :int(n)], size=f, mode="linear")[0]
    return out, torch.tensor(new_lengths, dtype=torch.long, device=y.device)
