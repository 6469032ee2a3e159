"""The sentiment task end to end: train → save → reload → evaluate → predict, through the API and the CLI.

The training tests use a synthetic CSV whose label is carried by one word from a fixed list, so a tiny
scratch model must learn it (chance is 50%); the MiniLM test compares our initialised backbone with
Hugging Face transformers' BertModel on the same checkpoint.
"""

from __future__ import annotations

import csv
import json
import random
import shutil

import pytest
import torch

import glassformer
from glassformer._files import write_manifest
from glassformer.cli import main
from glassformer.tasks import sentiment

POSITIVE = ["wonderful", "moving", "brilliant", "delightful", "superb", "charming", "gripping", "funny"]
NEGATIVE = ["dull", "tedious", "awful", "boring", "clumsy", "lifeless", "painful", "bland"]
FILLER = ["the", "film", "plot", "story", "cast", "is", "was", "a", "an", "with", "and", "its", "director",
          "script", "quite", "really", "at", "times", "ending", "music"]


def write_reviews(path, n: int = 400, seed: int = 0) -> None:
    """Sentences of filler words with one sentiment word inserted; the label is that word's list."""
    rng = random.Random(seed)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for _ in range(n):
            label = rng.choice(["positive", "negative"])
            words = [rng.choice(FILLER) for _ in range(rng.randint(4, 12))]
            words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE if label == "positive" else NEGATIVE))
            writer.writerow([" ".join(words), label])


TINY = dict(max_steps=60, batch_size=16, lr=3e-3, warmup_ratio=0.1, vocab_size=320, d_model=32, n_layers=1,
            n_heads=2, d_ff=64, dropout=0.0, max_length=24, eval_every=30)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("sentiment")
    data = root / "reviews.csv"
    write_reviews(data)
    run = sentiment.train("quick", root / "model", init="scratch", data=str(data), progress=False, **TINY)
    return run


def test_tiny_run_learns_far_above_chance(trained):
    assert trained.steps == TINY["max_steps"]
    assert trained.validation_accuracy >= 0.9, trained.validation_accuracy  # chance: 0.5
    assert trained.test_accuracy >= 0.9, trained.test_accuracy
    names = {p.name for p in trained.out_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer", "metrics.jsonl"} <= names
    config = json.loads((trained.out_dir / "config.json").read_text())
    assert config["task"] == "sentiment"
    assert config["label_names"] == ["negative", "positive"]
    assert config["glassformer_version"] == glassformer.__version__


def test_save_reload_gives_identical_predictions(trained):
    texts = ["the plot was wonderful", "a tedious film", "its cast is clumsy and the ending bland"]
    before = trained.classifier.predict_proba(texts)
    reloaded = sentiment.SentimentClassifier.load(trained.out_dir)
    assert torch.equal(reloaded.predict_proba(texts), before)
    assert glassformer.pipeline("sentiment", model=trained.out_dir)(texts) == trained.classifier(texts)


def test_evaluate_matches_the_accuracy_measured_in_training(trained):
    result = sentiment.evaluate(trained.out_dir, split="test")
    assert set(result) == {"accuracy", "n", "split"}
    assert result["accuracy"] == pytest.approx(trained.test_accuracy)
    assert result["n"] == trained.n_test == 40  # 10% of 400


def test_cli_eval_json_is_one_object_with_the_documented_keys(trained, capsys):
    assert main(["eval", str(trained.out_dir), "--split", "validation", "--json"]) == 0
    out = capsys.readouterr().out
    result = json.loads(out)
    assert set(result) == {"accuracy", "n", "split"}
    assert result["split"] == "validation" and result["n"] == 40
    assert result["accuracy"] == pytest.approx(trained.validation_accuracy)


def test_cli_predict_json_has_one_object_per_text(trained, capsys):
    texts = ["a superb and charming film", "the plot was boring"]
    assert main(["predict", str(trained.out_dir), "--json", *texts]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["text"] for r in results] == texts
    for result in results:
        assert set(result) == {"text", "label", "score"}
        assert result["label"] in ("positive", "negative")
        assert 0.5 <= result["score"] <= 1.0


def test_cli_predict_reads_stdin_lines(trained, capsys, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("a gripping story\n\nthe music was painful\n"))
    assert main(["predict", "--json", str(trained.out_dir)]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["text"] for r in results] == ["a gripping story", "the music was painful"]


def test_empty_text_is_a_clear_error(trained, capsys):
    with pytest.raises(ValueError, match="text 1 is empty"):
        trained.classifier(["fine film", "   "])
    assert main(["predict", str(trained.out_dir), ""]) == 2
    assert "empty" in capsys.readouterr().err


def test_long_text_is_truncated_with_a_warning(trained):
    long_text = " ".join(["the film was wonderful"] * 50)
    with pytest.warns(UserWarning, match=r"text 1 has \d+ tokens; the model reads at most 24"):
        trained.classifier(["a short one", long_text])


def test_a_directory_for_another_task_is_refused(trained, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(trained.out_dir, other)
    config = json.loads((other / "config.json").read_text())
    config["task"] = "translate"
    (other / "config.json").write_text(json.dumps(config))
    write_manifest(other, "model")  # a consistent directory that holds another task's model
    with pytest.raises(ValueError, match="task 'translate', not 'sentiment'"):
        sentiment.SentimentClassifier.load(other)


def test_unknown_preset_and_init_name_the_choices():
    with pytest.raises(ValueError, match="choose one of full, quick"):
        sentiment.get_preset("huge")
    with pytest.raises(ValueError, match="expected one of minilm, scratch"):
        sentiment.get_preset("quick", "bert")


def test_scratch_vocabularies_cover_the_training_words():
    texts = ["A dull, DULL film.", "a wonderful film"]
    wordpiece = sentiment.train_tokenizer("wordpiece", texts, 60)
    ids, cut = sentiment.encode(wordpiece, "Dull film, wonderful!", 16)  # "!" was never seen
    assert not cut
    assert [wordpiece.id_to_token(i) for i in ids] == ["[CLS]", "dull", "film", ",", "wonderful", "[UNK]", "[SEP]"]
    assert [wordpiece.id_to_token(i) for i in wordpiece.encode_ordinary("fold")] == ["f", "##o", "##l", "##d"]
    bpe = sentiment.train_tokenizer("bpe", texts, 270)
    ids, _ = sentiment.encode(bpe, "a dull film", 16)
    assert ids[0] == bpe.special_tokens["[CLS]"] and ids[-1] == bpe.special_tokens["[SEP]"]
    assert bpe.decode(ids[1:-1]) == "a dull film"
    with pytest.raises(ValueError, match="expected one of wordpiece, bpe"):
        sentiment.train_tokenizer("chars", texts, 60)


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_minilm_init_matches_transformers_bert(pooling):
    """Reference: Hugging Face transformers' BertModel on the same checkpoint (mean of the token states, or its pooler)."""
    from glassformer.data import fetch

    transformers = pytest.importorskip("transformers")
    preset = sentiment.get_preset("quick", "minilm", pooling=pooling)
    model, tokenizer = sentiment.build_model(preset, num_labels=3, train_texts=[])
    model.eval()
    reference = transformers.BertModel.from_pretrained(str(fetch("minilm"))).eval()
    texts = ["A gorgeous, witty, seductive movie.", "It is not a bad film, just a very long one."]
    rows = [sentiment.encode(tokenizer, t, preset.max_length)[0] for t in texts]
    # The ids fine-tuning feeds are BertTokenizerFast's default encode ([CLS] … [SEP]), truncated as it truncates.
    reference_tokenizer = transformers.BertTokenizerFast.from_pretrained(str(fetch("minilm")))
    assert rows == [reference_tokenizer.encode(t) for t in texts] == [tokenizer.encode(t) for t in texts]
    long_text = "a long review, " * preset.max_length
    assert sentiment.encode(tokenizer, long_text, preset.max_length) == \
        (reference_tokenizer.encode(long_text, truncation=True, max_length=preset.max_length), True)
    ids = torch.zeros(2, max(map(len, rows)), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(row)
        mask[i, :len(row)] = 1
    with torch.no_grad():
        ours = model(ids, mask)
        theirs = reference(input_ids=ids, attention_mask=mask)
    if pooling == "mean":
        m = mask.unsqueeze(-1).float()
        expected = (theirs.last_hidden_state * m).sum(1) / m.sum(1)
    else:
        expected = theirs.pooler_output
    torch.testing.assert_close(ours.pooled, expected, atol=1e-4, rtol=1e-4)
    assert ours.logits.shape == (2, 3)
    assert model.classifier.weight.std() < 0.05  # a fresh head, N(0, 0.02)
