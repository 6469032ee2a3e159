"""The shared API: one `encode` with a post-processor template, `encode_plus`, batches, calling a tokenizer
like Hugging Face's, tiktoken's two special-token knobs, and decoding that agrees with the exported
tokenizer.json. References: transformers' BertTokenizerFast / GPT2TokenizerFast, tiktoken, HF `tokenizers`."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glassformer.tokenizers import (
    ByteLevelBPE,
    CharBPE,
    CharTokenizer,
    SpecialTokenError,
    Template,
    Tokenizer,
    TokenizerFileError,
    WordTokenizer,
    load_tokenizer_json,
    save_tokenizer_json,
    special_token_policy,
)

from .strategies import any_text, old_unicode_text

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

TEXTS = ["Hello world, héllo!", "a", "", "Café 🎉 東京 don't",
         "A much longer sentence, with commas and more words."]
PAIRS = ["one", "two three", "four", "five, six!", "seven"]


@pytest.fixture()
def gpt2_pad(gpt2):
    """GPT-2 with <|endoftext|> as its pad token (a copy: the session fixture stays without one)."""
    tokenizer = copy.copy(gpt2)
    tokenizer.pad_token = "<|endoftext|>"
    return tokenizer


@pytest.fixture(scope="module")
def hf_gpt2_pad(gpt2_dir):
    from transformers import GPT2TokenizerFast

    tokenizer = GPT2TokenizerFast(vocab=str(gpt2_dir / "encoder.json"), merges=str(gpt2_dir / "vocab.bpe"))
    tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


# --- encode, the template, tokenize ----------------------------------------------------------------------

@pytest.mark.parametrize("pair", [None, "And a second text."])
def test_encode_adds_special_tokens_by_default_as_transformers_does(bert, hf_bert, pair):
    """Reference: BertTokenizerFast's encode and call (single and batch), whose add_special_tokens defaults to True."""
    texts = ["Tokenization is unbelievable!", "a", "", "Café 🎉 東京 don't"]
    for text in texts:
        assert bert.encode(text, pair) == hf_bert.encode(text, pair)
        assert bert.encode(text, pair, add_special_tokens=False) == hf_bert.encode(text, pair, add_special_tokens=False)
        ours, theirs = bert.encode_plus(text, pair), hf_bert(text, pair)
        assert (ours.ids, ours.token_type_ids) == (theirs["input_ids"], theirs["token_type_ids"])
    pairs = None if pair is None else [pair] * len(texts)
    assert bert.encode_batch(texts, pairs) == hf_bert(texts, pairs)["input_ids"]
    assert bert.encode_batch(texts, pairs, add_special_tokens=False) == \
        hf_bert(texts, pairs, add_special_tokens=False)["input_ids"]
    assert bert.tokenize(texts[0]) == hf_bert.tokenize(texts[0])  # transformers' tokenize() never adds [CLS]/[SEP]


@FAST
@given(text=old_unicode_text, max_length=st.integers(2, 12))
def test_truncation_keeps_room_for_the_template_and_counts_what_it_cut(bert, hf_bert, text, max_length):
    encoding = bert.encode_plus(text, add_special_tokens=True, max_length=max_length, allowed_special="all")
    assert encoding.ids == hf_bert(text, truncation=True, max_length=max_length)["input_ids"]
    full = len(hf_bert(text, add_special_tokens=False)["input_ids"])
    assert encoding.num_truncated == max(full - (max_length - 2), 0)
    assert bert.encode(text, add_special_tokens=True, max_length=max_length, allowed_special="all") == encoding.ids


def test_max_length_below_the_template_is_an_error(bert):
    with pytest.raises(ValueError, match="max_length=1 leaves no room beside 2 special tokens"):
        bert.encode("hi", add_special_tokens=True, max_length=1)


def test_a_template_on_byte_level_bpe_is_exported_as_template_processing(gpt2, tmp_path):
    """A BOS-style template on GPT-2: saved, reloaded, and read by Hugging Face `tokenizers` to the same ids."""
    from tokenizers import Tokenizer as HFTokenizer

    tokenizer = copy.copy(gpt2)
    tokenizer.post_processor = Template("<|endoftext|> $A", "<|endoftext|> $A <|endoftext|>:1 $B:1")
    directory = tokenizer.save(tmp_path / "tok")
    reference = HFTokenizer.from_file(str(directory / "tokenizer.json"))
    for loaded in (Tokenizer.load(directory), load_tokenizer_json(directory / "tokenizer.json")):
        assert loaded.post_processor == tokenizer.post_processor
        ours = loaded.encode_plus("Hello world", "again", add_special_tokens=True)
        theirs = reference.encode("Hello world", "again")
        assert (ours.ids, ours.token_type_ids, ours.offsets) == (theirs.ids, theirs.type_ids, theirs.offsets)
        assert loaded.encode("Hello world") == reference.encode("Hello world").ids  # the template by default
        assert loaded.encode("Hello world", add_special_tokens=False) == \
            reference.encode("Hello world", add_special_tokens=False).ids


def test_template_errors_name_the_problem(gpt2):
    tokenizer = copy.copy(gpt2)
    with pytest.raises(ValueError, match=r"uses '\[BOS\]', which is not a special token .*add_special_tokens"):
        tokenizer.post_processor = Template("[BOS] $A")
    with pytest.raises(ValueError, match=r"the single template must hold \$A once each, got '\$A \$A'"):
        Template("$A $A")
    with pytest.raises(ValueError, match="template item 'x:y' should be"):
        Template("x:y $A")


def test_saved_wordpiece_keeps_template_and_pad_token(bert, tmp_path):
    tokenizer = copy.copy(bert)
    tokenizer.post_processor = None
    loaded = Tokenizer.load(tokenizer.save(tmp_path / "plain"))
    assert loaded.post_processor is None and loaded.pad_token == "[PAD]"
    assert loaded.encode("hi") == loaded.encode("hi", add_special_tokens=True) == \
        bert.encode("hi", add_special_tokens=False)
    header = tmp_path / "plain" / "glassformer-tokenizer.txt"
    lines = [line for line in header.read_text().splitlines() if not line.startswith(("post_processor", "pad_token"))]
    header.write_text("\n".join(lines) + "\n")  # a file written before these keys existed
    assert Tokenizer.load(tmp_path / "plain").post_processor == Template.bert()


# --- calling a tokenizer like Hugging Face's -------------------------------------------------------------

CALLS = [
    {},
    {"padding": True},
    {"padding": "longest", "return_offsets_mapping": True},
    {"padding": "max_length", "max_length": 24},
    {"padding": "max_length", "max_length": 12, "truncation": True},
    {"truncation": True, "max_length": 5},
    {"truncation": "longest_first", "max_length": 7, "padding": True, "return_offsets_mapping": True},
    {"add_special_tokens": False, "padding": True},
    {"return_attention_mask": False},
    {"return_token_type_ids": True},
]


@pytest.mark.parametrize("kwargs", CALLS, ids=lambda kwargs: ",".join(f"{k}={v}" for k, v in kwargs.items()) or "plain")
def test_call_equals_transformers(bert, hf_bert, gpt2_pad, hf_gpt2_pad, kwargs):
    for ours, theirs in ((bert, hf_bert), (gpt2_pad, hf_gpt2_pad)):
        assert dict(ours(TEXTS, **kwargs)) == dict(theirs(TEXTS, **kwargs))
        assert dict(ours(TEXTS, PAIRS, **kwargs)) == dict(theirs(TEXTS, PAIRS, **kwargs))
        assert dict(ours(TEXTS[3], **kwargs)) == dict(theirs(TEXTS[3], **kwargs))


@pytest.mark.parametrize("single", [True, False])
def test_call_returns_tensors_like_transformers(bert, hf_bert, gpt2_pad, hf_gpt2_pad, single):
    for ours, theirs in ((bert, hf_bert), (gpt2_pad, hf_gpt2_pad)):
        args = (TEXTS[3], PAIRS[3]) if single else (TEXTS, PAIRS)
        kwargs = {"return_tensors": "pt", "return_offsets_mapping": True, "padding": not single}
        got, expected = ours(*args, **kwargs), theirs(*args, **kwargs)
        assert set(got) == set(expected)
        for key in got:
            assert got[key].dtype == expected[key].dtype and torch.equal(got[key], expected[key]), key
        assert torch.equal(got.input_ids, got["input_ids"])


def test_padding_without_a_pad_token_names_the_fix(gpt2):
    with pytest.raises(ValueError, match=r"ByteLevelBPE has no pad token.*tokenizer.pad_token = '<\|endoftext\|>'"):
        gpt2(["a", "b c"], padding=True)
    with pytest.raises(ValueError, match="rows of one length.*padding=True"):
        gpt2(["a", "b c"], return_tensors="pt")
    with pytest.raises(ValueError, match="truncation=True needs max_length"):
        gpt2(["a"], truncation=True)


# --- batches ---------------------------------------------------------------------------------------------

@FAST
@given(batch=st.lists(any_text, max_size=6))
def test_encode_and_decode_batch_equal_tiktoken(gpt2, tiktoken_gpt2, batch):
    ids = gpt2.encode_batch(batch)
    assert ids == tiktoken_gpt2.encode_ordinary_batch(batch)
    assert gpt2.decode_batch(ids) == tiktoken_gpt2.decode_batch(ids) == batch


def test_encode_batch_equals_hf_encode_batch(bert, brown, tmp_path):
    from tokenizers import Tokenizer as HFTokenizer

    reference = HFTokenizer.from_file(str(save_tokenizer_json(bert, tmp_path / "bert.json")))
    texts = [t[:2000] for t in brown[:20]]
    assert bert.encode_batch(texts) == [e.ids for e in reference.encode_batch(texts)]
    assert bert.encode_batch(texts, add_special_tokens=False) == \
        [e.ids for e in reference.encode_batch(texts, add_special_tokens=False)]
    pairs = list(zip(texts[::2], texts[1::2]))
    ours = bert.encode_batch(texts[::2], texts[1::2], add_special_tokens=True, max_length=64)
    reference.enable_truncation(64)
    assert ours == [e.ids for e in reference.encode_batch(pairs)]
    ids = [e.ids for e in reference.encode_batch(texts)]
    assert bert.decode_batch(ids, skip_special_tokens=True) == reference.decode_batch(ids)


def test_batch_inputs_are_checked(gpt2):
    with pytest.raises(TypeError, match="got a single str; wrap it in a list"):
        gpt2.encode_batch("hello")
    with pytest.raises(ValueError, match="got 2 texts but 1 pairs"):
        gpt2.encode_batch(["a", "b"], ["c"])
    with pytest.raises(TypeError, match="use decode\\(\\) for one"):
        gpt2.decode_batch([1, 2])


# --- special tokens: tiktoken's two knobs ----------------------------------------------------------------

@pytest.fixture(scope="module")
def fim_pair(gpt2_dir):
    """GPT-2 plus two FIM special tokens, ours and tiktoken's, as in tiktoken's test_special_token."""
    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks

    from glassformer.tokenizers import GPT2_PATTERN

    specials = {"<|endoftext|>": 50256, "<|fim_prefix|>": 50257, "<|fim_middle|>": 50258}
    ranks = data_gym_to_mergeable_bpe_ranks(str(gpt2_dir / "vocab.bpe"), str(gpt2_dir / "encoder.json"))
    reference = tiktoken.Encoding("gpt2-fim", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens=specials)
    ours = ByteLevelBPE.from_gpt2(gpt2_dir / "encoder.json", gpt2_dir / "vocab.bpe")
    ours.add_special_tokens(specials)
    return ours, reference


KNOBS = [{"disallowed_special": ()}, {"allowed_special": "all", "disallowed_special": ()},
         {"allowed_special": "all"}, {"allowed_special": {"<|fim_prefix|>"}, "disallowed_special": ()},
         {"allowed_special": {"<|endoftext|>"}, "disallowed_special": ()},
         {"allowed_special": {"<|fim_middle|>"}, "disallowed_special": ()},
         {"allowed_special": {"<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>"}}]


@pytest.mark.parametrize("knobs", KNOBS, ids=str)
def test_special_token_knobs_equal_tiktoken(fim_pair, knobs):
    ours, reference = fim_pair
    text = "<|endoftext|> hello <|fim_prefix|> there <|fim_middle|>"
    assert ours.encode(text, **knobs) == reference.encode(text, **knobs)


@pytest.mark.parametrize("knobs", [{}, {"disallowed_special": "all"}, {"disallowed_special": {"<|endoftext|>"}},
                                   {"disallowed_special": {"<|fim_prefix|>"}},
                                   {"allowed_special": {"<|endoftext|>"}}], ids=str)
def test_disallowed_special_raises_as_tiktoken(fim_pair, knobs):
    import tiktoken

    ours, reference = fim_pair
    text = "<|endoftext|> hello <|fim_prefix|>"
    with pytest.raises(tiktoken.DisallowedSpecialTokenError if hasattr(tiktoken, "DisallowedSpecialTokenError")
                       else ValueError):
        reference.encode(text, **knobs)
    with pytest.raises(SpecialTokenError, match="pass allowed_special=.* or disallowed_special=\\(\\)"):
        ours.encode(text, **knobs)


@FAST
@given(text=st.lists(st.one_of(any_text, st.just("<|endoftext|>")), max_size=4).map("".join))
def test_encode_ordinary_is_encode_with_nothing_disallowed(gpt2, tiktoken_gpt2, text):
    assert gpt2.encode_ordinary(text) == gpt2.encode(text, disallowed_special=()) == \
        tiktoken_gpt2.encode(text, disallowed_special=())


def test_special_token_policy_helper(gpt2, tiktoken_gpt2):
    text = "a<|endoftext|>b"
    assert gpt2.encode(text, **special_token_policy("allow")) == tiktoken_gpt2.encode(text, allowed_special="all")
    assert gpt2.encode(text, **special_token_policy("text")) == tiktoken_gpt2.encode_ordinary(text)
    with pytest.raises(SpecialTokenError, match=r"'<\|endoftext\|>' at position 1; pass allowed_special=") as caught:
        gpt2.encode(text, **special_token_policy("raise"))
    assert (caught.value.token, caught.value.position, caught.value.token_id) == ("<|endoftext|>", 1, 50256)
    hint = "use --special-tokens allow or --special-tokens text"
    with pytest.raises(SpecialTokenError, match=f"at position 1; {hint}$"):
        gpt2.encode(text, **special_token_policy("raise", hint=hint))
    with pytest.raises(ValueError, match="special-token policy 'keep'; expected one of raise, allow, text"):
        special_token_policy("keep")


# --- decode agrees with the exported tokenizer.json ------------------------------------------------------

def test_wordpiece_decode_equals_hf_on_the_issue_example(bert, hf_exported_bert):
    ids = bert.encode("John, isn't it?", add_special_tokens=False)
    assert bert.decode(ids) == hf_exported_bert.decode(ids) == "john, isn ' t it?"


@FAST
@given(text=any_text, skip=st.booleans())
def test_wordpiece_decode_equals_hf(bert, hf_exported_bert, text, skip):
    ids = bert.encode(text, add_special_tokens=True, allowed_special="all")
    assert bert.decode(ids, skip_special_tokens=skip) == hf_exported_bert.decode(ids, skip_special_tokens=skip)


@FAST
@given(ids=st.lists(st.integers(0, 30521), max_size=12), skip=st.booleans())
def test_wordpiece_decode_of_any_ids_equals_hf(bert, hf_exported_bert, ids, skip):
    assert bert.decode(ids, skip_special_tokens=skip) == hf_exported_bert.decode(ids, skip_special_tokens=skip)


@FAST
@given(ids=st.lists(st.integers(0, 50256), max_size=12), skip=st.booleans())
def test_byte_level_decode_of_any_ids_equals_hf(gpt2, hf_exported_gpt2, ids, skip):
    """Any ids, including ones that cut a character's bytes: U+FFFD where both put it."""
    assert gpt2.decode(ids, skip_special_tokens=skip) == hf_exported_gpt2.decode(ids, skip_special_tokens=skip)


def test_decode_without_cleanup_is_exported_as_such(bert, tmp_path):
    from tokenizers import Tokenizer as HFTokenizer

    tokenizer = copy.copy(bert)
    tokenizer.cleanup = False
    reference = HFTokenizer.from_file(str(save_tokenizer_json(tokenizer, tmp_path / "t.json")))
    ids = bert.encode("John, isn't it?", add_special_tokens=False)
    assert tokenizer.decode(ids) == reference.decode(ids) == "john , isn ' t it ?"
    assert load_tokenizer_json(tmp_path / "t.json").cleanup is False


@pytest.fixture(scope="module")
def hf_exported_bert(bert, tmp_path_factory):
    from tokenizers import Tokenizer as HFTokenizer

    return HFTokenizer.from_file(str(save_tokenizer_json(bert, tmp_path_factory.mktemp("b") / "bert.json")))


@pytest.fixture(scope="module")
def hf_exported_gpt2(gpt2, tmp_path_factory):
    from tokenizers import Tokenizer as HFTokenizer

    return HFTokenizer.from_file(str(save_tokenizer_json(gpt2, tmp_path_factory.mktemp("g") / "gpt2.json")))


def test_tokenizer_json_with_a_sequence_post_processor(gpt2, tmp_path):
    """Hugging Face's Sequence[ByteLevel, TemplateProcessing] (as in Llama 3's files) imports as its template."""
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import processors

    path = save_tokenizer_json(gpt2, tmp_path / "plain.json")
    reference = HFTokenizer.from_file(str(path))
    reference.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|endoftext|> $A", special_tokens=[("<|endoftext|>", 50256)])])
    reference.save(str(tmp_path / "sequence.json"))
    loaded = load_tokenizer_json(tmp_path / "sequence.json")
    assert loaded.encode("Hello there", add_special_tokens=True) == reference.encode("Hello there").ids
    assert loaded.encode("a", "b", add_special_tokens=True) == reference.encode("a", "b").ids


def test_unsupported_post_processor_in_tokenizer_json_is_named(bert, tmp_path):
    import json

    path = save_tokenizer_json(bert, tmp_path / "t.json")
    document = json.loads(path.read_text())
    document["post_processor"] = {"type": "RobertaProcessing"}
    path.write_text(json.dumps(document))
    with pytest.raises(TokenizerFileError, match="post-processor 'RobertaProcessing' is not supported"):
        load_tokenizer_json(path)


# --- every tokenizer has the same API --------------------------------------------------------------------

def _small_tokenizers() -> list[Tokenizer]:
    words = WordTokenizer()
    words.train("the cat sat on the mat")
    chars = CharTokenizer("the cat sat")
    bpe = CharBPE()
    bpe.train("low,lowest,newer,wider", 5)
    return [words, chars, bpe]


@pytest.mark.parametrize("tokenizer", _small_tokenizers(), ids=lambda t: type(t).__name__)
def test_small_tokenizers_share_the_api(tokenizer):
    texts = ["the cat", "lowest newer", ""]
    assert tokenizer.encode_batch(texts) == [tokenizer.encode(t) for t in texts]
    decoded = [tokenizer.decode(tokenizer.encode(t)) for t in texts]
    assert tokenizer.decode_batch(tokenizer.encode_batch(texts)) == decoded
    encoding = tokenizer.encode_plus("the cat sat", max_length=3)
    assert encoding.ids == tokenizer.encode("the cat sat")[:3]
    assert encoding.num_truncated == len(tokenizer.encode("the cat sat")) - len(encoding.ids)
    tokenizer.pad_token = "<unk>"
    batch = tokenizer(texts, padding=True)
    unpadded = [row[:sum(mask)] for row, mask in zip(batch.input_ids, batch.attention_mask)]
    assert unpadded == tokenizer.encode_batch(texts)
    tokenizer.pad_token = None


def test_training_drops_a_pad_token_and_template_it_no_longer_has():
    tokenizer = ByteLevelBPE()
    tokenizer.add_special_tokens({"<s>": 256})
    tokenizer.pad_token = "<s>"
    tokenizer.post_processor = Template("<s> $A")
    tokenizer.train(["hello hello world"] * 3, 260, special_tokens=["<|endoftext|>"])
    assert tokenizer.pad_token is None and tokenizer.post_processor is None
    tokenizer.train(["hello hello world"] * 3, 260, special_tokens=["<s>"])
    tokenizer.pad_token = "<s>"
    tokenizer.post_processor = Template("<s> $A")
    tokenizer.train(["hello world"] * 3, 262, special_tokens=["<s>"])
    assert tokenizer.pad_token == "<s>" and tokenizer.encode("hello", add_special_tokens=True)[0] == 261
