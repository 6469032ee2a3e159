"""Cases ported from other projects' own test suites, with their expected values (known numbers):
transformers' BERT tokenizer tests, tiktoken's encoding tests (GPT-2 parts), minbpe's tokenizer tests.

The ones glassformer answers differently by design are listed in README.md ("design choices that differ
from the peers") and tested here as such.
"""

from __future__ import annotations

import pytest

from glassformer.tokenizers import ByteLevelBPE, SpecialTokenError, Tokenizer, WordPiece

# --- transformers: tests/models/bert/test_tokenization_bert.py ---------------------------------------------

BERT_TEST_VOCAB = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]", "want", "##want", "##ed", "wa", "un", "runn",
                   "##ing", ",", "low", "lowest"]


@pytest.fixture()
def small_bert():
    return WordPiece(BERT_TEST_VOCAB)


def test_full_tokenizer(small_bert):
    tokens = small_bert.tokenize("UNwant\u00E9d,running")
    assert tokens == ["un", "##want", "##ed", ",", "runn", "##ing"]
    assert [small_bert.token_to_id[t] for t in tokens] == [9, 6, 7, 12, 10, 11]  # convert_tokens_to_ids
    # test_rust_and_python_full_tokenizers: encode without and with the special tokens.
    assert small_bert.encode("UNwant\u00E9d,running", add_special_tokens=False) == [9, 6, 7, 12, 10, 11]
    assert small_bert.encode("UNwant\u00E9d,running") == [1, 9, 6, 7, 12, 10, 11, 2]


def test_input_output_texts(small_bert):
    """get_input_output_texts through test_internal_consistency: decoding gives "unwanted, running"."""
    assert small_bert.decode(small_bert.encode("UNwant\u00E9d,running", add_special_tokens=False)) == \
        "unwanted, running"


def test_chinese():
    assert WordPiece(BERT_TEST_VOCAB).words("ah\u535A\u63A8zz") == ["ah", "\u535A", "\u63A8", "zz"]


@pytest.mark.parametrize("lowercase, strip_accents, expected", [
    (True, None, ["hallo", "!", "how", "are", "you", "?"]),
    (True, True, ["hallo", "!", "how", "are", "you", "?"]),
    (True, False, ["hällo", "!", "how", "are", "you", "?"]),
    (False, None, ["HäLLo", "!", "how", "Are", "yoU", "?"]),
    (False, False, ["HäLLo", "!", "how", "Are", "yoU", "?"]),
    (False, True, ["HaLLo", "!", "how", "Are", "yoU", "?"]),
])
def test_basic_tokenizer_lower_and_accents(lowercase, strip_accents, expected):
    tokenizer = WordPiece(BERT_TEST_VOCAB, lowercase=lowercase, strip_accents=strip_accents)
    assert tokenizer.words(" \tHäLLo!how  \n Are yoU?  ") == expected


def test_basic_tokenizer_lower_hello():
    assert WordPiece(BERT_TEST_VOCAB).words(" \tHeLLo!how  \n Are yoU?  ") == ["hello", "!", "how", "are", "you", "?"]
    assert WordPiece(BERT_TEST_VOCAB).words("H\u00E9llo") == ["hello"]
    assert WordPiece(BERT_TEST_VOCAB, strip_accents=False).words("H\u00E9llo") == ["h\u00E9llo"]


def test_basic_tokenizer_splits_on_punctuation():
    assert WordPiece(BERT_TEST_VOCAB).words("a\n'll !!to?'d of, can't.") == [
        "a", "'", "ll", "!", "!", "to", "?", "'", "d", "of", ",", "can", "'", "t", "."]


def test_basic_tokenizer_remove_control_chars():
    assert WordPiece(BERT_TEST_VOCAB).words("\u200E\u200F") == []


def test_wordpiece_tokenizer():
    tokenizer = WordPiece(["[UNK]", "[CLS]", "[SEP]", "[PAD]", "want", "##want", "##ed", "wa", "un", "runn", "##ing"])
    assert tokenizer.tokenize("") == []
    assert tokenizer.tokenize("unwanted running") == ["un", "##want", "##ed", "runn", "##ing"]
    assert tokenizer.tokenize("unwantedX running") == ["[UNK]", "runn", "##ing"]


def test_clean_text(small_bert):
    assert [small_bert.tokenize(t) for t in ["Test", "\xad", "test"]] == [["[UNK]"], [], ["[UNK]"]]


def test_sequence_builders(bert):
    """build_inputs_with_special_tokens is what encode adds by default here, as transformers' encode does."""
    text = bert.encode("sequence builders", add_special_tokens=False)
    text_2 = bert.encode("multi-sequence build", add_special_tokens=False)
    assert bert.encode("sequence builders") == [101] + text + [102]
    assert bert.encode("sequence builders", "multi-sequence build") == [101] + text + [102] + text_2 + [102]


def test_change_tokenize_chinese_chars(bert):
    assert bert.tokenize("的人有") == ["的", "人", "有"]


# --- tiktoken: tests/test_encoding.py (the GPT-2 parts) -----------------------------------------------------

def test_simple(gpt2):
    assert gpt2.encode("hello world") == [31373, 995]
    assert gpt2.decode([31373, 995]) == "hello world"
    assert gpt2.encode("hello <|endoftext|>", allowed_special="all") == [31373, 220, 50256]


def test_simple_repeated(gpt2):
    expected = [[15], [405], [830], [2388], [20483], [10535], [24598], [8269], [10535, 830], [8269, 405],
                [8269, 830], [8269, 2388], [8269, 20483], [8269, 10535], [8269, 24598], [25645],
                [8269, 10535, 830]]
    assert [gpt2.encode("0" * n) for n in range(1, 18)] == expected


def test_encode_empty(gpt2):
    assert gpt2.encode("") == []


@pytest.mark.parametrize("c", ["^", "0", "a", "'s", " ", "\n"])
def test_catastrophically_repetitive(gpt2, c):
    for value in (c * 10_000, " " + c * 10_000, " " + c * 10_000 + "\n"):
        assert gpt2.decode(gpt2.encode(value)) == value


@pytest.mark.parametrize("value", ["hello", "hello ", "hello  ", " hello", " hello ", " hello  ", "hello world",
                                   "请考试我的软件！12345"])
def test_basic_roundtrip(gpt2, value):
    assert gpt2.decode(gpt2.encode(value)) == value
    assert gpt2.decode(gpt2.encode_ordinary(value)) == value


def test_batch_encode(gpt2):
    text1, text2 = "hello world", "goodbye world"
    assert gpt2.encode_batch([text1]) == [gpt2.encode(text1)]
    assert gpt2.encode_batch([text1, text2]) == [gpt2.encode(text1), gpt2.encode(text2)]


def test_encode_surrogate_pairs_differs_by_design(gpt2, tiktoken_gpt2):
    """tiktoken joins "\\ud83d\\udc4d" into 👍 and replaces a lone surrogate with U+FFFD; glassformer rejects
    both (README: design choices), because the replacement would not round-trip."""
    assert gpt2.encode("👍") == tiktoken_gpt2.encode("👍")
    for text in ("\ud83d\udc4d", "\ud83d"):
        with pytest.raises(ValueError, match="lone surrogate"):
            gpt2.encode(text)


# --- minbpe: tests/test_tokenizer.py --------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "?", "hello world!!!? (안녕하세요!) lol123 😉"])
def test_encode_decode_identity(text):
    tokenizer = ByteLevelBPE()
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_wikipedia_example():
    """"aaabdaaabac", 3 merges: Z = aa (256), Y = ab (257), X = ZY (258) → XdXac."""
    tokenizer = ByteLevelBPE()
    tokenizer.train("aaabdaaabac", 256 + 3)
    assert tokenizer.encode("aaabdaaabac") == [258, 100, 258, 97, 99]
    assert tokenizer.decode(tokenizer.encode("aaabdaaabac")) == "aaabdaaabac"


SPECIALS = {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259, "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276}
LLAMA = ("<|endoftext|>The llama (/ˈlɑːmə/; Spanish pronunciation: [ˈʎama] or [ˈʝama]) (Lama glama) is a "
         "domesticated South American camelid.\n<|fim_prefix|>In Aymara mythology, llamas are important beings."
         "<|fim_suffix|> where they come from at the end of time.[6]<|fim_middle|> llamas will return<|endofprompt|>")


@pytest.mark.parametrize("specials", [{}, SPECIALS], ids=["no specials", "specials"])
def test_save_load(specials, tmp_path):
    tokenizer = ByteLevelBPE()
    tokenizer.train(LLAMA, 256 + 64)
    tokenizer.add_special_tokens(specials)
    knobs = {"allowed_special": "all"}
    ids = tokenizer.encode(LLAMA, **knobs) if specials else tokenizer.encode(LLAMA)
    assert tokenizer.decode(ids) == LLAMA
    loaded = Tokenizer.load(tokenizer.save(tmp_path / "tok"))
    assert loaded.decode(ids) == LLAMA
    assert (loaded.encode(LLAMA, **knobs) if specials else loaded.encode(LLAMA)) == ids


def test_special_text_raises_where_minbpe_encodes_it_by_default():
    """minbpe's encode(text) defaults to allowed_special="none_raise" too; glassformer's error names the knobs."""
    tokenizer = ByteLevelBPE()
    tokenizer.add_special_tokens(SPECIALS)
    with pytest.raises(SpecialTokenError, match="allowed_special=.*disallowed_special=\\(\\)"):
        tokenizer.encode(LLAMA)
