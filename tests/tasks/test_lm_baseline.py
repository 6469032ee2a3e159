"""The Markov-chain language-model baseline: bits per character, save → load, the CLI.

Reference numbers are computed here from raw bigram counts (add-k smoothing written out by hand),
independently of MarkovChain.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter

import pytest

from glassformer.data.corpora import PlaySplit
from glassformer.models.markov import MarkovChain
from glassformer.tasks import lm


def _works(n: int, seed: int) -> dict[str, str]:
    rng = random.Random(seed)
    subjects, verbs, objects = ["the cat", "a dog", "my lord", "the king"], ["sees", "loves", "fears"], \
        ["the moon.", "a rose.", "his crown."]
    return {f"work{seed}_{i}": "\n".join(f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}"
                                         for _ in range(60)) for i in range(n)}


@pytest.fixture
def tiny() -> PlaySplit:
    train, validation = _works(3, seed=0), _works(1, seed=1)
    return PlaySplit(train=train, validation=validation, titles={n: n for n in {**train, **validation}}, seed=0)


def test_markov_learns_far_below_the_uniform_baseline(tiny, tmp_path):
    run = lm.train_markov(3, data=tiny, out=tmp_path / "m", progress=False)
    vocab = set("".join(tiny.train.values()))
    uniform_bits = math.log2(len(vocab) + 2)  # the characters plus eos and unk
    assert run.bits_per_char < 0.5 * uniform_bits
    assert run.n_chars == sum(len(t) for t in tiny.validation.values())
    assert run.perplexity == pytest.approx(2 ** run.bits_per_char)


def test_bits_per_char_matches_hand_counted_add_k_bigrams(tiny, tmp_path):
    run = lm.train_markov(1, smoothing="add_k", data=tiny, out=tmp_path / "m", progress=False)
    pairs, history = Counter(), Counter()
    for text in tiny.train.values():
        padded = ["<s>"] + list(text) + ["</s>"]
        for a, b in zip(padded, padded[1:]):
            pairs[a, b] += 1
            history[a] += 1
    size = len(set("".join(tiny.train.values()))) + 2  # eos and unk are in the vocabulary, bos is not
    total, n = 0.0, 0
    for text in tiny.validation.values():
        padded = ["<s>"] + list(text)
        for a, b in zip(padded, padded[1:]):  # the end of the text is not scored
            total += math.log((pairs[a, b] + 1) / (history[a] + size))
            n += 1
    assert run.bits_per_char == pytest.approx(-total / n / math.log(2), rel=1e-12)


def test_saved_model_reloads_and_scores_the_same(tiny, tmp_path):
    run = lm.train_markov(2, data=tiny, out=tmp_path / "m", progress=False)
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["task"] == "lm" and config["extra"]["model"] == "markov" and config["model_config"]["order"] == 2
    assert config["extra"]["validation_works"] == sorted(tiny.validation)
    validation_file = tmp_path / "validation.txt"
    validation_file.write_text(tiny.text("validation", separator=""), encoding="utf-8")
    scored = lm.evaluate(tmp_path / "m", data=str(validation_file))
    # One text instead of one per work: the same characters with the same contexts (a single work).
    assert scored["bits_per_char"] == pytest.approx(run.bits_per_char, rel=1e-12)
    assert isinstance(lm.load_markov(tmp_path / "m"), MarkovChain)


def test_bpe_chain_scores_tokens_per_character_like_hand_counted_bigrams(tiny, tmp_path):
    run = lm.train_markov(1, smoothing="add_k", tokenizer="bpe", bpe_vocab_size=300, data=tiny,
                          out=tmp_path / "m", progress=False)
    bpe = lm.load_markov_tokenizer(tmp_path / "m")
    assert bpe is not None and bpe.vocab_size == 300
    pairs, history, seen = Counter(), Counter(), set()
    for text in tiny.train.values():
        ids = bpe.encode_ordinary(text)
        seen.update(ids)
        padded = ["<s>"] + ids + ["</s>"]
        for a, b in zip(padded, padded[1:]):
            pairs[a, b] += 1
            history[a] += 1
    size = len(seen) + 2  # eos and unk
    total, n_chars = 0.0, 0
    for text in tiny.validation.values():
        padded = ["<s>"] + bpe.encode_ordinary(text)
        for a, b in zip(padded, padded[1:]):
            total += math.log((pairs[a, b] + 1) / (history[a] + size))
        n_chars += len(text)
    # Nats over the tokens, divided by the characters they spell.
    assert run.bits_per_char == pytest.approx(-total / n_chars / math.log(2), rel=1e-12)
    assert run.n_chars == n_chars
    validation_file = tmp_path / "validation.txt"
    validation_file.write_text(tiny.text("validation", separator=""), encoding="utf-8")
    reloaded = lm.evaluate(tmp_path / "m", data=str(validation_file))  # the chain and its BPE from disk
    assert reloaded["bits_per_char"] == pytest.approx(run.bits_per_char, rel=1e-12)
    assert reloaded["n_tokens"] < reloaded["n"]  # merges: fewer tokens than characters
    # The same BPE as the transformer's for the same texts and size.
    assert lm.build_tokenizer("bpe", list(tiny.train.values()), 300).merges == bpe.merges
    char_dir = tmp_path / "c"
    lm.train_markov(1, data=tiny, out=char_dir, progress=False)
    assert lm.load_markov_tokenizer(char_dir) is None


def test_unseen_characters_get_probability(tiny):
    model = MarkovChain(order=2).fit(list(tiny.train.values()))
    result = lm.score_markov(model, ["the cat sees Zanzibar."])
    assert math.isfinite(result["loss"]) and result["n"] == 22


def test_evaluate_refuses_other_tasks_and_splits(tiny, tmp_path):
    lm.train_markov(1, data=tiny, out=tmp_path / "m", progress=False)
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    other = tmp_path / "sentiment"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({**config, "task": "sentiment"}))
    with pytest.raises(ValueError, match="task 'sentiment', not 'lm'"):
        lm.evaluate(other)
    with pytest.raises(ValueError, match="trained on 'custom' data"):
        lm.evaluate(tmp_path / "m")
    with pytest.raises(ValueError, match="there is no test split"):
        lm.evaluate(tmp_path / "m", split="test")
    with pytest.raises(ValueError, match="has no config.json"):
        lm.evaluate(tmp_path)


def test_cli_train_lm_then_eval(tiny, tmp_path, monkeypatch, capsys):
    from glassformer.cli import main

    monkeypatch.setattr(lm, "load_shakespeare", lambda seed=0, n_validation=4, quiet=False: tiny)
    out = tmp_path / "markov"
    assert main(["train", "lm", "--model", "markov", "--order", "3", "--out", str(out), "--json"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert main(["eval", str(out), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert set(scored) >= {"loss", "perplexity", "bits_per_char"} and scored["split"] == "validation"
    assert scored["bits_per_char"] == pytest.approx(trained["bits_per_char"], rel=1e-12)
    assert scored["perplexity"] == pytest.approx(math.exp(scored["loss"]))
    assert main(["eval", str(out), "--split", "test"]) == 2
    assert "there is no test split" in capsys.readouterr().err


@pytest.mark.network
@pytest.mark.slow
def test_real_shakespeare_markov_beats_lower_order(tmp_path):
    one = lm.train_markov(1, out=tmp_path / "o1", progress=False)
    two = lm.train_markov(2, out=tmp_path / "o2", progress=False)
    # A character bigram model already beats the uniform distribution over ~80 characters by far,
    # and more context helps further on unseen plays.
    assert one.bits_per_char < math.log2(80) - 2
    assert two.bits_per_char < one.bits_per_char - 0.5
    assert lm.evaluate(tmp_path / "o2")["bits_per_char"] == pytest.approx(two.bits_per_char, rel=1e-12)
