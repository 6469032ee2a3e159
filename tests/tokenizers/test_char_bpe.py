"""CharBPE against the article's printed run on "low,lowest,newer,wider" (known numbers)."""

from __future__ import annotations

import pytest

from glassformer.tokenizers import CharBPE, Tokenizer, TokenizerFileError


def test_article_run_merges_and_final_vocabulary():
    tokenizer = CharBPE()
    steps = tokenizer.train("low,lowest,newer,wider", 5)
    assert [s.pair for s in steps] == [("l", "o"), ("lo", "w"), ("e", "r"), ("er", "</w>"), ("low", "</w>")]
    assert list(steps[-1].words) == ["low</w>", "low e s t </w>", "n e w er</w>", "w i d er</w>"]
    assert [s.count for s in steps] == [2, 2, 2, 2, 1]
    assert steps[2].words["n e w er </w>"] == 1


def test_verbose_prints_each_step(capsys):
    CharBPE().train("low,lowest,newer,wider", 2, verbose=True)
    out = capsys.readouterr().out
    assert "Step 1: merge ('l', 'o') (count 2)" in out and "Step 2: merge ('lo', 'w')" in out
    assert "  lo w e s t </w>: 1" in out


def test_encode_uses_merges_and_unknown_characters():
    tokenizer = CharBPE()
    tokenizer.train("low,lowest,newer,wider", 5)
    assert tokenizer.tokenize("lowest, low!") == ["low", "e", "s", "t", "</w>", "low</w>"]
    ids = tokenizer.encode("wider zoo")
    assert [tokenizer.id_to_token(i) for i in ids] == ["w", "i", "d", "er</w>", "<unk>", "o", "o", "</w>"]
    assert tokenizer.decode(tokenizer.encode("newer lowest")) == "newer lowest"


def test_frequencies_decide_merges():
    # "ab" appears 3 times, "cd" twice: (a, b) must come first even though (c, d) is seen first.
    steps = CharBPE().train("cd cd ab ab ab", 1)
    assert steps[0].pair == ("a", "b") and steps[0].count == 3


def test_save_load_round_trip(tmp_path):
    tokenizer = CharBPE()
    tokenizer.train("low,lowest,newer,wider", 5)
    tokenizer.save(tmp_path / "bpe")
    assert (tmp_path / "bpe" / "merges.txt").read_text().splitlines()[1:] == ["l o", "lo w", "e r", "er </w>",
                                                                              "low </w>"]
    loaded = Tokenizer.load(tmp_path / "bpe")
    assert isinstance(loaded, CharBPE)
    assert loaded.tokenize("lowest newer") == ["low", "e", "s", "t", "</w>", "n", "e", "w", "er</w>"]


def test_truncated_merges_file_is_named(tmp_path):
    tokenizer = CharBPE()
    tokenizer.train("low,lowest,newer,wider", 5)
    tokenizer.save(tmp_path / "bpe")
    merges = tmp_path / "bpe" / "merges.txt"
    merges.write_text(merges.read_text()[:-8])
    with pytest.raises(TokenizerFileError, match="merges.txt.*truncated"):
        Tokenizer.load(tmp_path / "bpe")
