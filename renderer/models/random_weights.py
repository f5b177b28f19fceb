"""Random GPT and SoVITS weight files in the exact upstream GPT-SoVITS formats (tests, demos, benchmarks).

File format (what upstream's savers write, and what real users have):

* ``torch.save`` ZIP (entries stored), pickle protocol 2, float16 tensors;
* GPT: ``{"weight": OrderedDict("model.<name>" -> fp16), "config": dict, "info": "GPT-e<n>"}``, saved
  through a file named after a timestamp, so the archive root folder looks like ``1700001234.000042/``;
* SoVITS: ``{"weight": OrderedDict(<name> -> fp16, no enc_q.*), "config": utils.HParams, "info": ...}``,
  saved to memory (root ``archive/``) with the first two bytes replaced by upstream's version tag:
  ``01`` v2, ``05`` v2Pro, ``06`` v2ProPlus. Upstream's trainer writes v2 files with a plain ``PK``, and
  its loader then guesses v1/v2 from the file size (v2 from 82,978 KiB); a full-size random v2 file
  clears that by only ~28 KiB, so every generated file carries the tag its loader reads first.

Weights follow the recipe of the public conformance set so outputs depend on inputs: seeded default
initialisation, constant tensors perturbed (``c + s*N(0,1)``), the VQ codebook filled, GPT residual
branches scaled by ``min(1, sqrt(2/n_layer))``, and the SoVITS decoder's upsampling layers and
``conv_post`` rescaled on a seeded random latent so the waveform is neither silent nor clipped.
"""

from __future__ import annotations

import io
import math
import os
import re
import sys
import tempfile
import types
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F

from renderer.checkpoints import HParams
from renderer.models.gpt import GPTConfig, Text2SemanticModel
from renderer.models.sovits import SoVITSConfig, SoVITSModel

__all__ = ["write_random_gpt", "write_random_sovits", "gpt_config_for", "sovits_config_for",
           "WEIGHT_NORM_PATTERN", "SIZES", "VERSIONS", "SOVITS_VERSION_TAGS"]

SIZES = ("tiny", "full")
VERSIONS = ("v2", "v2Pro", "v2ProPlus")
#: Modules stored as weight-norm pairs (weight_g / weight_v) in upstream files.
WEIGHT_NORM_PATTERN = re.compile(
    r"^(dec\.ups\.\d+|dec\.resblocks\.\d+\.convs[12]?\.\d+|flow\.flows\.\d+\.enc\.(in_layers\.\d+|res_skip_layers\.\d+"
    r"|cond_layer))\.weight$")
#: Upstream's 2-byte version tags (its loader maps ``01`` to v2 without looking at the file size).
SOVITS_VERSION_TAGS = {"v2": b"01", "v2Pro": b"05", "v2ProPlus": b"06"}

_GPT_MODEL = {
    "tiny": {"embedding_dim": 64, "hidden_dim": 64, "head": 4, "linear_units": 256, "n_layer": 2},
    "full": {"embedding_dim": 512, "hidden_dim": 512, "head": 16, "linear_units": 2048, "n_layer": 24},
}
_SOVITS_COMMON = {
    "tiny": {"inter_channels": 16, "hidden_channels": 192, "filter_channels": 64, "n_heads": 2, "n_layers": 2,
             "kernel_size": 3, "resblock_kernel_sizes": [3, 7], "resblock_dilation_sizes": [[1, 3, 5]] * 2},
    "full": {"inter_channels": 192, "hidden_channels": 192, "filter_channels": 768, "n_heads": 2, "n_layers": 6,
             "kernel_size": 3, "resblock_kernel_sizes": [3, 7, 11], "resblock_dilation_sizes": [[1, 3, 5]] * 3},
}
#: (upsample_initial_channel, upsample_kernel_sizes, gin_channels) per size and version.
_SOVITS_DECODER = {
    ("tiny", "v2"): (64, [16, 16, 8, 2, 2], 512),
    ("tiny", "v2Pro"): (64, [16, 16, 8, 2, 2], 64),
    ("tiny", "v2ProPlus"): (96, [20, 16, 8, 2, 2], 64),
    ("full", "v2"): (512, [16, 16, 8, 2, 2], 512),
    ("full", "v2Pro"): (512, [16, 16, 8, 2, 2], 1024),
    ("full", "v2ProPlus"): (768, [20, 16, 8, 2, 2], 1024),
}


def _check(size: str, version: str = "v2") -> None:
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    if version not in VERSIONS:
        raise ValueError(f"version must be one of {VERSIONS}, got {version!r}")


def gpt_config_for(size: str) -> dict[str, Any]:
    """The full GPT config dict (training YAML layout) for a size."""
    _check(size)
    model = {"vocab_size": 1025, "phoneme_vocab_size": 732, **_GPT_MODEL[size], "dropout": 0, "EOS": 1024,
             "random_bert": 0}
    return {
        "train": {"seed": 1234, "epochs": 15, "batch_size": 8, "save_every_n_epoch": 5, "precision": "16-mixed",
                  "gradient_clip": 1.0, "if_save_latest": True, "if_save_every_weights": True,
                  "half_weights_save_dir": "GPT_weights_v2", "exp_name": "random"},
        "optimizer": {"lr": 0.01, "lr_init": 1e-05, "lr_end": 0.0001, "warmup_steps": 2000, "decay_steps": 40000},
        "data": {"max_eval_sample": 8, "max_sec": 54, "num_workers": 4, "pad_val": 1024},
        "model": model,
        "inference": {"top_k": 15},
        "output_dir": "logs/random/logs_s1_v2",
        "pretrained_s1": "",
    }


def sovits_config_for(version: str, size: str) -> dict[str, Any]:
    """The full SoVITS config (plain dict mirror of the HParams tree) for a version and size."""
    _check(size, version)
    initial, kernels, gin = _SOVITS_DECODER[(size, version)]
    model = {**_SOVITS_COMMON[size], "p_dropout": 0.0 if version != "v2" else 0.1, "resblock": "1"}
    model = {
        "inter_channels": model["inter_channels"], "hidden_channels": 192, "filter_channels": model["filter_channels"],
        "n_heads": 2, "n_layers": model["n_layers"], "kernel_size": 3, "p_dropout": model["p_dropout"],
        "resblock": "1", "resblock_kernel_sizes": model["resblock_kernel_sizes"],
        "resblock_dilation_sizes": model["resblock_dilation_sizes"], "upsample_rates": [10, 8, 2, 2, 2],
        "upsample_initial_channel": initial, "upsample_kernel_sizes": kernels, "n_layers_q": 3,
        "use_spectral_norm": False, "gin_channels": gin, "semantic_frame_rate": "25hz", "freeze_quantizer": True,
        "version": version,
    }
    return {
        "train": {"log_interval": 100, "eval_interval": 500, "seed": 1234, "epochs": 8, "learning_rate": 0.0001,
                  "betas": [0.8, 0.99], "eps": 1e-09, "batch_size": 4, "fp16_run": True, "lr_decay": 0.999875,
                  "segment_size": 20480, "init_lr_ratio": 1, "warmup_epochs": 0, "c_mel": 45, "c_kl": 1.0,
                  "text_low_lr_rate": 0.4, "grad_ckpt": False, "pretrained_s2G": "", "pretrained_s2D": "",
                  "if_save_latest": True, "if_save_every_weights": True, "save_every_epoch": 4, "gpu_numbers": "0"},
        "data": {"max_wav_value": 32768.0, "sampling_rate": 32000, "filter_length": 2048, "hop_length": 640,
                 "win_length": 2048, "n_mel_channels": 128, "mel_fmin": 0.0, "mel_fmax": None, "add_blank": True,
                 "n_speakers": 300, "cleaned_text": True, "exp_dir": "logs/random"},
        "model": model,
        "s2_ckpt_dir": "logs/random",
        "content_module": "cnhubert",
        "save_weight_dir": "SoVITS_weights_v2",
        "name": "random",
        "version": version,
        "pretrain": None,
        "resume_step": None,
    }


# ----------------------------------------------------------------------------- weights

def _perturb_constants(state: dict[str, torch.Tensor], gen: torch.Generator) -> None:
    """Replace every all-equal float tensor by c + s*N(0,1) (s = 0.05 if c == 0 else 0.1*|c|)."""
    for name, t in state.items():
        if not t.is_floating_point() or t.numel() == 0 or "_codebook" in name:
            continue
        c = float(t.reshape(-1)[0])
        if bool((t == c).all()):
            s = 0.05 if c == 0 else 0.1 * abs(c)
            t.copy_(c + s * torch.randn(t.shape, generator=gen))


def _gpt_state(size: str, seed: int) -> tuple[dict[str, Any], OrderedDict[str, torch.Tensor]]:
    config = gpt_config_for(size)
    cfg = GPTConfig.from_model_config(config["model"])
    torch.manual_seed(seed)
    model = Text2SemanticModel(cfg)
    with torch.no_grad():
        for layer in model.layers:
            nn_init_xavier(layer.self_attn.in_proj_weight)
    state = OrderedDict((k, v.detach().clone()) for k, v in model.state_dict().items())
    gen = torch.Generator().manual_seed(seed + 1)
    _perturb_constants(state, gen)
    scale = min(1.0, math.sqrt(2.0 / cfg.n_layer))
    for name in state:
        if ".out_proj." in name or ".linear2." in name:
            state[name].mul_(scale)
    return config, OrderedDict(("model." + k, v.half()) for k, v in state.items())


def nn_init_xavier(t: torch.Tensor) -> None:
    """Upstream's MultiheadAttention initialises the packed projection with xavier_uniform."""
    torch.nn.init.xavier_uniform_(t)


def _decoder_input(model: SoVITSModel, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A realistic decoder input: z [1,inter,F] and ge [1,gin,1] from random codes, phones and reference."""
    cfg = model.cfg
    spec = torch.rand(1, 1025, 60, generator=gen)
    sv = [torch.randn(1, 20480, generator=gen)] if cfg.is_pro else None
    ge = model.reference_ge([spec], sv)
    codes = torch.randint(0, 1024, (1, 25), generator=gen)
    phones = torch.randint(0, cfg.n_symbols, (1, 12), generator=gen)
    quantized = F.interpolate(model.quantizer.decode(codes), scale_factor=2, mode="nearest")
    m_p, logs_p, mask, _ = model.enc_p(quantized, torch.tensor([50]), phones, torch.tensor([12]), model.mrte_ge(ge))
    z_p = m_p + torch.randn(m_p.shape, generator=gen) * torch.exp(logs_p) * 0.5
    return model.flow.reverse(z_p, mask, ge), ge


def _calibrate_decoder(model: SoVITSModel, z: torch.Tensor, g: torch.Tensor) -> list[float]:
    """Rescale each upsampling layer (then conv_post) so activations keep a useful range.

    z [1,inter,F] latent, g [1,gin,1]; each factor brings the stage's RMS to 1 (conv_post: 0.5).
    """
    dec = model.dec
    factors = []
    with torch.no_grad():
        x = dec.conv_pre(z)
        if dec.cond is not None:
            x = x + dec.cond(g)
        for i, module in enumerate(dec.ups):
            up = cast(torch.nn.ConvTranspose1d, module)
            # Scale the input-dependent part (not the bias) so the signal dominates the constant offset.
            bias = up.bias if up.bias is not None else torch.zeros(up.out_channels)
            y = up(F.leaky_relu(x, 0.1)) - bias.view(1, -1, 1)
            factor = 1.0 / max(float(y.pow(2).mean().sqrt()), 1e-6)
            up.weight.mul_(factor)
            factors.append(factor)
            x = up(F.leaky_relu(x, 0.1))
            blocks = [dec.resblocks[i * dec.num_kernels + j] for j in range(dec.num_kernels)]
            x = torch.stack([block(x, None) for block in blocks]).sum(0) / dec.num_kernels
        y = dec.conv_post(F.leaky_relu(x))
        factor = 0.5 / max(float(y.pow(2).mean().sqrt()), 1e-6)
        dec.conv_post.weight.mul_(factor)
        factors.append(factor)
    return factors


def _init_generator_convs(model: SoVITSModel, gen: torch.Generator) -> None:
    """HiFi-GAN init: upsampling and residual-block convs ~ N(0, 0.01)."""
    with torch.no_grad():
        for name, p in model.dec.named_parameters():
            if name.endswith(".weight") and (name.startswith("ups.") or name.startswith("resblocks.")):
                p.copy_(0.01 * torch.randn(p.shape, generator=gen))


def _sovits_state(version: str, size: str, seed: int) -> tuple[dict[str, Any], OrderedDict[str, torch.Tensor]]:
    config = sovits_config_for(version, size)
    cfg = SoVITSConfig.from_dict(config["model"], version)
    torch.manual_seed(seed)
    model = SoVITSModel(cfg)
    gen = torch.Generator().manual_seed(seed + 1)
    _init_generator_convs(model, gen)
    with torch.no_grad():
        state = model.state_dict()  # shares storage with the model
        for name, tensor in state.items():
            if re.match(r"flow\.flows\.\d+\.post\.", name):
                tensor.zero_()  # upstream zero-initialises the coupling outputs
        _perturb_constants(state, gen)
        prefix = "quantizer.vq.layers.0._codebook."
        embed = state[prefix + "embed"]
        embed.copy_(torch.randn(embed.shape, generator=gen))
        state[prefix + "embed_avg"].copy_(embed)
        state[prefix + "cluster_size"].fill_(1.0)
        state[prefix + "inited"].fill_(1.0)
        z, g = _decoder_input(model, gen)
        _calibrate_decoder(model, z, g)
    return config, _split_weight_norm(model.state_dict())


def _split_weight_norm(state: dict[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
    """Expand weight-normalised weights into (weight_g, weight_v) after the module's bias, fp16."""
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    pending: dict[str, torch.Tensor] = {}
    for name, t in state.items():
        if WEIGHT_NORM_PATTERN.match(name):
            pending[name[: -len(".weight")]] = t
            continue
        out[name] = t.detach().clone().half()
        base = name[: -len(".bias")] if name.endswith(".bias") else None
        if base is not None and base in pending:
            w = pending.pop(base).detach().float()
            g = w.pow(2).sum(dim=tuple(range(1, w.dim())), keepdim=True).sqrt()
            out[base + ".weight_g"] = g.half()
            out[base + ".weight_v"] = w.half()
    if pending:
        raise RuntimeError(f"weight-norm modules without bias: {sorted(pending)}")
    return out


# ----------------------------------------------------------------------------- saving

def _to_hparams(value: Any) -> Any:
    if isinstance(value, dict):
        obj = HParams()
        obj.__dict__.update({k: _to_hparams(v) for k, v in value.items()})
        return obj
    return value


@contextmanager
def _utils_module() -> Iterator[None]:
    """Make ``utils.HParams`` importable for pickle (upstream's class lives in module ``utils``)."""
    previous = sys.modules.get("utils")
    module = types.ModuleType("utils")
    module.HParams = HParams  # type: ignore[attr-defined]
    sys.modules["utils"] = module
    try:
        yield
    finally:
        if previous is None:
            sys.modules.pop("utils", None)
        else:
            sys.modules["utils"] = previous


def _save_with_timestamp_root(obj: Any, path: Path, seed: int) -> None:
    """torch.save through a file named like upstream's time-stamped temp file (sets the archive root)."""
    stamp = f"{1700000000 + seed % 100000000}.{(seed * 7919) % 1000000:06d}"
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        tmp_path = Path(tmp) / f"{stamp}.pth"
        torch.save(obj, tmp_path, pickle_protocol=2)
        os.replace(tmp_path, path)


def write_random_gpt(path: str | Path, size: str = "tiny", seed: int = 0) -> Path:
    """Write a random GPT ``.ckpt`` (v2 layout) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config, weight = _gpt_state(size, seed)
    _save_with_timestamp_root({"weight": weight, "config": config, "info": "GPT-e15"}, path, seed)
    return path


def write_random_sovits(path: str | Path, version: str = "v2", size: str = "tiny", seed: int = 0) -> Path:
    """Write a random SoVITS ``.pth`` (v2, v2Pro or v2ProPlus) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config, weight = _sovits_state(version, size, seed)
    obj = {"weight": weight, "config": _to_hparams(config), "info": "8epoch_96iteration"}
    buffer = io.BytesIO()
    with _utils_module():
        torch.save(obj, buffer, pickle_protocol=2)
    data = buffer.getvalue()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(SOVITS_VERSION_TAGS[version] + data[2:])
    os.replace(tmp, path)
    return path
