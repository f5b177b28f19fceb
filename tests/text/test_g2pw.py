"""The G2PW loader, exercised with a tiny ONNX stand-in that scores readings by the phoneme mask."""

import json
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from renderer.errors import TextError
from renderer.text import TextFrontend
from renderer.text.g2pw import G2PW


def _write_model(folder: Path, reversed_order: bool) -> None:
    """probs = phoneme_mask * weights: the allowed reading with the largest weight wins."""
    n_labels = 4
    weights = [1.0, 2.0, 3.0, 4.0] if reversed_order else [4.0, 3.0, 2.0, 1.0]
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["B", "T"]) for n in
              ("input_ids", "token_type_ids", "attention_mask")]  # fmt: skip
    inputs += [
        helper.make_tensor_value_info("phoneme_mask", TensorProto.FLOAT, ["B", n_labels]),
        helper.make_tensor_value_info("char_ids", TensorProto.INT64, ["B"]),
        helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["B"]),
    ]
    w = helper.make_tensor("w", TensorProto.FLOAT, [n_labels], weights)
    node = helper.make_node("Mul", ["phoneme_mask", "w"], ["probs"])
    out = helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["B", n_labels])
    graph = helper.make_graph([node], "tiny_g2pw", inputs, [out], initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(folder / "g2pW.onnx"))


def _write_folder(folder: Path, reversed_order: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    _write_model(folder, reversed_order)
    # labels sorted: ㄏㄤ2 ㄏㄤ4? we use 4 readings: 行 (xing2 / hang2), 长 (chang2 / zhang3)
    (folder / "POLYPHONIC_CHARS.txt").write_text("行\tㄒㄧㄥ2\n行\tㄏㄤ2\n长\tㄓㄤ3\n长\tㄔㄤ2\n", encoding="utf-8")
    (folder / "MONOPHONIC_CHARS.txt").write_text("你\tㄋㄧ3\n", encoding="utf-8")
    mapping = {"ㄒㄧㄥ": "xing", "ㄏㄤ": "hang", "ㄓㄤ": "zhang", "ㄔㄤ": "chang", "ㄋㄧ": "ni"}
    (folder / "bopomofo_to_pinyin_wo_tune_dict.json").write_text(json.dumps(mapping, ensure_ascii=False), "utf-8")
    (folder / "config.py").write_text("use_mask = True\nuse_char_phoneme = False\n", encoding="utf-8")
    (folder / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n银\n行\n长\n你\n", encoding="utf-8")
    return folder


def test_g2pw_picks_best_allowed_reading(tmp_path: Path) -> None:
    g = G2PW(_write_folder(tmp_path / "a"))
    # labels sorted by bopomofo: ㄏㄤ2, ㄒㄧㄥ2, ㄓㄤ3, ㄔㄤ2 ; weights favour the first allowed one
    assert g.labels == ["ㄏㄤ2", "ㄒㄧㄥ2", "ㄓㄤ3", "ㄔㄤ2"]
    assert g("银行长,你好") == ["yin2", "hang2", "zhang3", ",", "ni3", "hao3"]
    g2 = G2PW(_write_folder(tmp_path / "b", reversed_order=True))
    assert g2("银行长") == ["yin2", "xing2", "chang2"]


def test_frontend_uses_g2pw_and_records_it(tmp_path: Path) -> None:
    fe = TextFrontend(g2pw_model=_write_folder(tmp_path / "m", reversed_order=True))
    ph = fe.phonemize("他很行。", "zh")
    assert ph.g2p == "g2pw"
    assert ph.phones[-3:-1] == ["x", "ing2"]
    # dictionary phrases win over the model, as upstream's polyphone corrections do
    assert fe.phonemize("我去银行。", "zh").phones[-3:-1] == ["h", "ang2"]
    assert TextFrontend().phonemize("他很行。", "zh").g2p == "pypinyin"


def test_incomplete_g2pw_folder_is_reported(tmp_path: Path) -> None:
    with pytest.raises(TextError, match="not a G2PW model folder"):
        G2PW(tmp_path)
