"""Tokenizers: the article's word splitter and character BPE, GPT-2's byte-level BPE, BERT's WordPiece."""

from __future__ import annotations

import os
from pathlib import Path

from glassformer.tokenizers.base import SpecialTokenError, Tokenizer, TokenizerFileError, special_token_policy
from glassformer.tokenizers.byte_bpe import GPT2_PATTERN, GPT4_PATTERN, ByteLevelBPE
from glassformer.tokenizers.char_bpe import CharBPE, MergeStep
from glassformer.tokenizers.chars import CharTokenizer
from glassformer.tokenizers.encoding import BatchEncoding, Encoding, Template
from glassformer.tokenizers.hf_json import load_tokenizer_json, save_tokenizer_json
from glassformer.tokenizers.wordpiece import WordPiece
from glassformer.tokenizers.words import WordTokenizer, split_words

__all__ = ["BatchEncoding", "ByteLevelBPE", "CharBPE", "CharTokenizer", "Encoding", "GPT2_PATTERN", "GPT4_PATTERN",
           "MergeStep", "SpecialTokenError", "Template", "Tokenizer", "TokenizerFileError", "WordPiece",
           "WordTokenizer", "gpt2", "bert_uncased", "load_tokenizer", "load_tokenizer_json", "save_tokenizer_json",
           "special_token_policy", "split_words"]


def gpt2() -> ByteLevelBPE:
    """GPT-2's tokenizer from the fetched ``gpt2-tokenizer`` source (encoder.json + vocab.bpe)."""
    from glassformer.data import fetch

    directory = fetch("gpt2-tokenizer")
    return ByteLevelBPE.from_gpt2(directory / "encoder.json", directory / "vocab.bpe")


def bert_uncased() -> WordPiece:
    """BERT's uncased WordPiece tokenizer from the MiniLM checkpoint's vocab.txt."""
    from glassformer.data import fetch

    return WordPiece.from_vocab_file(fetch("minilm") / "vocab.txt", lowercase=True)


def load_tokenizer(name_or_path: str | os.PathLike) -> Tokenizer:
    """``"gpt2"``, ``"bert"``, a saved glassformer tokenizer directory, or a ``tokenizer.json`` file."""
    if name_or_path == "gpt2":
        return gpt2()
    if name_or_path == "bert":
        return bert_uncased()
    path = Path(name_or_path)
    if path.is_file() and path.suffix == ".json":
        return load_tokenizer_json(path)
    if path.is_dir():
        return Tokenizer.load(path)
    raise FileNotFoundError(f"tokenizer {str(name_or_path)!r} is neither 'gpt2', 'bert', a saved tokenizer "
                            f"directory nor a tokenizer.json file")
