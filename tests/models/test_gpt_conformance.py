"""GPT conformance against upstream infer_panel_naive / infer_panel_batch_infer vectors.

Every set-specific fact (sizes, sampling arguments, early-stop limits, stop reasons, batch items) is read
from the conformance set's manifest, so these tests run unchanged on any set made the same way.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from renderer.engine.options import SamplingOptions
from tests.oracles import gpt_forward as fwd
from tests.oracles.gpt_reference import generate_batch_infer_reference, generate_reference

TOL = 1e-4
SINGLE_CALLS = ["gpt_single_rp135", "gpt_single_rp100"]


def _inputs(vec, target: str = "gpt_target"):
    phones = torch.cat([vec("gpt_prompt_phones"), vec(f"{target}_phones")])
    bert = torch.cat([vec("gpt_prompt_bert"), vec(f"{target}_bert")], dim=1)
    return phones, bert


def test_config_from_checkpoint(gpt, conformance):
    _, cfg, ckpt = gpt
    model = conformance.manifest["gpt"]["config_model"]
    assert (cfg.d_model, cfg.n_head, cfg.n_layer, cfg.vocab_size, cfg.phoneme_vocab_size, cfg.eos) == (
        model["embedding_dim"], model["head"], model["n_layer"], model["vocab_size"], model["phoneme_vocab_size"],
        model["EOS"])
    assert cfg.ffn == 4 * model["hidden_dim"]  # upstream ignores linear_units
    assert ckpt.max_sec == conformance.manifest["gpt"]["config_data"]["max_sec"]


def test_xy_pos_step0(gpt, vec):
    model, _, _ = gpt
    phones, bert = _inputs(vec)
    with torch.no_grad():
        x = fwd.embed_text(model, phones[None], bert[None])
        y = fwd.embed_semantic(model, vec("gpt_prompt_semantic")[None], 0)
    got = torch.cat([x, y], dim=1)[0]
    assert (got - vec("gpt_xy_pos_step0")).abs().max().item() <= 1e-5


@pytest.mark.parametrize("call", SINGLE_CALLS)
def test_single_decode(gpt, vec, conformance, call):
    model, _, _ = gpt
    phones, bert = _inputs(vec)
    res = generate_reference(model, phones, bert, vec("gpt_prompt_semantic"), conformance.options(call),
                             early_stop_num=conformance.early_stop(call))
    assert torch.equal(res.tokens, vec(f"{call}_generated"))
    assert res.idx == int(vec(f"{call}_idx"))
    assert res.stopped_by_eos == conformance.stopped_by_eos(call)
    ref_logits = vec(f"{call}_logits")
    assert res.logits.shape == ref_logits.shape
    assert (res.logits - ref_logits).abs().max().item() <= TOL
    assert (res.logits[0] - vec("gpt_first_step_logits")).abs().max().item() <= TOL
    full = torch.cat([vec("gpt_prompt_semantic"), res.tokens])
    assert torch.equal(full, vec(f"{call}_y"))


def test_reference_free(gpt, vec, conformance):
    model, _, _ = gpt
    call = "gpt_reffree"
    res = generate_reference(model, vec("gpt_target_phones"), vec("gpt_target_bert"), None,
                             conformance.options(call), conformance.early_stop(call))
    assert res.idx == int(conformance.call(call)["returned_idx"])
    assert torch.equal(res.tokens, vec("gpt_reffree_y").long())
    assert (res.logits - vec("gpt_reffree_logits")).abs().max().item() <= TOL


def _penalised(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    out = logits.clone()
    score = out[seen]
    out[seen] = torch.where(score < 0, score * penalty, score / penalty)
    return out


def test_eos_stop(gpt, vec, conformance):
    model, _, _ = gpt
    call = "gpt_single_eos"
    options = conformance.options(call)
    phones, bert = _inputs(vec, "gpt_eos_target")
    res = generate_reference(model, phones, bert, vec("gpt_prompt_semantic"), options,
                             early_stop_num=conformance.early_stop(call))
    assert res.stopped_by_eos == conformance.stopped_by_eos(call)
    assert res.idx == int(vec("gpt_eos_idx"))
    assert torch.equal(torch.cat([vec("gpt_prompt_semantic"), res.tokens]), vec("gpt_eos_y"))
    assert (res.logits - vec("gpt_eos_logits")).abs().max().item() <= TOL
    if res.stopped_by_eos:  # the last step is the one that chose EOS (greedy on the penalised logits)
        assert res.idx == res.tokens.numel()
        seen = torch.unique(torch.cat([vec("gpt_prompt_semantic"), res.tokens]))
        last = _penalised(res.logits[-1], seen, options.repetition_penalty)
        assert int(last.argmax()) == conformance.eos


def test_batch_infer(gpt, vec, conformance):
    model, _, _ = gpt
    call = "gpt_batch"
    items = conformance.batch_items()
    phones = [torch.cat([vec("gpt_prompt_phones"), vec(f"gpt_batch_target_phones_{i}")]) for i in items]
    berts = [torch.cat([vec("gpt_prompt_bert"), vec(f"gpt_batch_target_bert_{i}")], 1) for i in items]
    options, early = conformance.options(call), conformance.early_stop(call)
    res = generate_batch_infer_reference(model, phones, berts, vec("gpt_prompt_semantic"), options, early)
    assert res.idx == vec("gpt_batch_idx").tolist()
    assert (res.first_logits - vec("gpt_batch_first_step_logits")).abs().max().item() <= TOL
    for n, i in enumerate(items):
        assert torch.equal(res.ys[n], vec(f"gpt_batch_y_{i}"))
        assert torch.equal(res.ys[n][-res.idx[n]:], vec(f"gpt_batch_generated_{i}"))
        alone = generate_reference(model, phones[n], berts[n], vec("gpt_prompt_semantic"), options, early)
        assert torch.equal(torch.cat([vec("gpt_prompt_semantic"), alone.tokens]), vec(f"gpt_batch_single_ref_y_{i}"))


def test_batch_infer_eos(gpt, vec, conformance):
    model, _, _ = gpt
    call = "gpt_batch_eos"
    targets = conformance.eos_batch_targets()
    phones = [torch.cat([vec("gpt_prompt_phones"), vec(t)]) for t in targets]
    berts = [torch.cat([vec("gpt_prompt_bert"), vec(t.replace("_phones", "_bert"))], 1) for t in targets]
    options, early = conformance.options(call), conformance.early_stop(call)
    res = generate_batch_infer_reference(model, phones, berts, vec("gpt_prompt_semantic"), options, early)
    assert res.idx == vec("gpt_batch_eos_idx").tolist()
    for i in range(len(targets)):
        assert torch.equal(res.ys[i], vec(f"gpt_batch_eos_y_{i}"))
        alone = generate_reference(model, phones[i], berts[i], vec("gpt_prompt_semantic"), options, early)
        assert torch.equal(torch.cat([vec("gpt_prompt_semantic"), alone.tokens]),
                          vec(f"gpt_batch_eos_single_ref_y_{i}"))


def test_sampling_is_seeded_and_varies(gpt, vec):
    model, _, _ = gpt
    phones, bert = _inputs(vec)
    opts = SamplingOptions(top_k=15, temperature=1.0)

    def run(seed: int):
        return generate_reference(model, phones, bert, vec("gpt_prompt_semantic"), opts, 20,
                                  torch.Generator().manual_seed(seed)).tokens

    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))


def test_step_limit_keeps_all_tokens(gpt, vec, conformance, monkeypatch):
    """Without EOS or early stop the loop ends at its last index and keeps every token."""
    import tests.oracles.gpt_reference as reference

    model, _, _ = gpt
    call = "gpt_single_rp135"
    generated = vec(f"{call}_generated")
    steps = min(25, generated.numel())  # no EOS within the recorded tokens, so none before this limit
    monkeypatch.setattr(reference, "MAX_STEPS", steps)
    phones, bert = _inputs(vec)
    res = reference.generate_reference(model, phones, bert, vec("gpt_prompt_semantic"), conformance.options(call), -1)
    assert res.idx == steps - 1 and res.tokens.numel() == steps and not res.stopped_by_eos
    assert torch.equal(res.tokens, generated[:steps])
    assert np.isfinite(res.logits.numpy()).all()
