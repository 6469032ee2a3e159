"""Saved model directories: round trip, and a clear error for every kind of damage."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from glassformer._files import write_manifest
from glassformer.models.encoder import EncoderClassifier, EncoderConfig
from glassformer.tokenizers.words import WordTokenizer
from glassformer.training.saved import SavedModelError, load_saved, register_model_class, save_model

from .helpers import TinyClassifier, TinyConfig

register_model_class(TinyClassifier)


def _encoder_dir(tmp_path):
    torch.manual_seed(0)
    model = EncoderClassifier(EncoderConfig.preset("tiny", vocab_size=40, num_labels=2)).eval()
    tokenizer = WordTokenizer()
    tokenizer.train(["a good film", "a bad film", "good good bad"])
    metrics = tmp_path / "run" / "metrics.jsonl"
    metrics.parent.mkdir()
    metrics.write_text(json.dumps({"kind": "eval", "step": 1, "metrics": {"accuracy": 0.5}}) + "\n")
    path = save_model(tmp_path / "saved", model, task="sentiment", label_names=["negative", "positive"],
                      tokenizer=tokenizer, metrics_file=metrics)
    return model, tokenizer, path


def test_glassformer_encoder_round_trip(tmp_path):
    model, tokenizer, path = _encoder_dir(tmp_path)
    config = json.loads((path / "config.json").read_text())
    assert config["model_class"] == "EncoderClassifier" and config["format_version"] == 2
    assert config["model_config"]["d_model"] == 64 and config["glassformer_version"]
    loaded = load_saved(path)
    assert type(loaded.model) is EncoderClassifier and loaded.model.config == model.config
    assert loaded.task == "sentiment" and loaded.label_names == ["negative", "positive"]
    assert loaded.tokenizer.encode("a good film") == tokenizer.encode("a good film")
    assert loaded.metrics[0]["metrics"]["accuracy"] == 0.5
    ids = torch.tensor([tokenizer.encode("a good film") + [0, 0]])
    with torch.no_grad():
        assert torch.equal(loaded.model(ids).logits, model(ids).logits)


def test_tied_weights_and_registered_class(tmp_path):
    torch.manual_seed(0)
    model = TinyClassifier(TinyConfig(d_model=20, num_labels=20, vocab_size=20))
    model.head.weight = model.embed.weight  # a tie, like an LM head sharing the embedding
    path = save_model(tmp_path / "tiny", model)
    assert "head.weight" not in load_file(str(path / "model.safetensors"))
    loaded = load_saved(path).model
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    return save_model(tmp_path / "tiny", TinyClassifier(TinyConfig()), label_names=["no", "yes"])


def test_missing_parts(saved, tmp_path):
    with pytest.raises(SavedModelError, match="nowhere is not a directory"):
        load_saved(tmp_path / "nowhere")
    (saved / "model.safetensors").unlink()
    with pytest.raises(SavedModelError, match=r"tiny has no model.safetensors"):
        load_saved(saved)
    (saved / "config.json").unlink()
    with pytest.raises(SavedModelError, match=r"tiny has no config.json"):
        load_saved(saved)


def test_damaged_files(saved):
    weights = saved / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(SavedModelError, match="model.safetensors has 100 bytes but its manifest recorded"):
        load_saved(saved)
    with pytest.raises(SavedModelError, match="model.safetensors is truncated"):
        load_saved(saved, verify=False)
    (saved / "config.json").write_text('{"format": "glassformer-model", ')
    with pytest.raises(SavedModelError, match="config.json is not valid JSON"):
        load_saved(saved)


def test_wrong_tensors(saved):
    tensors = load_file(str(saved / "model.safetensors"))
    tensors["head.weight"] = torch.zeros(3, 16)
    del tensors["norm.bias"]
    save_file(tensors, str(saved / "model.safetensors"))
    with pytest.raises(SavedModelError, match=r"missing tensors norm.bias; wrong shapes head.weight: "
                                              r"file \(3, 16\) vs model \(2, 16\)"):
        load_saved(saved, verify=False)


def _edit_config(path, **changes):
    config = json.loads((path / "config.json").read_text())
    config.update(changes)
    (path / "config.json").write_text(json.dumps(config))
    write_manifest(path, "model")  # edited on purpose: a consistent directory, not a damaged one


def test_incompatible_configs(saved):
    _edit_config(saved, format_version=7, glassformer_version="9.0")
    with pytest.raises(SavedModelError, match=r"format version 7 \(written by glassformer 9.0\).*up to 2"):
        load_saved(saved)
    _edit_config(saved, format_version=1, model_class="Mystery", model_module="elsewhere")
    with pytest.raises(SavedModelError, match="unknown model class 'Mystery'; known classes: .*TinyClassifier"):
        load_saved(saved)
    _edit_config(saved, model_class="TinyClassifier", model_config={"d_model": 16, "n_experts": 4})
    with pytest.raises(SavedModelError, match=r"TinyConfig has no fields \['n_experts'\]"):
        load_saved(saved)
    (saved / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 384}))
    with pytest.raises(SavedModelError, match="looks like a Hugging Face checkpoint"):
        load_saved(saved)
