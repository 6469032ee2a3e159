"""ByteLevelBPE against tiktoken and Hugging Face (GPT2TokenizerFast, tokenizers.Tokenizer) with GPT-2's files,
and the optimised trainer against the textbook trainer in naive_bpe.py."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glassformer.tokenizers import GPT4_PATTERN, ByteLevelBPE, Tokenizer, TokenizerFileError
from glassformer.tokenizers.byte_bpe import count_pieces, iter_file_blocks, learn_merges

from .naive_bpe import naive_learn_merges
from .strategies import any_text

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# --- GPT-2's real vocabulary -----------------------------------------------------------------------

def test_brown_ids_equal_tiktoken(gpt2, tiktoken_gpt2, brown):
    """All 500 Brown documents (6.1 MB): ids equal tiktoken's with the same encoder.json / vocab.bpe."""
    for text in brown:
        assert gpt2.encode(text) == tiktoken_gpt2.encode_ordinary(text)


def test_brown_sample_ids_equal_hf_gpt2(gpt2, hf_gpt2, brown):
    """Every tenth Brown document: ids equal Hugging Face's GPT2TokenizerFast with the same files."""
    for text in brown[::10]:
        assert gpt2.encode(text) == hf_gpt2(text)["input_ids"]


@FAST
@given(text=any_text)
def test_generated_unicode_equals_tiktoken_and_hf(gpt2, tiktoken_gpt2, hf_gpt2, text):
    ids = gpt2.encode_ordinary(text)
    assert ids == tiktoken_gpt2.encode_ordinary(text)
    assert ids == hf_gpt2(text)["input_ids"]
    assert gpt2.decode(ids) == text


@FAST
@given(text=st.text())
def test_decode_inverts_encode_for_every_string(gpt2, text):
    assert gpt2.decode(gpt2.encode_ordinary(text)) == text


def test_known_ids(gpt2):
    # The ids of "Hello world" in GPT-2's vocabulary (encoder.json: "Hello" 15496, "Ġworld" 995).
    assert gpt2.encode("Hello world") == [15496, 995]
    assert gpt2.tokenize("Hello world") == ["Hello", "Ġworld"]
    assert gpt2.vocab_size == 50257


# --- the special-token policy -------------------------------------------------------------------------

def test_special_token_text_raises_by_default(gpt2):
    with pytest.raises(ValueError, match=r"special token '<\|endoftext\|>' at position 4"):
        gpt2.encode("end <|endoftext|> start")


def test_allowed_special_gives_the_special_id(gpt2, tiktoken_gpt2):
    text = "end<|endoftext|> start"
    assert gpt2.encode(text, allowed_special={"<|endoftext|>"}) == tiktoken_gpt2.encode(text, allowed_special="all")
    assert gpt2.encode(text, allowed_special="all")[1] == 50256
    assert gpt2.decode(gpt2.encode(text, allowed_special="all")) == text


def test_encode_ordinary_treats_special_text_as_text(gpt2, tiktoken_gpt2):
    text = "end <|endoftext|> start"
    assert gpt2.encode_ordinary(text) == tiktoken_gpt2.encode_ordinary(text)
    assert 50256 not in gpt2.encode_ordinary(text)


def test_unknown_special_token_is_an_error(gpt2):
    with pytest.raises(ValueError, match="unknown special token '<\\|im_start\\|>'"):
        gpt2.encode("hi", allowed_special={"<|im_start|>"})


# --- bad input ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [b"hello", 3, None, ["a"]])
def test_non_str_input_is_rejected(gpt2, value):
    with pytest.raises(TypeError, match=f"text must be str, got {type(value).__name__}"):
        gpt2.encode(value)


def test_lone_surrogate_is_rejected(gpt2):
    with pytest.raises(ValueError, match="lone surrogate"):
        gpt2.encode("a\ud800b")


def test_file_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"ok line\n" * 3 + b"caf\xe9\n")
    with pytest.raises(ValueError, match=r"latin1.txt: not valid UTF-8 at byte 27"):
        ByteLevelBPE().train_from_files([path], 300)


def test_unknown_id_in_decode(gpt2):
    with pytest.raises(ValueError, match="id 60000 is not in the vocabulary"):
        gpt2.decode([60000])


def test_corrupt_gpt2_files_are_named(tmp_path, gpt2_dir):
    bad_json = tmp_path / "encoder.json"
    bad_json.write_text('{"a": 1,')
    with pytest.raises(TokenizerFileError, match="encoder.json: not a valid JSON"):
        ByteLevelBPE.from_gpt2(bad_json, gpt2_dir / "vocab.bpe")
    bad_merges = tmp_path / "vocab.bpe"
    bad_merges.write_text("#version: 0.2\nĠ t\nzzzq qqq\n")
    with pytest.raises(TokenizerFileError, match="vocab.bpe: line 3 .*not in the vocabulary"):
        ByteLevelBPE.from_gpt2(gpt2_dir / "encoder.json", bad_merges)


# --- training -----------------------------------------------------------------------------------------

TIES = ["ab ab ba ba", "aaaa aaa aa a", "abcabc cbacba", "x y z xy yz zx", "ab\nab\r\nba ba  ba\t"]


@pytest.mark.parametrize("corpus", [
    pytest.param(TIES, id="ties"),
    pytest.param(["the cat sat on the mat"] * 3 + ["a cat, a hat; that's that!"], id="english"),
    pytest.param(["😀😃😄 ääkkönen 東京東京 \u0301e\u0301"], id="unicode"),
    pytest.param("brown", id="brown-8-docs"),
])
def test_optimised_trainer_learns_the_naive_merges(corpus, brown):
    texts = brown[:8] if corpus == "brown" else corpus
    counts = count_pieces(texts)
    n_new = 150 if corpus == "brown" else 60
    fast = learn_merges(counts, n_new, progress=False)
    naive = naive_learn_merges(counts, n_new)
    assert fast == naive
    assert len(fast[1]) > 0


@settings(max_examples=50, deadline=None)
@given(texts=st.lists(st.text(st.sampled_from("aabbc \n'"), max_size=40), min_size=1, max_size=5),
       n_new=st.integers(1, 40))
def test_optimised_trainer_matches_naive_on_generated_corpora(texts, n_new):
    counts = count_pieces(texts)
    assert learn_merges(counts, n_new, progress=False) == naive_learn_merges(counts, n_new)


def test_ties_break_on_smaller_ids():
    # "ab" and "cd" both occur twice (as separate texts, so no space joins them); (97, 98) < (99, 100).
    tokenizer = ByteLevelBPE()
    tokenizer.train(["cd", "cd", "ab", "ab"], 257)
    assert tokenizer.merges == [(ord("a"), ord("b"))]


def test_train_from_files_equals_train_on_the_texts(tmp_path, brown):
    # Streaming in small blocks must find exactly the pieces of the whole file.
    path = tmp_path / "corpus.txt"
    text = "\n\n".join(brown[:5]) + "\n  \n end"
    path.write_text(text, encoding="utf-8")
    assert "".join(iter_file_blocks(path, block_bytes=1000)) == text
    streamed = count_pieces(iter_file_blocks(path, block_bytes=1000))
    assert streamed == count_pieces([text])


def test_vocab_size_counts_bytes_merges_and_specials():
    tokenizer = ByteLevelBPE()
    tokenizer.train(["hello hello world"] * 5, 262, special_tokens=["<|endoftext|>"])
    assert tokenizer.vocab_size == 262
    assert tokenizer.special_tokens == {"<|endoftext|>": 261}
    with pytest.raises(ValueError, match="vocab_size=200 is below 257"):
        tokenizer.train(["x"], 200, special_tokens=["<s>"])


# --- saving, tokenizer.json ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(brown):
    tokenizer = ByteLevelBPE()
    tokenizer.train(brown[:30], 1000, special_tokens=["<|endoftext|>"])
    return tokenizer


def test_exported_tokenizer_json_gives_identical_ids_in_hf(trained, brown, tmp_path):
    """A glassformer-trained tokenizer, saved, loaded by Hugging Face `tokenizers`: the same ids."""
    from tokenizers import Tokenizer as HFTokenizer

    directory = trained.save(tmp_path / "tok")
    reference = HFTokenizer.from_file(str(directory / "tokenizer.json"))
    loaded = Tokenizer.load(directory)
    for text in brown[30:40]:
        expected = reference.encode(text).ids
        assert trained.encode(text) == expected
        assert loaded.encode(text) == expected
    text = "a<|endoftext|>b"
    assert trained.encode(text, allowed_special="all") == reference.encode(text).ids


@FAST
@given(text=any_text)
def test_exported_tokenizer_json_matches_hf_on_generated_unicode(trained, tmp_path_factory, text):
    reference = _hf_reference(trained, tmp_path_factory)
    assert trained.encode_ordinary(text) == reference.encode(text).ids


_REFERENCES: dict = {}


def _hf_reference(tokenizer, tmp_path_factory):
    from tokenizers import Tokenizer as HFTokenizer

    if id(tokenizer) not in _REFERENCES:
        directory = tokenizer.save(tmp_path_factory.mktemp("hf") / "tok")
        _REFERENCES[id(tokenizer)] = HFTokenizer.from_file(str(directory / "tokenizer.json"))
    return _REFERENCES[id(tokenizer)]


def test_gpt2_exported_to_tokenizer_json_equals_tiktoken(gpt2, tiktoken_gpt2, brown, tmp_path):
    from glassformer.tokenizers import load_tokenizer_json, save_tokenizer_json
    from tokenizers import Tokenizer as HFTokenizer

    path = save_tokenizer_json(gpt2, tmp_path / "tokenizer.json")
    reference = HFTokenizer.from_file(str(path))
    reloaded = load_tokenizer_json(path)
    text = brown[7][:5000]
    assert reference.encode(text).ids == tiktoken_gpt2.encode_ordinary(text) == reloaded.encode(text)


def test_gpt4_pattern_splits_numbers_in_threes():
    tokenizer = ByteLevelBPE(GPT4_PATTERN)
    assert tokenizer._regex.findall("abc 12345\n\n") == ["abc", " ", "123", "45", "\n\n"]


def test_our_files_are_readable_text(trained, tmp_path):
    directory = trained.save(tmp_path / "tok")
    header = (directory / "glassformer-tokenizer.txt").read_text().splitlines()
    assert header[0] == "glassformer-tokenizer 1"
    merges = (directory / "merges.txt").read_text().splitlines()
    assert merges[0] == f"#glassformer-merges 1 count={len(trained.merges)}"
    assert merges[1] == "Ġ t"  # the most frequent pair in English text: space + t
    assert json.loads((directory / "tokenizer.json").read_text())["model"]["type"] == "BPE"


@pytest.mark.parametrize("damage, message", [
    ("cut_vocab", "vocab.txt: truncated"),
    ("drop_vocab_lines", r"vocab.txt: truncated or corrupt: the header says 999 entries, found 989"),
    ("bad_header", "glassformer-tokenizer.txt: first line should be 'glassformer-tokenizer 1'"),
    ("bad_json", r"glassformer-tokenizer.txt: line 3 \(special_tokens\) is not valid JSON"),
    ("bad_merge", "merges.txt: line 2 .* not in the vocabulary"),
    ("missing_merges", "merges.txt: not found"),
])
def test_damaged_files_give_clear_errors(trained, tmp_path, damage, message):
    directory = trained.save(tmp_path / "tok")
    vocab, merges, header = directory / "vocab.txt", directory / "merges.txt", directory / "glassformer-tokenizer.txt"
    if damage == "cut_vocab":
        vocab.write_bytes(vocab.read_bytes()[:-3])
    elif damage == "drop_vocab_lines":
        lines = vocab.read_text().splitlines(keepends=True)
        vocab.write_text("".join(lines[:-10]))
    elif damage == "bad_header":
        header.write_text("something else\n")
    elif damage == "bad_json":
        lines = header.read_text().splitlines()
        lines[2] = 'special_tokens {"<|endoftext|>": '
        header.write_text("\n".join(lines) + "\n")
    elif damage == "bad_merge":
        lines = merges.read_text().splitlines()
        lines[1] = "Ġ ✗"
        merges.write_text("\n".join(lines) + "\n")
    elif damage == "missing_merges":
        merges.unlink()
    with pytest.raises(TokenizerFileError, match=message):
        Tokenizer.load(directory)


@pytest.mark.parametrize("newline", ["\r\n", " \n", "\t\n"])
def test_streamed_blocks_never_cut_after_whitespace_before_a_newline(tmp_path, newline):
    # "a\r\nb" is the pieces "a", "\r", "\nb" when read whole; a block ending in "\r\n" would make "\r\n" one piece.
    path = tmp_path / "corpus.txt"
    line = "word " * 30
    text = "".join(f"{line}{i}{newline if i % 2 else chr(10)}" for i in range(200))  # plain newlines allow cuts
    path.write_bytes(text.encode("utf-8"))
    blocks = list(iter_file_blocks(path, block_bytes=97))
    assert len(blocks) > 10 and "".join(blocks) == text
    assert count_pieces(blocks) == count_pieces([text])
