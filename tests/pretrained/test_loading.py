"""Bad checkpoints give clear errors: missing tensors, truncated safetensors, unknown model_type,
a malicious pickle (refused without running), and the int8 layer's arithmetic."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from glassformer.models.encoder import EncoderConfig, TransformerEncoderModel
from glassformer.pretrained import CheckpointError, Int8Linear, from_pretrained, read_state_dict, save_pretrained
from glassformer.pretrained.hub import resolve


@pytest.fixture()
def tiny_bert_dir(tmp_path):
    """A valid tiny BERT checkpoint directory written by save_pretrained."""
    torch.manual_seed(0)
    save_pretrained(TransformerEncoderModel(EncoderConfig.preset("tiny")), tmp_path / "ok")
    return tmp_path / "ok"


def test_valid_directory_loads(tiny_bert_dir):
    assert from_pretrained(tiny_bert_dir).family == "bert"


def test_missing_and_unexpected_tensors_are_all_listed(tiny_bert_dir):
    state = load_file(tiny_bert_dir / "model.safetensors")
    del state["encoder.layer.1.attention.self.key.weight"]
    del state["embeddings.LayerNorm.bias"]
    state["encoder.layer.7.mystery.weight"] = torch.zeros(3)
    save_file(state, tiny_bert_dir / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError) as info:
        from_pretrained(tiny_bert_dir)
    message = str(info.value)
    assert "2 missing tensor(s)" in message
    assert "encoder.layer.1.attention.self.key.weight" in message and "embeddings.LayerNorm.bias" in message
    assert "1 unexpected tensor(s): encoder.layer.7.mystery.weight" in message


def test_wrong_shape_names_both_shapes(tiny_bert_dir):
    state = load_file(tiny_bert_dir / "model.safetensors")
    state["encoder.layer.0.intermediate.dense.weight"] = torch.zeros(100, 64)
    save_file(state, tiny_bert_dir / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match=r"intermediate\.dense\.weight: shape \(100, 64\).*needs \(128, 64\)"):
        from_pretrained(tiny_bert_dir)


def test_truncated_safetensors_is_reported(tiny_bert_dir):
    path = tiny_bert_dir / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        read_state_dict(tiny_bert_dir)
    path.write_bytes(data[:5])
    with pytest.raises(CheckpointError, match="truncated"):
        from_pretrained(tiny_bert_dir)


def test_unknown_model_type_lists_the_supported_ones(tiny_bert_dir):
    config = json.loads((tiny_bert_dir / "config.json").read_text())
    config["model_type"] = "llama"
    (tiny_bert_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"unsupported model_type 'llama'.*bert, gpt2, marian, vit"):
        from_pretrained(tiny_bert_dir)


def test_directory_without_weights_or_config(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(CheckpointError, match="holds no weights"):
        from_pretrained(tmp_path)
    shutil.rmtree(tmp_path)
    tmp_path.mkdir()
    with pytest.raises(CheckpointError, match="no config.json"):
        from_pretrained(tmp_path)


def test_unknown_name_is_explained(tmp_path):
    with pytest.raises(CheckpointError, match="known name"):
        resolve(str(tmp_path / "nowhere"))


class _Payload:
    """Pickles as a call to print: what a malicious checkpoint would do with os.system."""

    def __reduce__(self):
        return (print, ("pwned",))


def test_malicious_pickle_is_refused_without_running(tiny_bert_dir, capsys):
    (tiny_bert_dir / "model.safetensors").unlink()
    torch.save({"embeddings.word_embeddings.weight": torch.zeros(2, 2), "evil": _Payload()},
               tiny_bert_dir / "pytorch_model.bin")
    capsys.readouterr()
    with pytest.raises(CheckpointError, match=r"refused to load .*pytorch_model.bin.*references (builtins\.)?print.*never runs code"):
        from_pretrained(tiny_bert_dir)
    assert "pwned" not in capsys.readouterr().out


def test_int8_linear_is_close_to_float():
    """Reference: torch.nn.Linear in float; int8 error stays within a few quantisation steps."""
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 48)
    x = torch.randn(5, 7, 64)
    x[..., 3] += 4.0  # a skewed, outlier feature like BERT's
    quantised = Int8Linear.from_linear(linear)
    expected, got = linear(x), quantised(x)
    assert got.shape == expected.shape
    assert (got - expected).abs().max() < 0.05
    assert torch.nn.functional.cosine_similarity(got.flatten(), expected.flatten(), dim=0) > 0.999
    assert (quantised(x[:1, :2]) - linear(x[:1, :2])).abs().max() < 0.05  # fewer than 17 rows: padded path


@pytest.mark.parametrize("rows", [3, 40])
def test_int8_linear_without_int8_dot_products_computes_the_same_integers(monkeypatch, rows):
    """Reference: the int32 product of the quantised values (torch._int_mm, exact); the fp32 branch that CPUs
    without VNNI take must give the same output."""
    from glassformer.nn import quantize

    torch.manual_seed(0)
    quantised = Int8Linear.from_linear(torch.nn.Linear(96, 40))
    x = torch.randn(rows, 96) * 3
    monkeypatch.setattr(quantize, "int8_dot", lambda: True)
    exact = quantised(x)
    monkeypatch.setattr(quantize, "int8_dot", lambda: False)
    assert torch.allclose(quantised(x), exact, rtol=0, atol=1e-5)
