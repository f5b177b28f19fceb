"""SoVITS conformance against upstream SynthesizerTrn.decode / extract_latent / spectrogram_torch.

The decode cases (model, references, speaker embeddings, noise scale, speed) and the intermediates compared
are the ones the conformance set's manifest records.
"""

from __future__ import annotations

import pytest
import torch

from renderer.models.spectrogram import linear_spectrogram
from tests.conformance import SovitsCase, sovits_case_params

AUDIO_TOL = 1e-3
CASES = sovits_case_params()


@pytest.mark.parametrize("wav,spec", [("sovits_ref_wav", "sovits_ref_spec"), ("sovits_ref2_wav", "sovits_ref2_spec")])
def test_spectrogram(vec, wav, spec):
    got = linear_spectrogram(vec(wav))
    assert got.shape == vec(spec).shape
    assert (got - vec(spec)).abs().max().item() <= 1e-3


def test_spectrogram_normalises_loud_input(vec):
    wav = vec("sovits_ref_wav")
    loud = wav / wav.abs().max() * 1.5
    assert torch.allclose(linear_spectrogram(loud), linear_spectrogram(loud / 1.5), atol=1e-4)


def _run(model, cfg, vec, case: SovitsCase):
    ge = model.reference_ge([vec(r) for r in case.refs], [vec(s) for s in case.svs] if cfg.is_pro else None)
    codes, phones = vec("sovits_codes")[0], vec("sovits_phones")
    audio, lengths = model.decode(codes, torch.tensor([codes.shape[1]]), phones, torch.tensor([phones.shape[1]]),
                                  ge, case.noise_scale, case.speed, noise=vec(f"{case.prefix}_noise"))
    return audio, lengths


def test_every_model_has_decode_cases(conformance):
    assert {c.model for c in conformance.sovits_cases()} == {"sovits_v2", "sovits_v2pp"}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.prefix)
def test_decode_waveform(request, vec, case):
    model, cfg, _ = request.getfixturevalue(case.model)
    prefix = case.prefix
    audio, lengths = _run(model, cfg, vec, case)
    ref = vec(f"{prefix}_audio")[0]
    assert audio.shape == ref.shape and int(lengths[0]) == ref.shape[1]
    err = (audio - ref).abs().max().item()
    print(f"{prefix}: max abs {err:.3g}")
    assert err <= AUDIO_TOL


@pytest.mark.parametrize("case", [c for c in CASES if c.noise_scale > 0], ids=lambda c: c.prefix)
def test_decode_intermediates(request, vec, conformance, case):
    model, cfg, _ = request.getfixturevalue(case.model)
    prefix, refs, svs, speed = case.prefix, case.refs, case.svs, case.speed
    if not conformance.has(f"{prefix}_enc_p_m"):
        pytest.skip(f"the conformance set records no intermediates for {prefix}")
    with torch.no_grad():
        for j, r in enumerate(refs):
            spec = vec(r)
            mask = torch.ones(1, 1, spec.shape[2])
            ge_j = model.ref_enc(spec[:, :704] * mask, mask)
            assert (ge_j - vec(f"{prefix}_ge_ref_enc_{j}")).abs().max().item() <= 1e-4
            if cfg.is_pro:
                pre = model.reference_embedding(spec, vec(svs[j]))
                assert (pre - vec(f"{prefix}_ge_prelu_{j}")).abs().max().item() <= 1e-4
        ge = model.reference_ge([vec(r) for r in refs], [vec(s) for s in svs] if cfg.is_pro else None)
        if cfg.is_pro:
            ge512 = model.ge_to512(ge.transpose(2, 1))
            assert (ge512 - vec(f"{prefix}_ge512")).abs().max().item() <= 1e-4
        codes, phones = vec("sovits_codes")[0], vec("sovits_phones")
        quantized = model.quantizer.decode(codes)
        assert (quantized - vec(f"{prefix}_quantized")).abs().max().item() <= 1e-5
        up = torch.nn.functional.interpolate(quantized, size=2 * quantized.shape[-1], mode="nearest")
        m_p, logs_p, mask, _ = model.enc_p(up, torch.tensor([up.shape[2]]), phones, torch.tensor([phones.shape[1]]),
                                           model.mrte_ge(ge), speed)
        assert (m_p - vec(f"{prefix}_enc_p_m")).abs().max().item() <= 1e-4
        assert (logs_p - vec(f"{prefix}_enc_p_logs")).abs().max().item() <= 1e-4
        assert torch.equal(mask, vec(f"{prefix}_y_mask"))
        z_p = m_p + vec(f"{prefix}_noise") * torch.exp(logs_p) * case.noise_scale
        assert (z_p - vec(f"{prefix}_z_p")).abs().max().item() <= 1e-4
        z = model.flow.reverse(vec(f"{prefix}_z_p"), mask, ge)
        assert (z - vec(f"{prefix}_z")).abs().max().item() <= 1e-4


def test_extract_latent(sovits_v2, vec):
    model, _, _ = sovits_v2
    codes = model.extract_latent(vec("sovits_ssl"))
    assert torch.equal(codes, vec("sovits_v2_extract_latent_codes"))


@pytest.mark.parametrize("speed", [1.0, 1.25])
def test_batched_decode_matches_single_rows(sovits_v2pp, vec, speed):
    model, cfg, _ = sovits_v2pp
    ge = model.reference_ge([vec("sovits_ref_spec")], [vec("sovits_sv_emb")])
    codes, phones = vec("sovits_codes")[0, 0], vec("sovits_phones")[0]
    t, n = len(codes), len(phones)  # three rows of different lengths cut from the recorded codes and phones
    rows = [(codes, phones), (codes[t // 6: t // 6 + 2 * t // 5], phones[: n // 2]),
            (codes[: 3 * t // 4], phones[n // 6: n // 6 + 2 * n // 3])]
    gen = torch.Generator().manual_seed(5)
    noises = [torch.randn(1, cfg.inter_channels, 80, generator=gen) for _ in rows]
    singles = [model.decode(c[None], torch.tensor([len(c)]), p[None], torch.tensor([len(p)]), ge, 0.5, speed, noise=n)
               for (c, p), n in zip(rows, noises, strict=True)]
    code_batch = torch.nn.utils.rnn.pad_sequence([c for c, _ in rows], batch_first=True)
    phone_batch = torch.nn.utils.rnn.pad_sequence([p for _, p in rows], batch_first=True)
    audio, lengths = model.decode(code_batch, torch.tensor([len(c) for c, _ in rows]), phone_batch,
                                  torch.tensor([len(p) for _, p in rows]), ge, 0.5, speed, noise=torch.cat(noises))
    assert len(set(lengths.tolist())) == 3
    for i, (single, single_len) in enumerate(singles):
        n = int(lengths[i])
        assert n == int(single_len[0]) == single.shape[1]
        expected = (2 * len(rows[i][0]) if speed == 1.0 else int(2 * len(rows[i][0]) / speed) + 1) * 640
        assert n == expected
        assert (audio[i, :n] - single[0]).abs().max().item() <= 1e-4
