"""The logit lens against transformers' GPT2LMHeadModel (``lm_head(ln_f(hidden_states[l]))``) on the same random
tiny weights, and its last layer against the model's own logits."""

from __future__ import annotations

import pytest
import torch

from glassformer.errors import UsageError, WrongModelError
from glassformer.lens import layer_logits, logit_lens, logit_lens_report
from tests.lens.conftest import VOCAB


def test_each_layer_equals_transformers_lm_head_of_ln_f_of_hidden_states(gpt2):
    """Reference: transformers GPT2LMHeadModel, output_hidden_states; its last entry already has ln_f applied."""
    hf, ours = gpt2
    ids = torch.randint(0, VOCAB, (2, 9), generator=torch.Generator().manual_seed(1))
    got = layer_logits(ours, ids)  # (L + 1, B, T, V)
    with torch.no_grad():
        states = hf(ids, output_hidden_states=True).hidden_states
        n = len(states) - 1
        expected = [hf.lm_head(hf.transformer.ln_f(states[layer])) for layer in range(n)] + [hf.lm_head(states[n])]
    assert got.shape == (n + 1, 2, 9, VOCAB)
    for layer in range(n + 1):
        assert (got[layer] - expected[layer]).abs().max() <= 1e-5, layer


def test_last_layer_is_the_models_own_logits(gpt2):
    _, ours = gpt2
    ids = torch.randint(0, VOCAB, (1, 7), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert (layer_logits(ours, ids)[-1] - ours(ids).logits).abs().max() <= 1e-5


def test_report_json_shape_ranks_and_probabilities(gpt2):
    _, ours = gpt2
    ids = [3, 14, 15, 9, 26]
    report = logit_lens(ours, ids, position=2, k=4, token=7)
    data = report.lens.json()
    assert set(data) == {"tokens", "ids", "layers"} and data["ids"] == ids and data["tokens"] == [str(i) for i in ids]
    assert [entry["layer"] for entry in data["layers"]] == [0, 1, 2, 3]
    for entry in data["layers"]:
        assert [set(top) for top in entry["top"]] == [{"id", "token", "prob"}] * 4
        probs = [top["prob"] for top in entry["top"]]
        assert probs == sorted(probs, reverse=True)
    with torch.no_grad():
        own = ours(torch.tensor([ids])).logits[0, 2].softmax(-1)
    assert data["layers"][-1]["top"][0]["id"] == int(own.argmax())
    assert abs(report.lens.prob(7)[-1] - float(own[7])) <= 1e-6
    assert report.lens.rank(7)[-1] == int((own > own[7]).sum()) + 1
    assert report.json()["token"]["id"] == 7 and "rank" in report.json()["token"]
    assert str(report).count("\n") >= 4


def test_bad_inputs_are_one_line_errors(gpt2):
    _, ours = gpt2
    with pytest.raises(UsageError, match="position 9 is out of range for 3 tokens"):
        logit_lens(ours, [1, 2, 3], position=9)
    with pytest.raises(UsageError, match="needs a tokenizer"):
        logit_lens(ours, "some text")
    with pytest.raises(WrongModelError, match="reads a decoder"):
        layer_logits(torch.nn.Linear(2, 2), torch.zeros(1, 2))


def test_translation_decoder_lens_ends_at_the_decoders_logits():
    """The encoder–decoder model: decoder residual → final norm → output projection; last layer = decode's logits."""
    from glassformer.models.seq2seq import Seq2SeqConfig, Seq2SeqTransformer

    torch.manual_seed(3)
    model = Seq2SeqTransformer(Seq2SeqConfig.preset("tiny", norm_first=True, dropout=0.0)).eval()
    src, tgt = torch.randint(3, 128, (2, 6)), torch.randint(3, 128, (2, 5))
    got = layer_logits(model, src, tgt)
    with torch.no_grad():
        out = model(src, tgt, output_hidden_states=True)
        expected = [model.output_proj(model.decoder.norm(h)) for h in out.decoder_hidden_states]
    assert got.shape == (3, 2, 5, 128)
    assert (got[-1] - out.logits).abs().max() <= 1e-5
    for layer, want in enumerate(expected):
        assert (got[layer] - want).abs().max() <= 1e-5


def test_front_door_reads_saved_language_models_and_translators(tmp_path):
    """`logit_lens_report` on loaded predictors: a saved LM (text after <|endoftext|>) and a translator."""
    from glassformer.tasks.pipeline import load_predictor
    from tests.pretrained.helpers import lm_dir, translate_dir

    generator = load_predictor(lm_dir(tmp_path / "lm"))
    report = logit_lens_report(generator, "the film", k=3)
    assert report.lens.ids[0] == generator.end_token_id and len(report.json()["layers"]) == 3
    assert report.lens.tokens[1:] == [generator.tokenizer.id_to_token(i) for i in report.lens.ids[1:]]
    as_checkpoint = logit_lens(generator, "the film", k=3, start_with_end_token=False)
    assert as_checkpoint.lens.ids == report.lens.ids[1:]
    translator = load_predictor(translate_dir(tmp_path / "mt"))
    report = logit_lens_report(translator, "ein Haus", position=0, k=2)
    assert report.lens.position == 0 and report.lens.ids[0] == translator.model.config.bos_token_id
    assert len(report.json()["layers"]) == translator.model.config.n_decoder_layers + 1


def test_cli_explain_logit_lens(tmp_path, capsys):
    """`glassformer explain --method logit-lens`: the issue's JSON shape, the same numbers as the Python call, a table
    for people, and one-line errors (a classifier has no logit lens; a position past the prompt)."""
    import json

    from glassformer.cli import main
    from glassformer.tasks.pipeline import load_predictor
    from tests.pretrained.helpers import lm_dir, sentiment_dir

    directory = lm_dir(tmp_path / "lm")
    assert main(["explain", str(directory), "--method", "logit-lens", "--top", "3", "--json", "the film"]) == 0
    out = json.loads(capsys.readouterr().out)
    expected = logit_lens_report(load_predictor(directory), "the film", k=3).json()
    assert list(out) == ["tokens", "ids", "layers"] and out == json.loads(json.dumps(expected))
    assert [layer["layer"] for layer in out["layers"]] == list(range(len(out["layers"])))
    assert all(len(layer["top"]) == 3 and set(layer["top"][0]) == {"id", "token", "prob"} for layer in out["layers"])

    assert main(["explain", str(directory), "--method", "logit-lens", "the film"]) == 0
    assert len(capsys.readouterr().out.splitlines()) >= len(out["layers"])

    assert main(["explain", str(directory), "--method", "logit-lens", "--position", "99", "the film"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "out of range" in err[0]
    classifier = sentiment_dir(tmp_path / "sentiment")
    assert main(["explain", str(classifier), "--method", "logit-lens", "the film"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the logit lens reads a decoder" in err[0]
