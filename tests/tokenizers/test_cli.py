"""`glassformer tokenize` and `glassformer tokenizer train`, checked against tiktoken, BertTokenizerFast and HF tokenizers."""

from __future__ import annotations

import json

from glassformer.cli import main


def test_tokenize_gpt2_json_equals_tiktoken(capsys, tiktoken_gpt2):
    text = "Hello world, 你好 🎉"
    assert main(["tokenize", "--tokenizer", "gpt2", "--json", text]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ids"] == tiktoken_gpt2.encode_ordinary(text)
    assert out["tokens"][:2] == ["Hello", "Ġworld"]


def test_tokenize_bert_file_equals_hf(capsys, tmp_path, hf_bert):
    path = tmp_path / "in.txt"
    path.write_text("Naïve café,\nsecond line!\n", encoding="utf-8")
    assert main(["tokenize", "--tokenizer", "bert", "--json", "--file", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ids"] == hf_bert(path.read_text(encoding="utf-8"))["input_ids"]
    assert out["tokens"][0] == "[CLS]"


def test_tokenize_plain_output_lists_ids_and_tokens(capsys):
    assert main(["tokenize", "--tokenizer", "gpt2", "Hello world"]) == 0
    assert capsys.readouterr().out.split() == ["15496", "Hello", "995", "Ġworld"]


def test_tokenize_rejects_a_file_that_is_not_utf8(capsys, tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"caf\xe9")
    assert main(["tokenize", "--tokenizer", "gpt2", "--file", str(path)]) == 2
    assert "bad.txt: not valid UTF-8 at byte 3" in capsys.readouterr().err


def test_tokenizer_train_saves_a_tokenizer_hf_can_load(capsys, tmp_path, brown):
    from tokenizers import Tokenizer as HFTokenizer

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(brown[:10]), encoding="utf-8")
    out = tmp_path / "tok"
    assert main(["tokenizer", "train", "--vocab-size", "600", "--out", str(out), str(corpus)]) == 0
    assert "600 ids" in capsys.readouterr().out
    assert main(["tokenize", "--tokenizer", str(out), "--json", "The jury said"]) == 0
    ids = json.loads(capsys.readouterr().out)["ids"]
    assert ids == HFTokenizer.from_file(str(out / "tokenizer.json")).encode("The jury said").ids
