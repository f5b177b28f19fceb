"""GPT conformance against upstream infer_panel_naive / infer_panel_batch_infer vectors."""

from __future__ import annotations

import pytest
import torch

from renderer.engine.options import SamplingOptions
from tests.oracles import gpt_forward as fwd
from tests.oracles.gpt_reference import generate_batch_infer_reference, generate_reference

GREEDY_135 = SamplingOptions(top_k=1, repetition_penalty=1.35)
GREEDY_100 = SamplingOptions(top_k=1, repetition_penalty=1.0)
TOL = 1e-4


def _inputs(vec, target: str = "gpt_target"):
    phones = torch.cat([vec("gpt_prompt_phones"), vec(f"{target}_phones")])
    bert = torch.cat([vec("gpt_prompt_bert"), vec(f"{target}_bert")], dim=1)
    return phones, bert


def test_config_from_checkpoint(gpt):
    _, cfg, ckpt = gpt
    assert (cfg.d_model, cfg.n_head, cfg.n_layer, cfg.vocab_size, cfg.phoneme_vocab_size, cfg.eos) == (
        64, 4, 2, 1025, 732, 1024)
    assert cfg.ffn == 256
    assert ckpt.max_sec == 54


def test_xy_pos_step0(gpt, vec):
    model, _, _ = gpt
    phones, bert = _inputs(vec)
    with torch.no_grad():
        x = fwd.embed_text(model, phones[None], bert[None])
        y = fwd.embed_semantic(model, vec("gpt_prompt_semantic")[None], 0)
    got = torch.cat([x, y], dim=1)[0]
    assert (got - vec("gpt_xy_pos_step0")).abs().max().item() <= 1e-5


@pytest.mark.parametrize("name,options", [("rp135", GREEDY_135), ("rp100", GREEDY_100)])
def test_single_decode(gpt, vec, name, options):
    model, _, _ = gpt
    phones, bert = _inputs(vec)
    res = generate_reference(model, phones, bert, vec("gpt_prompt_semantic"), options, early_stop_num=40)
    assert torch.equal(res.tokens, vec(f"gpt_single_{name}_generated"))
    assert res.idx == int(vec(f"gpt_single_{name}_idx"))
    assert not res.stopped_by_eos
    ref_logits = vec(f"gpt_single_{name}_logits")
    assert res.logits.shape == ref_logits.shape
    assert (res.logits - ref_logits).abs().max().item() <= TOL
    assert (res.logits[0] - vec("gpt_first_step_logits")).abs().max().item() <= TOL
    full = torch.cat([vec("gpt_prompt_semantic"), res.tokens])
    assert torch.equal(full, vec(f"gpt_single_{name}_y"))


def test_reference_free(gpt, vec):
    model, _, _ = gpt
    res = generate_reference(model, vec("gpt_target_phones"), vec("gpt_target_bert"), None, GREEDY_135, 40)
    assert res.idx == 0
    assert torch.equal(res.tokens, vec("gpt_reffree_y").long())
    assert (res.logits - vec("gpt_reffree_logits")).abs().max().item() <= TOL


def test_eos_stop(gpt, vec):
    model, _, _ = gpt
    phones, bert = _inputs(vec, "gpt_eos_target")
    res = generate_reference(model, phones, bert, vec("gpt_prompt_semantic"), GREEDY_135, early_stop_num=97)
    assert res.stopped_by_eos
    assert res.idx == int(vec("gpt_eos_idx")) == res.tokens.numel()
    assert torch.equal(torch.cat([vec("gpt_prompt_semantic"), res.tokens]), vec("gpt_eos_y"))
    assert (res.logits - vec("gpt_eos_logits")).abs().max().item() <= TOL
    assert int(res.logits[-1].argmax()) == 1024  # the last step is the one that produced EOS


def test_batch_infer(gpt, vec):
    model, _, _ = gpt
    phones = [torch.cat([vec("gpt_prompt_phones"), vec(f"gpt_batch_target_phones_{i}")]) for i in range(3)]
    berts = [torch.cat([vec("gpt_prompt_bert"), vec(f"gpt_batch_target_bert_{i}")], 1) for i in range(3)]
    res = generate_batch_infer_reference(model, phones, berts, vec("gpt_prompt_semantic"), GREEDY_135, 40)
    assert res.idx == vec("gpt_batch_idx").tolist()
    assert (res.first_logits - vec("gpt_batch_first_step_logits")).abs().max().item() <= TOL
    for i in range(3):
        assert torch.equal(res.ys[i], vec(f"gpt_batch_y_{i}"))
        assert torch.equal(res.ys[i][-res.idx[i]:], vec(f"gpt_batch_generated_{i}"))
        alone = generate_reference(model, phones[i], berts[i], vec("gpt_prompt_semantic"), GREEDY_135, 40)
        assert torch.equal(torch.cat([vec("gpt_prompt_semantic"), alone.tokens]), vec(f"gpt_batch_single_ref_y_{i}"))


def test_batch_infer_eos(gpt, vec):
    model, _, _ = gpt
    targets = ["gpt_eos_target", "gpt_batch_target", "gpt_batch_target"]
    suffix = ["", "_0", "_1"]
    pairs = list(zip(targets, suffix, strict=True))
    phones = [torch.cat([vec("gpt_prompt_phones"), vec(f"{t}_phones{s}")]) for t, s in pairs]
    berts = [torch.cat([vec("gpt_prompt_bert"), vec(f"{t}_bert{s}")], 1) for t, s in pairs]
    res = generate_batch_infer_reference(model, phones, berts, vec("gpt_prompt_semantic"), GREEDY_135, 97)
    assert res.idx == vec("gpt_batch_eos_idx").tolist()
    for i in range(3):
        assert torch.equal(res.ys[i], vec(f"gpt_batch_eos_y_{i}"))
    alone = generate_reference(model, phones[1], berts[1], vec("gpt_prompt_semantic"), GREEDY_135, 97)
    assert torch.equal(torch.cat([vec("gpt_prompt_semantic"), alone.tokens]), vec("gpt_batch_eos_single_ref_y_1"))


def test_sampling_is_seeded_and_varies(gpt, vec):
    model, _, _ = gpt
    phones, bert = _inputs(vec)
    opts = SamplingOptions(top_k=15, temperature=1.0)

    def run(seed: int):
        return generate_reference(model, phones, bert, vec("gpt_prompt_semantic"), opts, 20,
                                  torch.Generator().manual_seed(seed)).tokens

    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))


def test_step_limit_keeps_all_tokens(gpt, vec, monkeypatch):
    """Without EOS or early stop the loop ends at its last index and keeps every token."""
    import tests.oracles.gpt_reference as reference

    model, _, _ = gpt
    monkeypatch.setattr(reference, "MAX_STEPS", 25)
    phones, bert = _inputs(vec)
    res = reference.generate_reference(model, phones, bert, vec("gpt_prompt_semantic"), GREEDY_135, -1)
    assert res.idx == 24 and res.tokens.numel() == 25 and not res.stopped_by_eos
    assert torch.equal(res.tokens, vec("gpt_single_rp135_generated")[:25])
