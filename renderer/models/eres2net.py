"""ERes2NetV2 speaker-verification network, as GPT-SoVITS v2Pro/v2ProPlus uses it.

Upstream (``GPT_SoVITS/sv.py``) builds 3D-Speaker's ERes2NetV2 with ``baseWidth=24, scale=4,
expansion=4`` (other arguments default: ``m_channels=64, feat_dim=80, embedding_size=192,
num_blocks=[3, 4, 6, 3]``, TSTP pooling, one embedding layer), loads
``pretrained_eres2netv2w24s4ep4.ckpt`` (a plain ``state_dict``) and calls ``forward3`` on Kaldi fbank
features of the 16 kHz reference (``fbank(wav, num_mel_bins=80, sample_frequency=16000, dither=0)``,
no mean normalisation). ``forward3`` stops before the pooling/embedding head: it returns the fused
stage-3/4 feature map [B, C, F/8, T/8] flattened over (C, F) and averaged over time, i.e.
C * F/8 = (8 * m_channels * expansion) * 10 = 20480 values for the real sizes.

Module names below mirror the checkpoint's tensor names (``layer3.0.fuse_models.1.local_att.3.weight``,
``layer3_ds.weight``, ``fuse34.local_att.0.bias``, ``seg_1.weight``...), so the real file loads with a
strict ``load_state_dict``. The head (``seg_1``) is kept only so that strict loading works.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from renderer.audio import kaldi_fbank
from renderer.checkpoint_integrity import check_finite_tensors, verify_archive_checksums
from renderer.errors import CheckpointError

__all__ = ["ERes2NetV2Config", "ERes2NetV2", "SpeakerEncoder", "load_sv_state_dict", "SV_EMBEDDING_DIM"]

#: Width of the vector ``forward3`` returns for the real checkpoint (what SoVITS ``sv_emb`` expects).
SV_EMBEDDING_DIM = 20480


@dataclass(frozen=True)
class ERes2NetV2Config:
    """Sizes of an ERes2NetV2; the defaults are the ``pretrained_eres2netv2w24s4ep4`` ones."""

    m_channels: int = 64
    feat_dim: int = 80
    embedding_size: int = 192
    base_width: int = 24
    scale: int = 4
    expansion: int = 4
    num_blocks: tuple[int, int, int, int] = field(default=(3, 4, 6, 3))

    def __post_init__(self) -> None:
        if min(self.m_channels, self.feat_dim, self.embedding_size, self.base_width, self.scale, self.expansion) <= 0:
            raise ValueError(f"ERes2NetV2 sizes must be positive: {self}")
        if len(self.num_blocks) != 4 or min(self.num_blocks) <= 0:
            raise ValueError(f"num_blocks must be 4 positive counts, got {self.num_blocks}")

    @property
    def out_channels(self) -> int:
        """Channels of the fused stage-3/4 map."""
        return self.m_channels * 8 * self.expansion

    @property
    def forward3_dim(self) -> int:
        """Length of the ``forward3`` vector: channels x frequency rows after three stride-2 stages."""
        rows = self.feat_dim
        for _ in range(3):
            rows = (rows - 1) // 2 + 1
        return self.out_channels * rows

    @property
    def stats_dim(self) -> int:
        # Upstream's formula, used for the (unused here) pooling head's input width.
        return int(self.feat_dim / 8) * self.m_channels * 8

    def block_width(self, planes: int) -> int:
        return int(math.floor(planes * (self.base_width / 64.0)))


class HardTanh20(nn.Module):
    """Upstream's block activation: ReLU clipped at 20 (a Hardtanh(0, 20))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x, 0.0, 20.0)


class AFF(nn.Module):
    """Attentional feature fusion of two maps with equal shape [B, C, F, T]."""

    def __init__(self, channels: int, r: int = 4) -> None:
        super().__init__()
        inter = channels // r
        self.local_att = nn.Sequential(
            nn.Conv2d(channels * 2, inter, kernel_size=1),
            nn.BatchNorm2d(inter),
            nn.SiLU(),
            nn.Conv2d(inter, channels, kernel_size=1),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        weight = 1.0 + torch.tanh(self.local_att(torch.cat((x, other), dim=1)))
        # Convex-like blend: weight in (0, 2) for x, the complement for the other branch.
        return x * weight + other * (2.0 - weight)


class ERes2NetV2Block(nn.Module):
    """Res2Net-style bottleneck: 1x1 conv, ``scale`` chained 3x3 convs on channel groups, 1x1 conv.

    ``fuse=False``: each group adds the previous group's output (BasicBlockERes2NetV2);
    ``fuse=True``: an AFF merges them (BasicBlockERes2NetV2AFF). [B, in, F, T] → [B, planes*exp, F/s, T/s].
    """

    def __init__(self, cfg: ERes2NetV2Config, in_planes: int, planes: int, stride: int, fuse: bool) -> None:
        super().__init__()
        width = cfg.block_width(planes)
        out_planes = planes * cfg.expansion
        self.width = width
        self.conv1 = nn.Conv2d(in_planes, width * cfg.scale, kernel_size=1, stride=stride, bias=False)
        self.bn1 = nn.BatchNorm2d(width * cfg.scale)
        self.convs = nn.ModuleList(
            nn.Conv2d(width, width, kernel_size=3, padding=1, bias=False) for _ in range(cfg.scale)
        )
        self.bns = nn.ModuleList(nn.BatchNorm2d(width) for _ in range(cfg.scale))
        self.fuse_models = nn.ModuleList(AFF(width, r=4) for _ in range(cfg.scale - 1)) if fuse else None
        self.relu = HardTanh20()
        self.conv3 = nn.Conv2d(width * cfg.scale, out_planes, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != out_planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_planes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        groups = torch.split(out, self.width, dim=1)
        outputs = []
        sp = groups[0]
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns, strict=True)):
            if i > 0:
                sp = self.fuse_models[i - 1](sp, groups[i]) if self.fuse_models is not None else sp + groups[i]
            sp = self.relu(bn(conv(sp)))
            outputs.append(sp)
        out = self.bn3(self.conv3(torch.cat(outputs, dim=1)))
        return self.relu(out + self.shortcut(x))


class ERes2NetV2(nn.Module):
    """The speaker network; :meth:`forward3` is what GPT-SoVITS uses."""

    def __init__(self, cfg: ERes2NetV2Config = ERes2NetV2Config()) -> None:
        super().__init__()
        self.cfg = cfg
        m = cfg.m_channels
        self.conv1 = nn.Conv2d(1, m, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(m)
        in_planes = m
        layers = []
        for stage, (mult, stride) in enumerate(((1, 1), (2, 2), (4, 2), (8, 2))):
            blocks = []
            for j in range(cfg.num_blocks[stage]):
                blocks.append(ERes2NetV2Block(cfg, in_planes, m * mult, stride if j == 0 else 1, fuse=stage >= 2))
                in_planes = m * mult * cfg.expansion
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.layer3_ds = nn.Conv2d(m * 4 * cfg.expansion, m * 8 * cfg.expansion, kernel_size=3, padding=1,
                                   stride=2, bias=False)
        self.fuse34 = AFF(m * 8 * cfg.expansion, r=4)
        # Embedding head of the checkpoint (mean+std pooling → 192); not used by forward3.
        self.seg_1 = nn.Linear(cfg.stats_dim * cfg.expansion * 2, cfg.embedding_size)

    def feature_map(self, feats: torch.Tensor) -> torch.Tensor:
        """[B, T, feat_dim] fbank → fused stage-3/4 map [B, 8*m*exp, F/8, T/8]."""
        x = feats.permute(0, 2, 1).unsqueeze(1)  # [B, 1, F, T]
        out = F.relu(self.bn1(self.conv1(x)))
        out3 = self.layer3(self.layer2(self.layer1(out)))
        out4 = self.layer4(out3)
        return self.fuse34(out4, self.layer3_ds(out3))

    def forward3(self, feats: torch.Tensor) -> torch.Tensor:
        """[B, T, feat_dim] → [B, forward3_dim] (20480 for the real sizes): map flattened over (C, F), time mean."""
        return self.feature_map(feats).flatten(start_dim=1, end_dim=2).mean(dim=-1)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """[B, T, feat_dim] → [B, embedding_size] speaker embedding (TSTP pooling + seg_1)."""
        fused = self.feature_map(feats)
        mean = fused.mean(dim=-1).flatten(start_dim=1)
        std = torch.sqrt(torch.var(fused, dim=-1) + 1e-8).flatten(start_dim=1)
        return self.seg_1(torch.cat((mean, std), dim=1))


# ------------------------------------------------------------------------------------------ loading

_BLOCK_KEY = re.compile(r"^layer([1-4])\.(\d+)\.")


def config_from_state_dict(state: Mapping[str, torch.Tensor]) -> ERes2NetV2Config:
    """Infer the sizes from tensor shapes, so real and scaled-down files load with the same code."""
    m = int(state["conv1.weight"].shape[0])
    widths = [int(state[f"layer{s}.0.convs.0.weight"].shape[0]) for s in (1, 2, 3, 4)]
    scale = sum(1 for key in state if re.fullmatch(r"layer1\.0\.convs\.\d+\.weight", key))
    expansion = int(state["layer1.0.conv3.weight"].shape[0]) // m
    counts = [0, 0, 0, 0]
    for key in state:
        match = _BLOCK_KEY.match(key)
        if match:
            stage, index = int(match.group(1)) - 1, int(match.group(2))
            counts[stage] = max(counts[stage], index + 1)
    # Each stage's group width is floor(planes * baseWidth / 64), planes = m * (1, 2, 4, 8): find that baseWidth.
    base_width = next(
        b for b in range(1, 1025)
        if [int(math.floor(m * mult * (b / 64.0))) for mult in (1, 2, 4, 8)] == widths
    )
    seg = state["seg_1.weight"]
    feat_dim = 8 * (int(seg.shape[1]) // (2 * expansion * m * 8))
    return ERes2NetV2Config(m_channels=m, feat_dim=feat_dim, embedding_size=int(seg.shape[0]),
                            base_width=base_width, scale=scale, expansion=expansion,
                            num_blocks=(counts[0], counts[1], counts[2], counts[3]))


def load_sv_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a speaker-verification ``.ckpt`` (a plain state dict) safely; never runs pickled code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "speaker-verification checkpoint not found",
                              "expected GPT-SoVITS' pretrained_models/sv/pretrained_eres2netv2w24s4ep4.ckpt")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(path, f"cannot be read: {exc.strerror or exc}") from None
    if zipfile.is_zipfile(io.BytesIO(data)):  # torch.save's archive (a legacy plain pickle has no checksums)
        verify_archive_checksums(path, data)
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt/unsafe pickles
        raise CheckpointError(path, f"cannot read as a torch checkpoint ({type(exc).__name__}: {exc})",
                              "is this the ERes2NetV2 .ckpt file?") from exc
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(path, "not a plain state dict of tensors", "expected the ERes2NetV2 .ckpt")
    tensors = {str(k).removeprefix("module."): v for k, v in state.items()}
    check_finite_tensors(path, tensors)
    required = ("conv1.weight", "layer1.0.convs.0.weight", "layer1.0.conv3.weight", "layer3_ds.weight",
                "fuse34.local_att.0.weight", "seg_1.weight")
    missing = [key for key in required if key not in tensors]
    if missing:
        raise CheckpointError(path, f"not an ERes2NetV2 speaker model (missing {', '.join(missing)})",
                              "expected pretrained_eres2netv2w24s4ep4.ckpt from GPT-SoVITS v2Pro")
    return tensors


def build_from_state_dict(state: Mapping[str, torch.Tensor], path: str | Path = "<memory>") -> ERes2NetV2:
    """Construct a model sized from ``state`` and load it strictly (float32, eval mode)."""
    try:
        cfg = config_from_state_dict(state)
        model = ERes2NetV2(cfg)
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()},
                              strict=True)
    except (KeyError, StopIteration, ValueError, RuntimeError) as exc:
        raise CheckpointError(path, f"tensor layout does not match ERes2NetV2 ({exc})",
                              "expected pretrained_eres2netv2w24s4ep4.ckpt from GPT-SoVITS v2Pro") from exc
    return model.eval()


class SpeakerEncoder:
    """The v2Pro speaker path: 16 kHz reference → [1, 20480] ``sv_emb``, as upstream ``compute_embedding3``."""

    def __init__(self, ckpt_path: str | Path, device: str | torch.device = "cpu") -> None:
        self.path = Path(ckpt_path)
        self.device = torch.device(device)
        self.model = build_from_state_dict(load_sv_state_dict(self.path), self.path).to(self.device)
        self.config = self.model.cfg

    @property
    def embedding_dim(self) -> int:
        return self.config.forward3_dim

    def features(self, wav16k: np.ndarray | torch.Tensor) -> torch.Tensor:
        """[N] float 16 kHz → Kaldi fbank [1, frames, feat_dim] (upstream does no mean normalisation)."""
        wav = torch.as_tensor(np.asarray(wav16k, dtype=np.float32)) if not isinstance(wav16k, torch.Tensor) \
            else wav16k.detach().to(torch.float32).cpu()
        return kaldi_fbank(wav.reshape(-1), num_mel_bins=self.config.feat_dim).unsqueeze(0)

    @torch.no_grad()  # not inference_mode: callers may reuse the result in ordinary tensor code
    def embedding(self, wav16k: np.ndarray | torch.Tensor) -> torch.Tensor:
        """[N] float 16 kHz (at least 400 samples) → [1, 20480] float32 on the CPU."""
        feats = self.features(wav16k).to(self.device)
        return self.model.forward3(feats).float().cpu()
