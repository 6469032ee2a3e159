"""The transformer language model task: it learns, its bits per character are computed right, save → reload.

The sliding-window score is checked against a plain loop written here that predicts every token from
the tokens before it (at most context − 1 of them), one forward pass per token.
"""

from __future__ import annotations

import math
import random

import pytest
import torch

from glassformer.data.corpora import PlaySplit
from glassformer.models.decoder_lm import DecoderLM, DecoderLMConfig
from glassformer.tasks import lm
from glassformer.tokenizers import CharTokenizer

TINY = lm.TransformerPreset("tiny", d_model=32, n_heads=4, n_layers=2, d_ff=64, context=32, batch_size=16,
                            max_steps=40, lr=1e-2, warmup_steps=4, bpe_vocab_size=300, eval_windows=4)


def _works(n: int, seed: int) -> dict[str, str]:
    rng = random.Random(seed)
    subjects, verbs, objects = ["the cat", "a dog", "my lord", "the king"], ["sees", "loves", "fears"], \
        ["the moon.", "a rose.", "his crown."]
    return {f"work{seed}_{i}": "\n".join(f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}"
                                         for _ in range(60)) for i in range(n)}


@pytest.fixture(scope="module")
def tiny() -> PlaySplit:
    train, validation = _works(3, seed=0), _works(1, seed=1)
    return PlaySplit(train=train, validation=validation, titles={n: n for n in {**train, **validation}}, seed=0)


@pytest.fixture(scope="module")
def trained(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("lm") / "char"
    return lm.train_transformer(TINY, tokenizer="char", data=tiny, out=out, progress=False)


@pytest.mark.slow  # trains the tiny model once for the module (about 30 s of CPU)
def test_tiny_character_model_learns_far_below_the_uniform_baseline(trained, tiny):
    vocab_size = len(set("".join(tiny.train.values()))) + 2  # the characters, <unk> and <|endoftext|>
    assert trained.bits_per_char < 0.5 * math.log2(vocab_size)
    assert trained.n_chars == sum(len(t) for t in tiny.validation.values())
    assert trained.perplexity == pytest.approx(2 ** trained.bits_per_char)


@pytest.mark.slow  # trains the tiny model once for the module (about 30 s of CPU)
def test_saved_model_reloads_with_identical_outputs(trained, tiny, tmp_path):
    valid_file = tmp_path / "valid.txt"
    valid_file.write_text(next(iter(tiny.validation.values())), encoding="utf-8")
    scored = lm.evaluate(trained.out_dir, data=str(valid_file))
    # The same text and the same <|endoftext|> start: the reloaded model scores exactly what the trained one did.
    assert scored["bits_per_char"] == pytest.approx(trained.bits_per_char, rel=1e-6)
    first, tokenizer = lm.load_transformer(trained.out_dir)
    second, _ = lm.load_transformer(trained.out_dir)
    ids = torch.tensor([lm.encode_work(tokenizer, "the king loves")])
    assert torch.equal(first(ids).logits, second(ids).logits)
    assert isinstance(tokenizer, CharTokenizer)


def _naive_nats(model: DecoderLM, ids: list[int]) -> float:
    window = model.config.max_position
    total = 0.0
    with torch.no_grad():
        for t in range(1, len(ids)):
            context = ids[max(0, t - window + 1) : t]
            total -= float(model(torch.tensor([context])).logits[0, -1].log_softmax(-1)[ids[t]])
    return total


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_sliding_window_score_with_stride_one_equals_one_prediction_per_token(tiny, kind):
    texts = ["the cat sees the moon.\nmy lord fears a rose.", "a dog loves his crown. the king sees a rose."]
    tokenizer = lm.build_tokenizer(kind, list(tiny.train.values()), bpe_vocab_size=300)
    torch.manual_seed(0)
    model = DecoderLM(DecoderLMConfig(vocab_size=tokenizer.vocab_size, max_position=8, d_model=16, n_heads=2,
                                      n_layers=1, d_ff=32, dropout=0.0)).eval()
    expected = sum(_naive_nats(model, lm.encode_work(tokenizer, t)) for t in texts) / sum(map(len, texts))
    result = lm.score_transformer(model, tokenizer, texts, stride=1, batch_size=5)
    assert result["loss"] == pytest.approx(expected, rel=1e-5)
    assert result["bits_per_char"] == pytest.approx(expected / math.log(2), rel=1e-5)
    n_tokens = sum(len(lm.encode_work(tokenizer, t)) - 1 for t in texts)
    assert result["n_tokens"] == n_tokens
    # Any stride scores every token once.
    assert lm.score_transformer(model, tokenizer, texts, stride=5)["n_tokens"] == n_tokens


def test_windows_make_every_token_a_target_once():
    stream = torch.arange(100)
    windows = lm.TokenWindows(stream, 10)
    targets = torch.cat([windows[i][1:] for i in range(len(windows))])
    assert targets.tolist() == list(range(1, 1 + len(targets)))
    assert len(targets) > 90  # only the tail shorter than a window is left out
    batch = lm.collate_windows([windows[0], windows[1]])
    assert batch["input_ids"].shape == (2, 10) and torch.equal(batch["labels"], batch["input_ids"])


def test_bad_choices_are_reported():
    with pytest.raises(ValueError, match="unknown lm preset 'huge'"):
        lm.get_preset("huge")
    with pytest.raises(ValueError, match="tokenizer must be one of"):
        lm.build_tokenizer("words", ["abc"])
    with pytest.raises(ValueError, match="model must be one of"):
        lm.train(model="rnn")


@pytest.mark.slow  # trains the tiny model once for the module (about 30 s of CPU)
def test_cli_generate_streams_the_same_text_as_the_api(trained, capsys):
    from glassformer.cli import main
    from glassformer.inference.generate import stream_text

    assert main(["generate", str(trained.out_dir), "--prompt", "my lord", "--max-new-tokens", "12", "--seed", "4",
                 "--top-k", "5"]) == 0
    printed = capsys.readouterr().out
    # The CLI runs at --precision auto (bf16 where the CPU computes it natively): the API the same way.
    loaded = lm.TextGenerator.load(trained.out_dir, precision="auto")
    model, tokenizer = loaded.model, loaded.tokenizer
    expected = "".join(stream_text(model, tokenizer, "my lord", 12, start_ids=[tokenizer.end_id],
                                   end_token_id=tokenizer.end_id, seed=4, top_k=5))
    assert printed == "my lord" + expected + "\n"


@pytest.mark.slow  # trains the tiny model once for the module (about 30 s of CPU)
def test_cli_eval_prints_the_bits_per_char_json(trained, tiny, tmp_path, capsys):
    import json

    from glassformer.cli import main

    valid_file = tmp_path / "valid.txt"
    valid_file.write_text(next(iter(tiny.validation.values())), encoding="utf-8")
    assert main(["eval", str(trained.out_dir), "--data", str(valid_file), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"loss", "perplexity", "bits_per_char"} <= set(result)
    assert result["bits_per_char"] == pytest.approx(trained.bits_per_char, rel=1e-6)
    assert main(["eval", str(trained.out_dir), "--json"]) == 2  # trained on custom data: needs --data
    assert "pass data=FILE" in capsys.readouterr().err
