"""Faithfulness curves against plain forward passes with ids replaced; explain() and `glassformer explain` on
tiny models of every family (shapes, targets, one-line errors with exit status 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from glassformer.cli import main
from glassformer.errors import UsageError
from glassformer.lens import (
    METHODS,
    TextClassification,
    aopc,
    compare,
    deletion_curve,
    explain,
    insertion_curve,
    pad_baseline,
)
from glassformer.models import (
    DecoderLM,
    DecoderLMConfig,
    EncoderClassifier,
    EncoderConfig,
    Seq2SeqConfig,
    Seq2SeqTransformer,
    VisionTransformer,
    ViTConfig,
)
from glassformer.tasks.sentiment import SentimentClassifier
from glassformer.tokenizers import CharTokenizer, WordPiece
from glassformer.training import save_model

WORDS = ["the", "movie", "was", "good", "bad", "great", "plot", "awful", "fun"]
LABELS = ["negative", "positive"]


@pytest.fixture(scope="module")
def classifier() -> SentimentClassifier:
    torch.manual_seed(0)
    tokenizer = WordPiece(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS], lowercase=True)
    config = EncoderConfig(vocab_size=tokenizer.vocab_size, max_position=16, d_model=16, n_heads=2, n_layers=2,
                           d_ff=32, dropout=0.0, attn_dropout=0.0)
    model = EncoderClassifier(config).eval()
    with torch.no_grad():
        model.classifier.weight.normal_(0, 3.0)  # decisive enough for probabilities to move
    return SentimentClassifier(model, tokenizer, LABELS, 16)


def test_deletion_and_insertion_curves_equal_plain_forward_passes(classifier):
    model, tokenizer = classifier.model, classifier.tokenizer
    ids = tokenizer.encode("the movie was great fun", add_special_tokens=True)
    specials = set(tokenizer.special_tokens.values())
    prediction = TextClassification(model, ids, pad_baseline(ids, specials, 0))
    scores = torch.tensor([9.0, 0.1, 0.5, -1.0, 3.0, 0.2, 9.0])  # [CLS], [SEP] (9.0) are never moved
    target = prediction.target()

    def prob(row):
        with torch.no_grad():
            return float(model(torch.tensor([row])).logits.softmax(-1)[0, target])

    order = [4, 2, 5, 1, 3]
    deletion = deletion_curve(prediction, scores)
    assert deletion.order == order and deletion.fractions == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    rows = [list(ids)]
    for unit in order:
        rows.append(rows[-1][:unit] + [0] + rows[-1][unit + 1:])
    expected = [prob(row) for row in rows]
    np.testing.assert_allclose(deletion.probs, expected, atol=1e-6)
    assert deletion.aopc == pytest.approx(np.mean([expected[0] - p for p in expected]), abs=1e-6)

    insertion = insertion_curve(prediction, scores)
    rows = [pad_baseline(ids, specials, 0)]
    for unit in order:
        rows.append(rows[-1][:unit] + [ids[unit]] + rows[-1][unit + 1:])
    expected = [prob(row) for row in rows]
    np.testing.assert_allclose(insertion.probs, expected, atol=1e-6)
    assert aopc(insertion) == pytest.approx(np.mean([p - expected[0] for p in expected]), abs=1e-6)


def test_explain_a_sentiment_classifier(classifier):
    result = explain(classifier, "the movie was good")
    assert set(result.json()) == {"tokens", "ids", "scores", "target", "delta"}
    assert result.tokens == ["[CLS]", "the", "movie", "was", "good", "[SEP]"]
    assert result.target in LABELS and len(result.scores) == len(result.ids) == 6
    assert abs(result.delta) < 1e-3
    other = next(name for name in LABELS if name != result.target)
    assert explain(classifier, "the movie was good", target=other).target == other
    for method in METHODS:
        assert len(explain(classifier, "the movie was good", method=method).scores) == 6
    with pytest.raises(UsageError, match="not one of the model's labels: negative, positive"):
        explain(classifier, "the movie was good", target="neutral")
    with pytest.raises(UsageError, match="unknown method 'lime'"):
        explain(classifier, "the movie was good", method="lime")
    with pytest.raises(UsageError, match="position applies to translation and language models"):
        explain(classifier, "the movie was good", position=1)


def test_explain_an_image_a_prompt_and_a_translation_step():
    torch.manual_seed(0)
    vit = VisionTransformer(ViTConfig.preset("tiny")).eval()
    image = np.random.default_rng(0).integers(0, 256, (8, 8)).astype(np.uint8)
    result = explain(vit, image, label_names=["a", "b", "c"])
    assert result.tokens == ["patch 0,0", "patch 0,1", "patch 1,0", "patch 1,1"] and result.target in "abc"
    assert len(explain(vit, image, method="rollout").scores) == 4

    chars = CharTokenizer()
    chars.train("abcdefgh ")
    lm = DecoderLM(DecoderLMConfig.preset("tiny", dropout=0.0, vocab_size=chars.vocab_size)).eval()
    result = explain(lm, "abc dd", tokenizer=chars)
    assert result.tokens == list("abc dd") and result.position == 5
    assert abs(result.delta) < 1e-3
    assert explain(lm, "abc dd", method="occlusion", target="h", position=2, tokenizer=chars).target == "h"
    with pytest.raises(UsageError, match="outside the prompt's 6 tokens"):
        explain(lm, "abc dd", position=6, tokenizer=chars)
    with pytest.raises(UsageError, match="give a single token"):
        explain(lm, "abc dd", target="ab", tokenizer=chars)

    config = Seq2SeqConfig.preset("tiny", dropout=0.0, vocab_size=chars.vocab_size, pad_token_id=0, bos_token_id=1,
                                  eos_token_id=1)
    seq2seq = Seq2SeqTransformer(config).eval()
    result = explain(seq2seq, "abc", method="attention", tokenizer=chars)
    assert result.tokens == ["a", "b", "c", "<|endoftext|>"] and result.position == 0 and result.context
    assert sum(result.scores) == pytest.approx(1.0)
    with pytest.raises(UsageError, match="outside the greedy translation"):
        explain(seq2seq, "abc", position=1000, tokenizer=chars)


def test_compare_equals_explain_and_deletion_curve_called_one_by_one(classifier):
    """Reference: explain() for each method, then deletion_curve on a Prediction built from the same ids."""
    text = "the movie was great fun"
    pairs = compare(classifier, text, steps=10, curve_points=4)
    assert [explanation.method for explanation, _ in pairs] == ["attention", "rollout", "integrated-gradients",
                                                                 "occlusion"]
    ids = classifier.tokenizer.encode(text, add_special_tokens=True)
    prediction = TextClassification(classifier.model, ids,
                                    pad_baseline(ids, set(classifier.tokenizer.special_tokens.values()), 0))
    for explanation, curve in pairs:
        alone = explain(classifier, text, method=explanation.method, steps=10)
        assert explanation.scores == pytest.approx(alone.scores, abs=1e-6) and explanation.target == alone.target
        assert explanation.probability == pytest.approx(alone.probability, abs=1e-7)
        reference = deletion_curve(prediction, torch.tensor(alone.scores), alone.target_id, points=4)
        assert curve.probs == pytest.approx(reference.probs, abs=1e-7) and curve.order == reference.order
        assert curve.aopc == pytest.approx(aopc(reference), abs=1e-7)
    other = next(name for name in LABELS if name != pairs[0][0].target)
    assert {e.target for e, _ in compare(classifier, text, ("occlusion", "attention"), target=other)} == {other}
    with pytest.raises(UsageError, match="unknown method 'lime'"):
        compare(classifier, text, ("attention", "lime"))


@pytest.fixture(scope="module")
def saved_dirs(classifier, tmp_path_factory):
    root = tmp_path_factory.mktemp("explain")
    sentiment = save_model(root / "sentiment", classifier.model, task="sentiment", label_names=LABELS,
                           tokenizer=classifier.tokenizer, extra={"max_length": 16})
    torch.manual_seed(0)
    vit = save_model(root / "vit", VisionTransformer(ViTConfig(image_size=28, patch_size=14, d_model=16, n_heads=2,
                                                              n_layers=1, d_ff=32, num_classes=3)),
                     task="vit", label_names=["shirt", "shoe", "bag"])
    picture = root / "in.png"
    Image.fromarray((np.random.default_rng(0).random((30, 30)) * 255).astype(np.uint8)).save(picture)
    return sentiment, vit, picture


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("glassformer: error: "), err
    return lines[0]


def test_cli_explain(saved_dirs, capsys):
    sentiment, vit, picture = saved_dirs
    assert main(["explain", str(sentiment), "--json", "the movie was good"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["tokens", "ids", "scores", "target", "delta"]
    assert out["tokens"][0] == "[CLS]" and out["target"] in LABELS and isinstance(out["delta"], float)

    assert main(["explain", str(sentiment), "--method", "occlusion", "the movie was good"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("occlusion: ") and lines[2].startswith("the ") and len(lines) == 7

    assert main(["explain", str(vit), "--json", "--method", "grad-input", str(picture)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tokens"] == ["patch 0,0", "patch 0,1", "patch 1,0", "patch 1,1"] and out["delta"] is None

    assert main(["explain", str(sentiment), "--method", "lime", "the movie"]) == 2
    assert "invalid choice: 'lime'" in _one_error_line(capsys.readouterr().err)
    assert main(["explain", str(sentiment), "--target", "neutral", "the movie"]) == 2
    assert "'neutral' is not one of the model's labels" in _one_error_line(capsys.readouterr().err)
    assert main(["explain", str(sentiment), "--position", "3", "the movie"]) == 2
    assert "position applies to" in _one_error_line(capsys.readouterr().err)
    assert main(["explain", str(vit), str(picture.with_name("missing.png"))]) == 2
    _one_error_line(capsys.readouterr().err)


def test_curve_at_fewer_points(classifier):
    ids = classifier.tokenizer.encode("the movie was great fun", add_special_tokens=True)
    prediction = TextClassification(classifier.model, ids, pad_baseline(ids, {2, 3}, 0))
    scores = torch.arange(7.0)
    full = deletion_curve(prediction, scores)
    three = deletion_curve(prediction, scores, points=3)  # k = 0, round(2.5) = 2, 5
    assert three.fractions == [0.0, 0.4, 1.0]
    np.testing.assert_allclose(three.probs, [full.probs[0], full.probs[2], full.probs[5]], atol=1e-7)
