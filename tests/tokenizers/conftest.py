"""Shared fixtures for the tokenizer tests: the real vocabularies, the Brown corpus and the references."""

from __future__ import annotations

import pytest

from glassformer.data import fetch


@pytest.fixture(scope="session")
def gpt2_dir():
    return fetch("gpt2-tokenizer", quiet=True)


@pytest.fixture(scope="session")
def bert_vocab():
    return fetch("minilm", quiet=True) / "vocab.txt"


@pytest.fixture(scope="session")
def gpt2(gpt2_dir):
    from glassformer.tokenizers import ByteLevelBPE

    return ByteLevelBPE.from_gpt2(gpt2_dir / "encoder.json", gpt2_dir / "vocab.bpe")


@pytest.fixture(scope="session")
def bert(bert_vocab):
    from glassformer.tokenizers import WordPiece

    return WordPiece.from_vocab_file(bert_vocab, lowercase=True)


@pytest.fixture(scope="session")
def brown():
    from glassformer.data.brown import brown_texts

    return brown_texts()


@pytest.fixture(scope="session")
def tiktoken_gpt2(gpt2_dir):
    """tiktoken's Encoding built from the same two GPT-2 files."""
    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks

    from glassformer.tokenizers import GPT2_PATTERN

    ranks = data_gym_to_mergeable_bpe_ranks(str(gpt2_dir / "vocab.bpe"), str(gpt2_dir / "encoder.json"))
    return tiktoken.Encoding("gpt2-local", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": 50256})


@pytest.fixture(scope="session")
def hf_gpt2(gpt2_dir):
    """Hugging Face's GPT2TokenizerFast from the same two files."""
    from transformers import GPT2TokenizerFast

    return GPT2TokenizerFast(vocab=str(gpt2_dir / "encoder.json"), merges=str(gpt2_dir / "vocab.bpe"))


@pytest.fixture(scope="session")
def hf_bert(bert_vocab):
    """Hugging Face's BertTokenizerFast from the MiniLM vocab.txt."""
    from transformers import BertTokenizerFast

    return BertTokenizerFast(vocab=str(bert_vocab), do_lower_case=True)
