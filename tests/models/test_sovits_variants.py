"""SoVITS pieces not covered by the public vectors: resblock type '2', padding invariance."""

from __future__ import annotations

import torch

from renderer.models.sovits import SoVITSConfig, SoVITSModel


def _tiny(resblock: str) -> SoVITSModel:
    cfg = SoVITSConfig(version="v2", inter_channels=8, filter_channels=32, n_layers=2, resblock=resblock,
                       resblock_kernel_sizes=(3, 5), resblock_dilation_sizes=((1, 3), (1, 3)),
                       upsample_initial_channel=32, gin_channels=512)
    torch.manual_seed(0)
    model = SoVITSModel(cfg).eval()
    with torch.no_grad():
        model.quantizer.embed.copy_(torch.randn(1024, 768))
    return model


def test_resblock2_layout_and_batching():
    model = _tiny("2")
    names = [n for n in model.state_dict() if n.startswith("dec.resblocks.0.")]
    assert names == ["dec.resblocks.0.convs.0.weight", "dec.resblocks.0.convs.0.bias",
                     "dec.resblocks.0.convs.1.weight", "dec.resblocks.0.convs.1.bias"]
    ge = torch.randn(1, 512, 1) * 0.1
    gen = torch.Generator().manual_seed(1)
    rows = [(torch.randint(0, 1024, (n,), generator=gen), torch.randint(0, 732, (m,), generator=gen))
            for n, m in ((9, 7), (4, 3))]
    noise = torch.randn(2, 8, 18, generator=gen)
    singles = [model.decode(c[None], torch.tensor([len(c)]), p[None], torch.tensor([len(p)]), ge, 0.5, 1.0,
                            noise=noise[i:i + 1])[0][0] for i, (c, p) in enumerate(rows)]
    codes = torch.nn.utils.rnn.pad_sequence([c for c, _ in rows], batch_first=True)
    phones = torch.nn.utils.rnn.pad_sequence([p for _, p in rows], batch_first=True)
    audio, lengths = model.decode(codes, torch.tensor([9, 4]), phones, torch.tensor([7, 3]), ge, 0.5, 1.0,
                                  noise=noise)
    assert lengths.tolist() == [9 * 1280, 4 * 1280]
    for i, single in enumerate(singles):
        assert (audio[i, : lengths[i]] - single).abs().max().item() <= 1e-4


def test_padding_values_do_not_leak():
    """Whatever sits in the padded positions (codes, phones), valid rows are unchanged."""
    model = _tiny("1")
    ge = torch.randn(1, 512, 1) * 0.1
    codes = torch.randint(0, 1024, (2, 10))
    phones = torch.randint(0, 732, (2, 8))
    lengths, plen = torch.tensor([10, 6]), torch.tensor([8, 5])
    noise = torch.randn(2, 8, 20)
    a, _ = model.decode(codes, lengths, phones, plen, ge, noise=noise)
    codes2, phones2 = codes.clone(), phones.clone()
    codes2[1, 6:] = 7
    phones2[1, 5:] = 3
    b, _ = model.decode(codes2, lengths, phones2, plen, ge, noise=noise)
    assert (a[1, : 6 * 1280] - b[1, : 6 * 1280]).abs().max().item() <= 1e-5
