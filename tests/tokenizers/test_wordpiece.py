"""WordPiece against Hugging Face's BertTokenizerFast and tokenizers.Tokenizer with the MiniLM (BERT uncased) vocab."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from glassformer.tokenizers import Tokenizer, TokenizerFileError, WordPiece, load_tokenizer_json, save_tokenizer_json
from glassformer.tokenizers.encoding import truncate_longest_first
from glassformer.tokenizers.wordpiece import normalize

from .strategies import bert_agreed_text, old_unicode_text

FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def test_brown_sample_equals_bert_tokenizer_fast(bert, hf_bert, brown):
    """Every fifth Brown document, with and without [CLS]/[SEP]."""
    for text in brown[::5]:
        assert bert.encode(text, add_special_tokens=True) == hf_bert(text)["input_ids"]
    text = brown[3]
    assert bert.encode(text, add_special_tokens=False) == hf_bert(text, add_special_tokens=False)["input_ids"]


@FAST
@given(text=bert_agreed_text)
def test_generated_unicode_equals_bert_tokenizer_fast(bert, hf_bert, text):
    assert bert.encode(text, add_special_tokens=True, allowed_special="all") == hf_bert(text)["input_ids"]
    assert bert.encode(text, add_special_tokens=False, allowed_special="all") == \
        hf_bert(text, add_special_tokens=False)["input_ids"]


@FAST
@given(first=old_unicode_text, second=old_unicode_text)
def test_pairs_and_truncation_equal_bert_tokenizer_fast(bert, hf_bert, first, second):
    assume(second != "")  # transformers treats text_pair="" as no pair at all
    ours = bert.encode_plus(first, second, add_special_tokens=True, allowed_special="all")
    theirs = hf_bert(first, second)
    assert (ours.ids, ours.token_type_ids, ours.attention_mask) == \
        (theirs["input_ids"], theirs["token_type_ids"], theirs["attention_mask"])
    for max_length in (3, 8, 17):
        ours = bert.encode_plus(first, second, add_special_tokens=True, max_length=max_length, allowed_special="all")
        theirs = hf_bert(first, second, max_length=max_length, truncation=True)
        assert (ours.ids, ours.token_type_ids) == (theirs["input_ids"], theirs["token_type_ids"])


def test_truncation_of_brown_pairs(bert, hf_bert, brown):
    first, second = brown[0][:3000], brown[1][:800]
    for max_length in (16, 64, 128, 512):
        ours = bert.encode_plus(first, second, add_special_tokens=True, max_length=max_length)
        theirs = hf_bert(first, second, max_length=max_length, truncation=True)
        assert (ours.ids, ours.token_type_ids) == (theirs["input_ids"], theirs["token_type_ids"])
    assert bert.encode(first, add_special_tokens=True, max_length=20) == \
        hf_bert(first, max_length=20, truncation=True)["input_ids"]


def test_longest_first_lengths_match_hf_table():
    # The (max_length=7) table from Hugging Face tokenizers' truncation tests: lengths 0, 2, 4, 8.
    cases = {(0, 8): (0, 7), (2, 8): (2, 5), (4, 4): (3, 4), (4, 8): (3, 4), (8, 2): (5, 2), (8, 4): (4, 3),
             (8, 8): (3, 4), (2, 4): (2, 4)}
    for (n1, n2), expected in cases.items():
        first, second = truncate_longest_first(list(range(n1)), list(range(n2)), 7)
        assert (len(first), len(second)) == expected


def test_batch_padding_equals_hf(bert, hf_bert):
    texts = ["Hello there!", "A much longer sentence, with commas and more words.", ""]
    pairs = ["one", "two three", "four"]
    ours = bert(texts, pairs, padding="longest")
    theirs = hf_bert(texts, pairs, padding="longest")
    assert ours.input_ids == theirs["input_ids"]
    assert ours.token_type_ids == theirs["token_type_ids"]
    assert ours.attention_mask == theirs["attention_mask"]
    fixed = bert(texts, max_length=12, padding="max_length", truncation=True)
    theirs = hf_bert(texts, max_length=12, padding="max_length", truncation=True)
    assert fixed.input_ids == theirs["input_ids"] and fixed.attention_mask == theirs["attention_mask"]


def test_long_word_becomes_unk(bert):
    assert bert.encode("a" * 101, add_special_tokens=False) == [bert.token_to_id["[UNK]"]]
    assert bert.encode("a" * 100, add_special_tokens=False) != [bert.token_to_id["[UNK]"]]


def test_special_token_policy(bert, hf_bert):
    with pytest.raises(ValueError, match=r"special token '\[SEP\]'"):
        bert.encode("first [SEP] second")
    assert bert.encode("first [SEP] second", add_special_tokens=True, allowed_special="all") == \
        hf_bert("first [SEP] second")["input_ids"]
    assert 102 not in bert.encode_ordinary("first [SEP] second")


def test_decode_joins_pieces(bert):
    ids = bert.encode("Tokenization is unbelievable")
    assert bert.decode(ids) == "[CLS] tokenization is unbelievable [SEP]"
    assert bert.decode(ids, skip_special_tokens=True) == "tokenization is unbelievable"
    assert bert.decode(bert.encode("Tokenization is unbelievable", add_special_tokens=False)) == \
        "tokenization is unbelievable"


def test_minilm_tokenizer_json_import(bert, brown):
    """Importing MiniLM's own tokenizer.json gives the same ids as HF `tokenizers` reading that file, whose
    encode applies the post-processor unless add_special_tokens=False (as ours, imported or from vocab.txt)."""
    from glassformer.data import fetch
    from tokenizers import Tokenizer as HFTokenizer

    path = fetch("minilm", quiet=True) / "tokenizer.json"
    imported = load_tokenizer_json(path)
    reference = HFTokenizer.from_file(str(path))
    reference.no_truncation()
    reference.no_padding()
    for text in brown[100:103]:
        assert imported.encode(text) == bert.encode(text) == reference.encode(text).ids
        assert imported.encode(text, add_special_tokens=False) == bert.encode(text, add_special_tokens=False) == \
            reference.encode(text, add_special_tokens=False).ids
    first, second = brown[104][:400], brown[105][:300]
    assert imported.encode(first, second) == bert.encode(first, second) == reference.encode(first, second).ids
    raw = imported.encode_plus(first, second, add_special_tokens=False)
    theirs = reference.encode(first, second, add_special_tokens=False)
    assert (raw.ids, raw.token_type_ids) == (theirs.ids, theirs.type_ids)
    assert imported.encode_batch([first, second]) == [e.ids for e in reference.encode_batch([first, second])]


def test_export_to_tokenizer_json_loads_in_hf(bert, brown, tmp_path):
    from tokenizers import Tokenizer as HFTokenizer

    directory = bert.save(tmp_path / "bert")
    reference = HFTokenizer.from_file(str(directory / "tokenizer.json"))
    loaded = Tokenizer.load(directory)
    assert isinstance(loaded, WordPiece)
    for text in brown[200:203]:
        assert loaded.encode(text) == reference.encode(text).ids
    assert loaded.encode("q?", "a!") == reference.encode("q?", "a!").ids
    save_tokenizer_json(bert, tmp_path / "t.json")
    assert load_tokenizer_json(tmp_path / "t.json").vocab == bert.vocab


def test_bad_inputs(bert, tmp_path):
    with pytest.raises(TypeError, match="text must be str, got bytes"):
        bert.encode(b"hello")
    with pytest.raises(FileNotFoundError, match="WordPiece vocabulary not found"):
        WordPiece.from_vocab_file(tmp_path / "nope.txt")
    small = tmp_path / "vocab.txt"
    small.write_text("[PAD]\nhello\n")
    with pytest.raises(TokenizerFileError, match=r"vocab.txt: unk_token='\[UNK\]' is not in the vocabulary"):
        WordPiece.from_vocab_file(small)
    broken = tmp_path / "tokenizer.json"
    broken.write_text('{"model": {"type": "WordPiece", "vocab": ')
    with pytest.raises(TokenizerFileError, match="tokenizer.json: not valid JSON"):
        load_tokenizer_json(broken)


# Combining marks that survive accent stripping (not Mn) and that NFD's canonical ordering moves, mixed with Mn.
_MARKS = ["\U0001D165", "\U0001D16D", "\u302E", "\u302F", "\u0301", "\u0323", "\U0001D15F", "\u1B44"]


@FAST
@given(text=st.lists(st.one_of(old_unicode_text, st.sampled_from(_MARKS)), max_size=8).map("".join),
       lowercase=st.booleans(), strip_accents=st.sampled_from([None, True, False]))
def test_normalizer_equals_hf_bert_normalizer(text, lowercase, strip_accents):
    from tokenizers.normalizers import BertNormalizer

    reference = BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=strip_accents,
                               lowercase=lowercase)
    assert normalize(text, lowercase=lowercase, strip_accents=strip_accents) == reference.normalize_str(text)


def test_a_long_word_costs_linear_time_and_equals_hf(bert, tmp_path):
    """A 5,000-character word with the length limit lifted: the longest-match search stops at the longest token."""
    import json
    import random

    from tokenizers import Tokenizer as HFTokenizer

    path = save_tokenizer_json(bert, tmp_path / "t.json")
    document = json.loads(path.read_text())
    document["model"]["max_input_chars_per_word"] = 10_000
    path.write_text(json.dumps(document))
    rng = random.Random(0)
    word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(5000))
    assert load_tokenizer_json(path).encode(word, add_special_tokens=False) == HFTokenizer.from_file(str(path)).encode(
        word, add_special_tokens=False).ids
