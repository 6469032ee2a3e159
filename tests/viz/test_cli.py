"""`glassformer viz ...` on small saved models: the files it writes hold the model's own attention."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from glassformer.cli import main
from glassformer.models import DecoderLM, DecoderLMConfig, VisionTransformer, ViTConfig
from glassformer.tasks.pipeline import predictor_for
from glassformer.tokenizers import ByteLevelBPE, WordTokenizer
from glassformer.training import save_model
from glassformer.viz import embedded_data, text_attention, token_labels
from tests.viz.helpers import tiny_encoder

TEXT = "the cat sat on the mat"


def _saved_encoder(tmp_path):
    tokenizer = WordTokenizer()
    tokenizer.train([TEXT, "a dog ran"])
    model = tiny_encoder(vocab_size=tokenizer.vocab_size)
    return save_model(tmp_path / "enc", model, task="sentiment", label_names=["neg", "pos"], tokenizer=tokenizer), model


def test_viz_attention_html_and_png(tmp_path, capsys):
    directory, model = _saved_encoder(tmp_path)
    out = tmp_path / "view.html"
    assert main(["viz", "attention", str(directory), TEXT, "--out", str(out), "--layer", "1", "--head", "0"]) == 0
    assert "6 tokens, 2 layers × 2 heads" in capsys.readouterr().out
    data = embedded_data(out.read_text(encoding="utf-8"))
    view = data["views"][0]
    assert view["query_tokens"] == TEXT.split()
    assert data["initial"] == {"view": 0, "layer": 1, "head": 0}
    ids = torch.tensor([WordTokenizer.load(directory / "tokenizer").encode(TEXT)])
    with torch.no_grad():
        expected = model(ids, output_attentions=True).attentions
    np.testing.assert_allclose(np.array(view["weights"])[1, 0], expected[1][0, 0].numpy(), atol=1e-4)

    png = tmp_path / "heat.png"
    assert main(["viz", "attention", str(directory), TEXT, "--out", str(png), "--head", "mean"]) == 0
    assert Image.open(png).format == "PNG"
    assert main(["viz", "attention", str(directory), TEXT, "--out", str(tmp_path / "x.txt")]) == 2
    assert "must end in .html or .png" in capsys.readouterr().err


def test_viz_positional(tmp_path):
    out = tmp_path / "pe.png"
    assert main(["viz", "positional", "--length", "20", "--dim", "16", "--out", str(out)]) == 0
    assert Image.open(out).size[0] > 100


def test_viz_image_attention(tmp_path, capsys):
    torch.manual_seed(0)
    model = VisionTransformer(ViTConfig.preset("tiny"))
    directory = save_model(tmp_path / "vit", model, task="images", label_names=["a", "b", "c"])
    Image.fromarray((np.random.default_rng(0).random((30, 30, 3)) * 255).astype(np.uint8)).save(tmp_path / "in.jpg")
    out = tmp_path / "vit.png"
    assert main(["viz", "image-attention", str(directory), str(tmp_path / "in.jpg"), "--out", str(out)]) == 0
    assert "2 layers × 2 heads" in capsys.readouterr().out
    assert Image.open(out).format == "PNG"
    (tmp_path / "bad.png").write_bytes(b"%PDF-1.4 not an image")
    assert main(["viz", "image-attention", str(directory), str(tmp_path / "bad.png"), "--out", str(out)]) == 2
    assert "not a readable image" in capsys.readouterr().err


def test_decoder_lm_attention_is_causal_and_byte_tokens_are_readable():
    tokenizer = ByteLevelBPE()
    tokenizer.train(["hello world, hello there"] * 3, 270, special_tokens=["<|endoftext|>"])
    torch.manual_seed(0)
    model = DecoderLM(DecoderLMConfig.preset("tiny", vocab_size=tokenizer.vocab_size))
    result = text_attention(predictor_for(model, tokenizer), "hello world")
    maps = result.maps[0]
    assert "".join(maps.query_tokens).replace("␣", " ") == "hello world"
    assert np.all(np.triu(maps.weights, k=1) == 0)
    assert token_labels(tokenizer, [tokenizer.special_tokens["<|endoftext|>"]]) == ["<|endoftext|>"]


def test_seq2seq_text_attention_gives_encoder_decoder_and_cross_maps():
    from tests.viz.helpers import tiny_seq2seq

    tokenizer = WordTokenizer()
    tokenizer.train([TEXT])
    model = tiny_seq2seq()
    result = text_attention(predictor_for(model, tokenizer), TEXT, max_new_tokens=5)
    encoder, decoder, cross = result.maps
    # The source as the translator reads it: its words, then EOS.
    assert encoder.query_tokens == TEXT.split() + token_labels(tokenizer, [model.config.eos_token_id])
    assert len(result.target_ids) == len(decoder.query_tokens) <= 6
    assert cross.query_tokens == decoder.query_tokens and cross.key_tokens == encoder.query_tokens


def test_long_text_is_truncated_to_the_model():
    tokenizer = WordTokenizer()
    tokenizer.train([TEXT])
    model = tiny_encoder(vocab_size=tokenizer.vocab_size, max_position=8)
    result = text_attention(predictor_for(model, tokenizer), " ".join([TEXT] * 5))
    assert result.truncated and len(result.maps[0].query_tokens) == 8
