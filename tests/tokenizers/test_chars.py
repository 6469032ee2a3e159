"""CharTokenizer: one id per character, the unknown character, documents separated by <|endoftext|>, save → load."""

from __future__ import annotations

import pytest

from glassformer.tokenizers import CharTokenizer, Tokenizer, load_tokenizer
from glassformer.tokenizers.base import TokenizerFileError


def test_ids_follow_code_point_order_after_the_two_special_tokens():
    tokenizer = CharTokenizer()
    tokenizer.train(["hello", "world\n"])
    assert tokenizer.vocab == ["<unk>", "<|endoftext|>", "\n", "d", "e", "h", "l", "o", "r", "w"]
    assert tokenizer.encode("hello") == [5, 4, 6, 6, 7]
    assert tokenizer.decode([9, 7, 8, 6, 3, 2]) == "world\n"


def test_unseen_characters_become_unk_and_special_text_follows_the_policy():
    tokenizer = CharTokenizer("ab")
    assert tokenizer.encode_ordinary("abz") == [2, 3, 0]
    with pytest.raises(ValueError, match="special token '<|endoftext|>'"):
        tokenizer.encode("a<|endoftext|>b")
    assert tokenizer.encode("a<|endoftext|>b", allowed_special="all") == [2, 1, 3]
    assert tokenizer.encode_ordinary("<unk>") == [0] * 5  # '<', 'u', 'n', 'k', '>' are not in the vocabulary


def test_round_trip_of_any_text_made_of_known_characters():
    text = "To be, or not to be: that is the question.\n\tWhether 'tis nobler — in the mind…"
    tokenizer = CharTokenizer()
    tokenizer.train(text)
    assert tokenizer.decode(tokenizer.encode(text)) == text
    assert len(tokenizer.encode(text)) == len(text)


def test_save_load_keeps_newlines_quotes_and_backslashes(tmp_path):
    tokenizer = CharTokenizer('a\n"\\\t é')
    tokenizer.save(tmp_path / "tok")
    directory = tmp_path / "tok"
    for loaded in (Tokenizer.load(directory), load_tokenizer(directory), CharTokenizer.load(directory)):
        assert isinstance(loaded, CharTokenizer)
        assert loaded.vocab == tokenizer.vocab
        assert loaded.special_tokens == {"<unk>": 0, "<|endoftext|>": 1}


def test_damaged_file_is_reported(tmp_path):
    CharTokenizer("ab").save(tmp_path / "tok")
    path = tmp_path / "tok" / "chars.txt"
    path.write_text(path.read_text(encoding="utf-8").replace('"b"', '"bc"'), encoding="utf-8")
    with pytest.raises(TokenizerFileError, match="line 3 should be one character"):
        CharTokenizer.load(tmp_path / "tok")


def test_vocab_size_too_small_is_an_error():
    with pytest.raises(ValueError, match="vocab_size=3 cannot hold the 3 characters"):
        CharTokenizer().train("abc", vocab_size=3)
