"""Linear magnitude spectrogram of the reference audio (upstream ``spectrogram_torch``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

N_FFT = 2048
HOP_SAMPLES = 640
WIN_SAMPLES = 2048
#: Bins of the one-sided spectrum (n_fft // 2 + 1).
N_BINS = N_FFT // 2 + 1


def linear_spectrogram(wav: Tensor, normalize: bool = True) -> Tensor:
    """wav [B,N] float at 32 kHz -> magnitude [B,1025,T], T = (N + 1408 - 2048) // 640 + 1.

    Reflect-pads (n_fft - hop) / 2 = 704 samples each side, STFT without centering, periodic Hann
    window, ``sqrt(re^2 + im^2 + 1e-8)``. Like upstream, a signal with max |x| > 1 is first divided
    by ``min(2, max|x|)`` (pass ``normalize=False`` when the caller already did that, as upstream's
    ``get_spepc`` does before calling ``spectrogram_torch``).
    """
    if wav.dim() != 2:
        raise ValueError(f"expected wav [B, N], got shape {list(wav.shape)}")
    wav = wav.float()
    peak = float(wav.abs().max()) if wav.numel() else 0.0
    if normalize and peak > 1.0:
        wav = wav / min(2.0, peak)
    pad = (N_FFT - HOP_SAMPLES) // 2
    if wav.shape[1] <= pad:
        raise ValueError(f"audio too short for a spectrogram: {wav.shape[1]} samples")
    padded = F.pad(wav.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    window = torch.hann_window(WIN_SAMPLES, periodic=True, dtype=wav.dtype, device=wav.device)
    spec = torch.stft(padded, N_FFT, hop_length=HOP_SAMPLES, win_length=WIN_SAMPLES, window=window,
                      center=False, normalized=False, onesided=True, return_complex=True)
    return torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-8)
