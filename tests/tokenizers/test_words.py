"""WordTokenizer: the article's regex splitter, vocabulary ids, one-hot vectors and the unknown token."""

from __future__ import annotations

import numpy as np
import pytest

from glassformer.tokenizers import Tokenizer, WordTokenizer, split_words


def test_splitter_separates_words_and_punctuation():
    assert split_words("Hello, world! It's 2024.") == ["hello", ",", "world", "!", "it", "'", "s", "2024", "."]


def test_vocabulary_is_ordered_by_frequency_then_first_appearance():
    tokenizer = WordTokenizer()
    tokenizer.train(["the cat sat", "the dog sat on the mat"])
    assert tokenizer.vocab == ["<unk>", "the", "sat", "cat", "dog", "on", "mat"]
    assert tokenizer.encode("The bird sat") == [1, 0, 2]
    assert tokenizer.decode([1, 3, 2]) == "the cat sat"


def test_one_hot_rows_are_identity_rows():
    tokenizer = WordTokenizer()
    tokenizer.train("a b c")
    vectors = tokenizer.one_hot("c a zebra")
    np.testing.assert_array_equal(vectors, np.eye(4, dtype=np.float32)[[3, 1, 0]])


def test_vocab_size_limit_keeps_most_frequent():
    tokenizer = WordTokenizer()
    tokenizer.train("x y y z z z", vocab_size=3)
    assert tokenizer.vocab == ["<unk>", "z", "y"]


def test_unknown_token_text_follows_the_special_token_policy():
    tokenizer = WordTokenizer(["a"])
    with pytest.raises(ValueError, match="special token '<unk>'"):
        tokenizer.encode("a <unk>")
    assert tokenizer.encode_ordinary("a <unk>") == [1, 0, 0, 0]


def test_non_str_input_is_rejected():
    with pytest.raises(TypeError, match="must be str, got bytes"):
        WordTokenizer(["a"]).encode(b"a")


def test_save_load(tmp_path):
    tokenizer = WordTokenizer()
    tokenizer.train("one two two")
    loaded = Tokenizer.load(tokenizer.save(tmp_path / "w"))
    assert isinstance(loaded, WordTokenizer) and loaded.vocab == ["<unk>", "two", "one"]
