"""SoVITS synthesizer (v2 / v2Pro / v2ProPlus) for inference, checkpoint compatible.

``SoVITSModel`` holds the upstream module tree (``enc_p``, ``dec``, ``flow``, ``ref_enc``, ``ssl_proj``,
``quantizer``, and for Pro ``sv_emb``, ``prelu``, ``ge_to512``) without the training-only ``enc_q``.
Weight-normalised convolutions are stored in the file as ``weight_g``/``weight_v`` pairs and folded
into a plain ``weight`` by :func:`fold_weight_norm` at load time.

Decoding is batched: codes/phones are right-padded, masks carry the true lengths, and each row's
audio equals upstream's ``SynthesizerTrn.decode`` for that row alone (within float tolerance).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from renderer.checkpoints import SoVITSCheckpoint, load_sovits_checkpoint
from renderer.errors import CheckpointError
from renderer.models.modules import MRTE_CHANNELS, SSL_DIM, TEXT_HIDDEN, TextEncoder
from renderer.models.sovits_modules import REF_BINS, Generator, MelStyleEncoder, Quantizer, ResidualCouplingBlock

#: Input width of the speaker-verification embedding (ERes2NetV2 features).
SV_DIM = 20480
#: Semantic tokens are 25 Hz, content frames 50 Hz: each token covers two frames.
FRAMES_PER_TOKEN = 2


@dataclass(frozen=True)
class SoVITSConfig:
    """Sizes from ``config.model`` (+ version); widths that upstream hard-wires are constants."""

    version: str = "v2"
    inter_channels: int = 192
    hidden_channels: int = 192
    filter_channels: int = 768
    n_heads: int = 2
    n_layers: int = 6
    kernel_size: int = 3
    resblock: str = "1"
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    upsample_rates: tuple[int, ...] = (10, 8, 2, 2, 2)
    upsample_initial_channel: int = 512
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 8, 2, 2)
    gin_channels: int = 512
    n_symbols: int = 732
    sampling_rate: int = 32000
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.hidden_channels != TEXT_HIDDEN:
            raise ValueError(f"hidden_channels must be {TEXT_HIDDEN} (hard-wired upstream), got {self.hidden_channels}")
        if not self.is_pro and self.gin_channels != MRTE_CHANNELS:
            raise ValueError(f"v2 gin_channels must be {MRTE_CHANNELS}, got {self.gin_channels}")

    @property
    def is_pro(self) -> bool:
        return self.version in ("v2Pro", "v2ProPlus")

    @property
    def samples_per_frame(self) -> int:
        """Output samples per 50 Hz content frame (640 at 32 kHz)."""
        out = 1
        for r in self.upsample_rates:
            out *= r
        return out

    @classmethod
    def from_dict(cls, model: dict[str, Any], version: str, n_symbols: int = 732, sampling_rate: int = 32000
                  ) -> SoVITSConfig:
        return cls(
            version=version,
            inter_channels=int(model["inter_channels"]),
            hidden_channels=int(model["hidden_channels"]),
            filter_channels=int(model["filter_channels"]),
            n_heads=int(model["n_heads"]),
            n_layers=int(model["n_layers"]),
            kernel_size=int(model["kernel_size"]),
            resblock=str(model["resblock"]),
            resblock_kernel_sizes=tuple(int(k) for k in model["resblock_kernel_sizes"]),
            resblock_dilation_sizes=tuple(tuple(int(d) for d in ds) for ds in model["resblock_dilation_sizes"]),
            upsample_rates=tuple(int(r) for r in model["upsample_rates"]),
            upsample_initial_channel=int(model["upsample_initial_channel"]),
            upsample_kernel_sizes=tuple(int(k) for k in model["upsample_kernel_sizes"]),
            gin_channels=int(model["gin_channels"]),
            n_symbols=n_symbols,
            sampling_rate=sampling_rate,
        )

    @classmethod
    def from_checkpoint(cls, ckpt: SoVITSCheckpoint) -> SoVITSConfig:
        emb = ckpt.weights.get("enc_p.text_embedding.weight")
        n_symbols = int(emb.shape[0]) if emb is not None else 732
        rate = int(ckpt.config.get("data", {}).get("sampling_rate", 32000))
        try:
            return cls.from_dict(ckpt.config["model"], ckpt.version, n_symbols, rate)
        except (KeyError, ValueError, TypeError) as exc:
            raise CheckpointError(ckpt.path, f"has an unusable SoVITS config: {exc}") from None


class SoVITSModel(nn.Module):
    """Inference part of upstream ``SynthesizerTrn`` (v2 family)."""

    def __init__(self, cfg: SoVITSConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.enc_p = TextEncoder(cfg.inter_channels, cfg.hidden_channels, cfg.filter_channels, cfg.n_heads,
                                 cfg.n_layers, cfg.kernel_size, cfg.n_symbols)
        self.dec = Generator(cfg.inter_channels, cfg.resblock, list(cfg.resblock_kernel_sizes),
                             [list(d) for d in cfg.resblock_dilation_sizes], list(cfg.upsample_rates),
                             cfg.upsample_initial_channel, list(cfg.upsample_kernel_sizes), cfg.gin_channels)
        self.flow = ResidualCouplingBlock(cfg.inter_channels, cfg.hidden_channels, cfg.gin_channels)
        self.ref_enc = MelStyleEncoder(REF_BINS, cfg.gin_channels)
        self.ssl_proj = nn.Conv1d(SSL_DIM, SSL_DIM, 2, stride=2)
        self.quantizer = Quantizer(1024, SSL_DIM)
        if cfg.is_pro:
            # Registration order = upstream's stored key order.
            self.sv_emb = nn.Linear(SV_DIM, cfg.gin_channels)
            self.ge_to512 = nn.Linear(cfg.gin_channels, MRTE_CHANNELS)
            self.prelu = nn.PReLU(num_parameters=cfg.gin_channels)
        #: Optional faster generator (same function, no parameters of its own) installed by
        #: :func:`renderer.models.sovits_fast.prepare_for_inference`; used for CPU tensors only.
        self.fast_dec: nn.Module | None = None

    # ------------------------------------------------------------------ conditioning
    def reference_embedding(self, spec: Tensor, sv_emb: Tensor | None = None) -> Tensor:
        """One reference: spec [1,1025,T] (+ sv_emb [1,20480] for Pro) -> ge_j [1,gin,1]."""
        mask = torch.ones(spec.shape[0], 1, spec.shape[2], dtype=spec.dtype, device=spec.device)
        ge = self.ref_enc(spec[:, :REF_BINS] * mask, mask)
        if self.cfg.is_pro:
            if sv_emb is None:
                raise ValueError(f"SoVITS {self.cfg.version} needs a speaker-verification embedding per reference")
            ge = self.prelu(ge + self.sv_emb(sv_emb).unsqueeze(-1))
        return ge

    @torch.no_grad()
    def reference_ge(self, specs: list[Tensor], sv_embs: list[Tensor] | None = None) -> Tensor:
        """Mean over references of :meth:`reference_embedding` -> ge [1,gin,1]."""
        if not specs:
            raise ValueError("at least one reference spectrogram is needed")
        embs = [self.reference_embedding(s, sv_embs[i] if sv_embs is not None else None)
                for i, s in enumerate(specs)]
        return torch.stack(embs, 0).mean(0)

    def mrte_ge(self, ge: Tensor) -> Tensor:
        """ge [B,gin,1] -> the 512-wide conditioning added inside MRTE."""
        if self.cfg.is_pro:
            return self.ge_to512(ge.transpose(2, 1)).transpose(2, 1)
        return ge

    # ------------------------------------------------------------------ decode
    @torch.no_grad()
    def decode(self, codes: Tensor, code_lengths: Tensor, phones: Tensor, phone_lengths: Tensor, ge: Tensor,
               noise_scale: float = 0.5, speed: float = 1.0, noise: Tensor | None = None,
               generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Semantic tokens -> waveform.

        codes [B,T] int64 (25 Hz, right-padded), code_lengths [B], phones [B,N] int64, phone_lengths [B],
        ge [B,gin,1] (or [1,gin,1], broadcast), noise [B,inter,F_max] standard normal (None: drawn from
        ``generator``). Returns audio [B, max_samples] float32 and audio_lengths [B] samples
        (= F_i * 640, F_i = 2*T_i or int(2*T_i/speed)+1).
        """
        b = codes.shape[0]
        if ge.shape[0] != b:
            ge = ge.expand(b, -1, -1)
        quantized = self.quantizer.decode(codes.long())
        quantized = F.interpolate(quantized, size=quantized.shape[-1] * FRAMES_PER_TOKEN, mode="nearest")
        y_lengths = code_lengths.long() * FRAMES_PER_TOKEN
        m_p, logs_p, y_mask, frames = self.enc_p(quantized, y_lengths, phones.long(), phone_lengths.long(),
                                                 self.mrte_ge(ge), speed)
        if noise is None:
            noise = torch.randn(m_p.shape, generator=generator, dtype=m_p.dtype)
        noise = noise[:, :, : m_p.shape[2]].to(m_p)
        z_p = m_p + noise * torch.exp(logs_p) * noise_scale
        z = self.flow.reverse(z_p, y_mask, ge)
        dec: nn.Module = self.dec
        if self.fast_dec is not None and self._use_fast_dec(z):
            dec = self.fast_dec
        audio = dec(z * y_mask, ge, frames)
        return audio[:, 0], frames * self.cfg.samples_per_frame

    def _use_fast_dec(self, z: Tensor) -> bool:
        # oneDNN fused ops are CPU-only and not exportable: tracing/ONNX export uses the reference.
        exporting = torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
        return self.fast_dec is not None and z.device.type == "cpu" and not exporting

    @torch.no_grad()
    def extract_latent(self, ssl: Tensor) -> Tensor:
        """HuBERT features ssl [1,768,T] (50 Hz) -> codes [1,1,T//2] (nearest codebook entries)."""
        return self.quantizer.encode(self.ssl_proj(ssl)).unsqueeze(1)


def fold_weight_norm(weights: dict[str, Tensor]) -> dict[str, Tensor]:
    """Replace each ``<name>.weight_g``/``<name>.weight_v`` pair by ``<name>.weight = g * v / ||v||``
    (norm over every dim except 0), computed in float32."""
    out: dict[str, Tensor] = {}
    for name, tensor in weights.items():
        if name.endswith(".weight_v"):
            continue
        if name.endswith(".weight_g"):
            base = name[: -len("_g")]
            v = weights.get(base + "_v")
            if v is None:
                raise KeyError(f"{name} has no matching weight_v")
            g = tensor.float()
            v = v.float()
            norm = v.pow(2).sum(dim=tuple(range(1, v.dim())), keepdim=True).sqrt()
            out[base] = g * v / norm
            continue
        out[name] = tensor
    return out


def load_sovits(path: str | Path) -> tuple[SoVITSModel, SoVITSConfig, SoVITSCheckpoint]:
    """Load a SoVITS ``.pth`` (v2, v2Pro, v2ProPlus) into a float32 eval-mode model."""
    ckpt = load_sovits_checkpoint(path)
    cfg = SoVITSConfig.from_checkpoint(ckpt)
    model = SoVITSModel(cfg)
    try:
        weights = fold_weight_norm(ckpt.weights)
    except KeyError as exc:
        raise CheckpointError(ckpt.path, f"is damaged: {exc}") from None
    expected = model.state_dict()
    for name, tensor in weights.items():
        if name in expected and tuple(expected[name].shape) != tuple(tensor.shape):
            raise CheckpointError(
                ckpt.path, f"tensor '{name}' has shape {list(tensor.shape)}, expected "
                f"{list(expected[name].shape)} for the config stored in the file")
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            ckpt.path, f"does not match the SoVITS {cfg.version} layout: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}")
    return model.float().eval(), cfg, ckpt
