"""Character offsets: GPT-2 and BERT uncased against Hugging Face `tokenizers` reading our exported tokenizer.json
(2,000 generated strings each), GPT-2 against tiktoken's decode_with_offsets, BERT against transformers' own
offsets case, and the other three tokenizers against the property their design promises."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glassformer.tokenizers import CharBPE, CharTokenizer, WordTokenizer, save_tokenizer_json

from .strategies import any_text, old_unicode_text

MANY = settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def hf_exported(gpt2, bert, tmp_path_factory):
    """Hugging Face `tokenizers` reading the tokenizer.json files that glassformer writes."""
    from tokenizers import Tokenizer as HFTokenizer

    directory = tmp_path_factory.mktemp("exported")
    return {"gpt2": HFTokenizer.from_file(str(save_tokenizer_json(gpt2, directory / "gpt2.json"))),
            "bert": HFTokenizer.from_file(str(save_tokenizer_json(bert, directory / "bert.json")))}


# Text that mixes the awkward pieces with the special tokens' text, which both sides must then keep whole.
SPECIALS = st.sampled_from(["<|endoftext|>", "[SEP]", "[MASK]", "[CLS]"])
texts_with_specials = st.lists(st.one_of(any_text, SPECIALS), max_size=4).map("".join)
# BERT's normaliser in Hugging Face classifies characters with older Unicode tables than Python's
# unicodedata (503 code points differ, a documented difference): its fuzz draws from characters both know.
bert_texts_with_specials = st.lists(st.one_of(old_unicode_text, SPECIALS), max_size=4).map("".join)


@MANY
@given(text=texts_with_specials)
def test_gpt2_offsets_equal_hf_on_generated_text(gpt2, hf_exported, text):
    ours = gpt2.encode_plus(text, allowed_special="all")
    theirs = hf_exported["gpt2"].encode(text)
    assert (ours.ids, ours.offsets) == (theirs.ids, theirs.offsets)


@MANY
@given(text=bert_texts_with_specials)
def test_bert_offsets_equal_hf_on_generated_text(bert, hf_exported, text):
    ours = bert.encode_plus(text, add_special_tokens=True, allowed_special="all")
    theirs = hf_exported["bert"].encode(text)
    assert (ours.ids, ours.offsets, ours.token_type_ids) == (theirs.ids, theirs.offsets, theirs.type_ids)


@FAST
@given(text=any_text)
def test_gpt2_offset_starts_equal_tiktoken_decode_with_offsets(gpt2, tiktoken_gpt2, text):
    """tiktoken's decode_with_offsets gives each token's start character; a token that starts inside a
    character starts at that character, as in Hugging Face."""
    ours = gpt2.encode_plus(text)
    assert [start for start, _ in ours.offsets] == tiktoken_gpt2.decode_with_offsets(ours.ids)[1]


@pytest.mark.parametrize("text", [
    "Héllo, WORLD!",                # lower-casing and accent stripping
    "e\u0301x İstanbul",            # a combining accent dropped; a capital that decomposes
    "a你好b 東京",                    # CJK ideographs spaced apart
    "x\x00y\u200bz\ufffd w",        # cleaned characters between word pieces
    "ﬁne ǅ ß",                      # characters whose lower case is the same length or longer
    "a\U0001d16d\U0001d165\u0301b",  # marks that survive accent stripping and that NFD reorders
    "\u302e\u302d x a\u302e\u302d\u302d",  # a kept mark (Mc) that NFD moves behind a stripped one (Mn)
    "tab\tnew\nline\u3000wide",
    "🎉 ok",
])
def test_normalisation_cases_equal_hf(bert, gpt2, hf_exported, text):
    ours = bert.encode_plus(text, add_special_tokens=True)
    theirs = hf_exported["bert"].encode(text)
    assert (ours.tokens, ours.offsets) == (theirs.tokens, theirs.offsets)
    ours = gpt2.encode_plus(text)
    theirs = hf_exported["gpt2"].encode(text)
    assert (ours.ids, ours.offsets) == (theirs.ids, theirs.offsets)


def test_transformers_offsets_with_special_characters(bert):
    """transformers' BertTokenizationTest.test_offsets_with_special_characters, uncased expectations."""
    sentence = "A, naïve [MASK] AllenNLP sentence."
    encoding = bert.encode_plus(sentence, add_special_tokens=True, allowed_special={"[MASK]"})
    assert list(zip(encoding.offsets, encoding.tokens)) == [
        ((0, 0), "[CLS]"), ((0, 1), "a"), ((1, 2), ","), ((3, 8), "naive"), ((9, 15), "[MASK]"),
        ((16, 21), "allen"), ((21, 23), "##nl"), ((23, 24), "##p"), ((25, 33), "sentence"), ((33, 34), "."),
        ((0, 0), "[SEP]")]


def test_pair_offsets_and_truncation_equal_hf(bert, hf_exported):
    reference = hf_exported["bert"]
    first, second = "The quick brown fox, naïvely!", "Jumps over — 東京 — the dog."
    for max_length in (None, 9, 14):
        ours = bert.encode_plus(first, second, add_special_tokens=True, max_length=max_length)
        if max_length is None:
            reference.no_truncation()
        else:
            reference.enable_truncation(max_length)
        theirs = reference.encode(first, second)
        assert (ours.ids, ours.offsets, ours.token_type_ids) == (theirs.ids, theirs.offsets, theirs.type_ids)
    reference.no_truncation()


# --- the other tokenizers: the property each design promises --------------------------------------------

@FAST
@given(text=any_text)
def test_char_tokenizer_offsets_are_each_character(text):
    tokenizer = CharTokenizer("abc é\n🎉")
    encoding = tokenizer.encode_plus(text)
    assert encoding.offsets == [(i, i + 1) for i in range(len(text))]
    assert encoding.ids == tokenizer.encode_ordinary(text)


@FAST
@given(text=any_text)
def test_word_tokenizer_offsets_cover_each_word(text):
    tokenizer = WordTokenizer()
    tokenizer.train(["the cat sat", "İstanbul straße ΟΔΟΣ"])
    encoding = tokenizer.encode_plus(text)
    assert encoding.ids == tokenizer.encode_ordinary(text)
    assert len(encoding.offsets) == len(tokenizer.split(text))
    for (start, end), word in zip(encoding.offsets, tokenizer.split(text)):
        # Lower-casing is done on the whole text ("Σ" at a word's end becomes "ς"), so compare by length.
        assert len(text[start:end].lower()) == len(word)
        assert text[start:end].lower() in (word, word.replace("ς", "σ"), word.replace("σ", "ς"))


def test_word_tokenizer_offsets_equal_hf_word_level():
    """Hugging Face `tokenizers` with a WordLevel model, the Lowercase normaliser and the same split regex."""
    from glassformer.tokenizers.words import WORD_PATTERN
    from tokenizers import Regex, models, normalizers, pre_tokenizers
    from tokenizers import Tokenizer as HFTokenizer

    tokenizer = WordTokenizer()
    tokenizer.train(["the cat sat on the mat, didn't it?", "İstanbul café"])
    reference = HFTokenizer(models.WordLevel({w: i for i, w in enumerate(tokenizer.vocab)}, unk_token="<unk>"))
    reference.normalizer = normalizers.Lowercase()
    reference.pre_tokenizer = pre_tokenizers.Split(Regex(WORD_PATTERN), behavior="removed", invert=True)
    for text in ["The CAT sat, didn't it?", "İstanbul  Café!", "  new words here... ", ""]:
        ours = tokenizer.encode_plus(text)
        theirs = reference.encode(text)
        assert (ours.ids, ours.offsets) == (theirs.ids, theirs.offsets)


@FAST
@given(text=any_text)
def test_char_bpe_offsets_cover_each_symbol(text):
    tokenizer = CharBPE()
    tokenizer.train("low,lowest,newer,wider 🎉 straße", 8)
    encoding = tokenizer.encode_plus(text)
    assert encoding.ids == tokenizer.encode_ordinary(text)
    symbols = [s for word in tokenizer.words(text) for s in tokenizer.segment(word)]
    for (start, end), symbol in zip(encoding.offsets, symbols, strict=True):
        assert text[start:end] == symbol.removesuffix("</w>")
