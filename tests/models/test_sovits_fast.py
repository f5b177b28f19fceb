"""The fast CPU SoVITS path (renderer.models.sovits_fast) against the reference decode."""

from __future__ import annotations

import copy

import pytest
import torch

from renderer.models import sovits_fast
from renderer.models.sovits import SoVITSConfig, SoVITSModel, load_sovits
from renderer.models.sovits_fast import FastGenerator, cpu_supports_bf16, prepare_for_inference
from tests.conformance import SovitsCase, sovits_case_params

FP32_TOL = 1e-4
#: bf16 must keep the waveform's signal-to-error ratio at or above this (dB). 30 dB = error energy
#: 0.1 % of the signal: far below the change a different noise draw makes (≈ 0 dB, the vocoder is
#: noise driven) and below the coding noise of the MP3/AAC export that follows.
BF16_MIN_SER_DB = 30.0
#: The conformance set's recorded decode calls that draw noise (its manifest says which).
CASES = [c for c in sovits_case_params() if c.noise_scale > 0]


def ser_db(ref: torch.Tensor, out: torch.Tensor) -> float:
    err = (out.double() - ref.double()).pow(2).sum()
    return float(10 * torch.log10(ref.double().pow(2).sum() / err)) if err > 0 else float("inf")


@pytest.fixture(scope="module")
def prepared(conformance):
    """Per version: (reference model, fp32-prepared copy, config); never the shared conformance fixtures."""
    out = {}
    for which in ("v2", "v2pp"):
        ref, cfg, _ = load_sovits(conformance.file(f"sovits_{which}"))
        out[which] = (ref, prepare_for_inference(copy.deepcopy(ref), "fp32"), cfg)
    return out


def _decode(model, cfg, vec, case: SovitsCase):
    ge = model.reference_ge([vec(r) for r in case.refs], [vec(s) for s in case.svs] if cfg.is_pro else None)
    codes, phones = vec("sovits_codes")[0], vec("sovits_phones")
    audio, lengths = model.decode(codes, torch.tensor([codes.shape[1]]), phones, torch.tensor([phones.shape[1]]),
                                  ge, case.noise_scale, case.speed, noise=vec(f"{case.prefix}_noise"))
    return audio, lengths


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.prefix)
def test_fp32_prepared_matches_conformance_vectors(prepared, vec, case):
    _, fast, cfg = prepared[case.which]
    assert fast.fast_dec is not None
    audio, lengths = _decode(fast, cfg, vec, case)
    expected = vec(f"{case.prefix}_audio")[0]
    assert audio.shape == expected.shape and int(lengths[0]) == expected.shape[1]
    assert (audio - expected).abs().max().item() <= FP32_TOL


def _rows(cfg: SoVITSConfig, seed: int = 3):
    g = torch.Generator().manual_seed(seed)
    lens = [(12, 7), (9, 5), (5, 3)]
    codes = torch.zeros(3, 12, dtype=torch.long)
    phones = torch.zeros(3, 7, dtype=torch.long)
    noise = torch.zeros(3, cfg.inter_channels, 24)
    for i, (t, n) in enumerate(lens):
        codes[i, :t] = torch.randint(0, 1024, (t,), generator=g)
        phones[i, :n] = torch.randint(1, 732, (n,), generator=g)
        noise[i, :, : 2 * t] = torch.randn(cfg.inter_channels, 2 * t, generator=g)
    return codes, phones, noise, torch.tensor([t for t, _ in lens]), torch.tensor([n for _, n in lens])


def _batch_vs_rows(model, cfg, ge, tol_check):
    codes, phones, noise, t_lens, n_lens = _rows(cfg)
    audio, lengths = model.decode(codes, t_lens, phones, n_lens, ge, 0.5, 1.0, noise=noise)
    assert lengths.tolist() == [int(t) * 1280 for t in t_lens]
    for i in range(3):
        t, n = int(t_lens[i]), int(n_lens[i])
        single, _ = model.decode(codes[i:i + 1, :t], t_lens[i:i + 1], phones[i:i + 1, :n], n_lens[i:i + 1], ge,
                                 0.5, 1.0, noise=noise[i:i + 1, :, : 2 * t])
        tol_check(audio[i, : lengths[i]], single[0])


def test_batched_prepared_decode_equals_per_row(prepared, vec):
    _, fast, cfg = prepared["v2"]
    ge = fast.reference_ge([vec("sovits_ref_spec")])

    def check(batched, single):
        assert (batched - single).abs().max().item() <= FP32_TOL

    _batch_vs_rows(fast, cfg, ge, check)


@pytest.mark.skipif(not cpu_supports_bf16(), reason="this CPU has no native bf16 (AVX512-BF16/AMX)")
def test_bf16_signal_to_error_ratio(prepared, vec):
    which = "v2pp"
    ref_model, _, cfg = prepared[which]
    model = prepare_for_inference(copy.deepcopy(ref_model), "bf16")
    for case in [c for c in CASES if c.which == which][:1]:
        expected, _ = _decode(ref_model, cfg, vec, case)
        audio, _ = _decode(model, cfg, vec, case)
        assert audio.dtype == torch.float32
        assert ser_db(expected, audio) >= BF16_MIN_SER_DB
    ge = model.reference_ge([vec("sovits_ref_spec")], [vec("sovits_sv_emb")] if cfg.is_pro else None)
    _batch_vs_rows(model, cfg, ge, lambda b, s: ser_db(s, b) >= BF16_MIN_SER_DB or pytest.fail("bf16 batch"))


def test_prepare_is_idempotent_and_keeps_state_dict(prepared):
    model = copy.deepcopy(prepared["v2"][0])
    keys = list(model.state_dict())
    assert prepare_for_inference(model) is model
    first = model.fast_dec
    prepare_for_inference(model, "fp32")
    assert model.fast_dec is first
    assert list(model.state_dict()) == keys
    assert not any(p.requires_grad for p in model.parameters())


def test_bf16_refused_without_cpu_support(prepared, monkeypatch):
    model = copy.deepcopy(prepared["v2"][0])
    monkeypatch.setattr(sovits_fast, "cpu_supports_bf16", lambda: False)
    with pytest.raises(ValueError, match="bf16"):
        prepare_for_inference(model, "bf16")
    with pytest.raises(ValueError, match="precision"):
        prepare_for_inference(model, "fp16")  # type: ignore[arg-type]


@pytest.mark.parametrize("resblock", ["1", "2"])
@pytest.mark.parametrize("fused", [True, False])
def test_fast_generator_equals_reference_with_padding(resblock, fused, monkeypatch):
    """Both resblock types, with and without oneDNN's fused ops, on a padded batch."""
    if not fused:
        monkeypatch.setattr(sovits_fast, "fused_ops_available", lambda: False)
    cfg = SoVITSConfig(version="v2", inter_channels=8, filter_channels=32, n_layers=2, resblock=resblock,
                       resblock_kernel_sizes=(3, 5), resblock_dilation_sizes=((1, 3, 5), (1, 3, 5)),
                       upsample_initial_channel=32, gin_channels=512)
    torch.manual_seed(0)
    gen = SoVITSModel(cfg).eval().dec
    lengths = torch.tensor([12, 7, 3])
    mask = (torch.arange(12).view(1, -1) < lengths.view(-1, 1)).unsqueeze(1).float()
    x = torch.randn(3, 8, 12) * mask
    g = torch.randn(3, 512, 1) * 0.1
    with torch.inference_mode():
        expected = gen(x, g, lengths)
        got = FastGenerator(gen, "fp32")(x, g, lengths)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() <= 1e-5


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_export_tracing_uses_reference_generator(prepared):
    model = prepared["v2"][1]
    z = torch.zeros(1, 1, 1)
    assert model._use_fast_dec(z)
    seen = []

    def probe(t: torch.Tensor) -> torch.Tensor:
        seen.append(model._use_fast_dec(t))
        return t + 1

    torch.jit.trace(probe, (z,), check_trace=False)
    assert seen == [False]


def _long_input(gen, cfg: SoVITSConfig, frames: int, seed: int = 5):
    rng = torch.Generator().manual_seed(seed)
    x = torch.randn(1, cfg.inter_channels, frames, generator=rng)
    g = torch.randn(1, gen.cond.in_channels, 1, generator=rng) if gen.cond is not None else None
    return x, g


@pytest.mark.parametrize("which", ["v2", "v2pp"])
def test_receptive_field_bounds_what_one_output_sample_sees(prepared, which):
    """Changing one input frame changes the reference generator's output only within the computed reach:
    the margin a window needs (sovits_fast.receptive_field_frames) is an upper bound, not a guess."""
    ref, _, cfg = prepared[which]
    reach = sovits_fast.receptive_field_frames(ref.dec)
    x, g = _long_input(ref.dec, cfg, 4 * reach + 9)
    with torch.no_grad():
        base = ref.dec(x, g)[0, 0]
        frame = x.shape[2] // 2
        nudged = x.clone()
        nudged[:, :, frame] += 1.0
        changed = ((ref.dec(nudged, g)[0, 0] - base).abs() > 0).nonzero().flatten()
    assert changed.numel() > 0
    per_frame = cfg.samples_per_frame
    assert int(changed.min()) >= (frame - reach) * per_frame
    assert int(changed.max()) < (frame + 1 + reach) * per_frame


@pytest.mark.parametrize("which", ["v2", "v2pp"])
def test_long_rows_are_generated_in_windows_with_the_same_audio(prepared, which, monkeypatch):
    ref, _, cfg = prepared[which]
    whole = FastGenerator(ref.dec, "fp32", 0)
    windowed = FastGenerator(ref.dec, "fp32", 40)
    x, g = _long_input(ref.dec, cfg, 3 * 40 + 2 * windowed.margin_frames + 7)
    calls = []
    inner = windowed._whole
    monkeypatch.setattr(windowed, "_whole", lambda *a: calls.append(a[0].shape[2]) or inner(*a))
    with torch.no_grad():
        expected, got = whole(x, g), windowed(x, g)
    # windows, never the whole row
    assert len(calls) == -(-x.shape[2] // 40) and max(calls) <= 40 + 2 * windowed.margin_frames
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() <= FP32_TOL
    calls.clear()
    with torch.no_grad():  # a short row is generated whole
        windowed(x[:, :, :60], g)
    assert calls == [60]
    # a ragged batch with a long row: row by row, the long one in windows, the same audio as whole
    lengths = torch.tensor([x.shape[2], 50])
    batch_g = g.expand(2, -1, -1) if g is not None else None
    with torch.no_grad():
        expected, got = whole(x.expand(2, -1, -1), batch_g, lengths), windowed(x.expand(2, -1, -1), batch_g, lengths)
    assert got.shape == expected.shape
    assert (got[0] - expected[0]).abs().max().item() <= FP32_TOL
    short = 50 * cfg.samples_per_frame
    assert (got[1, :, :short] - expected[1, :, :short]).abs().max().item() <= FP32_TOL
