"""Real MiniLM weights through glassformer's own modules, against Hugging Face transformers' BertModel
and sentence-transformers; BERT round trip through save_pretrained; the attention-weights switch."""

from __future__ import annotations

import pytest
import torch

from glassformer.nn import MultiHeadAttention

SENTENCES = [
    "A man is playing a guitar.",
    "The quick brown fox jumps over the lazy dog near the riverbank at dawn.",
    "Transformers read every token at once.",
    "Hi",
    "Ünïcode àccents, numbers like 3.14159 and punctuation!?",
]


@pytest.fixture(scope="module")
def batch(hf_bert_tokenizer):
    """A padded batch of sentences of different lengths, tokenized by Hugging Face (reference ids)."""
    return hf_bert_tokenizer(SENTENCES, padding=True, return_tensors="pt")


@pytest.fixture(scope="module")
def both(minilm, hf_bert, batch):
    """Outputs of glassformer and of transformers' BertModel on the batch, with all intermediates."""
    with torch.inference_mode():
        ours = minilm.model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"],
                            output_hidden_states=True, output_attentions=True)
        ref = hf_bert(**batch, output_hidden_states=True, output_attentions=True)
    return ours, ref


def _real(batch) -> torch.Tensor:
    return batch["attention_mask"].bool()


def test_minilm_last_hidden_state_matches_hf(both, batch):
    """Reference: transformers BertModel. Compared at real tokens: the states at padding positions
    are never used, and there HF's own eager and sdpa paths already differ by ~1e-4."""
    ours, ref = both
    real = _real(batch)
    assert ours.last_hidden_state.shape == ref.last_hidden_state.shape
    assert (ours.last_hidden_state - ref.last_hidden_state)[real].abs().max() <= 1e-5


def test_minilm_every_hidden_state_matches_hf(both, batch):
    """Reference: transformers BertModel hidden_states (embeddings + each of the 6 layers)."""
    ours, ref = both
    real = _real(batch)
    assert len(ours.hidden_states) == len(ref.hidden_states) == 7
    for layer, (a, b) in enumerate(zip(ours.hidden_states, ref.hidden_states)):
        assert (a - b)[real].abs().max() <= 1e-5, f"hidden state {layer}"


def test_minilm_every_attention_map_matches_hf(both, batch):
    """Reference: transformers BertModel (eager) attentions, every head and key, for every real query
    token (query rows at padding positions inherit the padding states' ~1e-4 spread, see above)."""
    ours, ref = both
    real = _real(batch)  # (B, T): which query rows are real tokens
    assert len(ours.attentions) == len(ref.attentions) == 6
    for layer, (a, b) in enumerate(zip(ours.attentions, ref.attentions)):
        assert a.shape == b.shape == (len(SENTENCES), 12, batch["input_ids"].shape[1], batch["input_ids"].shape[1])
        diff = (a - b).abs().permute(0, 2, 1, 3)  # (B, T_q, H, T_k)
        assert diff[real].max() <= 1e-5, f"attention map {layer}"
        padding_keys = ~real[:, None, None, :].expand_as(a)
        assert torch.all(a[padding_keys] == 0), f"attention to padding in layer {layer}"


def test_minilm_fast_path_matches_hf(minilm, hf_bert, batch):
    """Reference: transformers BertModel. Without attentions requested the model runs its fast path
    (stacked QKV projection, oneDNN linears, fused SDPA)."""
    real = _real(batch)
    with torch.inference_mode():
        ours = minilm.model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        ref = hf_bert(**batch)
    assert ours.attentions is None
    assert (ours.last_hidden_state - ref.last_hidden_state)[real].abs().max() <= 1e-5


def test_minilm_pooler_matches_hf(both):
    """Reference: transformers BertModel pooler_output (tanh(W h_CLS + b))."""
    ours, ref = both
    assert (ours.pooled - ref.pooler_output).abs().max() <= 1e-5


def test_wordpiece_gives_the_reference_ids(minilm, batch):
    """Reference: Hugging Face BertTokenizerFast on the same vocab.txt."""
    from glassformer.pretrained.api import batch_encode

    ids, mask = batch_encode(minilm.tokenizer, SENTENCES, 256)
    assert torch.equal(ids, batch["input_ids"])
    assert torch.equal(mask, batch["attention_mask"])


def test_attention_weights_switch_to_the_explicit_path_and_back(minilm, batch, monkeypatch):
    """Asking for attentions runs the explicit softmax path (no SDPA call) and returns the maps;
    the next call without them is back on the fused path and gives the same hidden states."""
    import torch.nn.functional as F

    calls = []
    real_sdpa = F.scaled_dot_product_attention

    def counting_sdpa(*args, **kwargs):
        calls.append(1)
        return real_sdpa(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", counting_sdpa)
    model = minilm.model
    ids, mask = batch["input_ids"], batch["attention_mask"]
    with torch.inference_mode():
        explicit = model(ids, mask, output_attentions=True)
        assert calls == [] and len(explicit.attentions) == 6
        fused = model(ids, mask)
    assert len(calls) == 6 and fused.attentions is None
    assert all(m.fused for m in model.modules() if isinstance(m, MultiHeadAttention))
    real = mask.bool()
    assert (explicit.last_hidden_state - fused.last_hidden_state)[real].abs().max() <= 1e-5


@pytest.mark.slow
def test_sentence_embeddings_match_sentence_transformers(minilm, minilm_dir, monkeypatch):
    """Reference: sentence-transformers SentenceTransformer(dir).encode(normalize_embeddings=True),
    including a text of ~600 tokens that both must truncate at max_seq_length=256. Ours computes each
    batch's real tokens only (nn.packed): the batches of 4 hold sentences of different lengths."""
    st = pytest.importorskip("sentence_transformers")
    from glassformer.nn import packed
    from glassformer.pretrained import SentenceEncoder

    batches = []
    monkeypatch.setattr(packed, "encode", lambda stack, x, p, _encode=packed.encode, **kwargs:
                        batches.append(p.tokens) or _encode(stack, x, p, **kwargs))

    long_text = " ".join(f"token{i} is part of a very long document about checkpoints." for i in range(60))
    texts = SENTENCES + [long_text]
    encoder = SentenceEncoder(minilm.model, minilm.tokenizer, minilm.sentence)
    assert encoder.config.max_seq_length == 256
    assert len(minilm.tokenizer.encode(long_text)) > 256
    ours = encoder.encode(texts, batch_size=4)
    assert len(batches) == -(-len(texts) // 4)  # every batch packed
    reference = st.SentenceTransformer(str(minilm_dir), device="cpu")
    ref = torch.as_tensor(reference.encode(texts, normalize_embeddings=True))
    cosine = torch.nn.functional.cosine_similarity(ours, ref, dim=-1)
    assert cosine.min() >= 0.99999, cosine
    assert torch.allclose(ours.norm(dim=-1), torch.ones(len(texts)), atol=1e-5)


def test_int8_embeddings_stay_close_to_fp32(minilm_dir, minilm):
    """int8 dynamic quantisation of every Linear: sentence vectors keep cosine >= 0.99 with fp32
    (fp32 is itself checked against sentence-transformers above)."""
    from glassformer.pretrained import Int8Linear, SentenceEncoder

    fp32 = SentenceEncoder(minilm.model, minilm.tokenizer, minilm.sentence)
    int8 = SentenceEncoder.from_pretrained(str(minilm_dir), precision="int8")
    assert sum(isinstance(m, Int8Linear) for m in int8.model.modules()) == 6 * 6 + 1
    cosine = torch.nn.functional.cosine_similarity(fp32.encode(SENTENCES), int8.encode(SENTENCES), dim=-1)
    assert cosine.min() >= 0.99, cosine


def test_bert_round_trip_through_hf(tmp_path):
    """glassformer encoder → save_pretrained → transformers BertModel loads it → same hidden states."""
    transformers = pytest.importorskip("transformers")
    from glassformer.models.encoder import EncoderConfig, TransformerEncoderModel
    from glassformer.pretrained import from_pretrained, save_pretrained

    torch.manual_seed(0)
    model = TransformerEncoderModel(EncoderConfig.preset("tiny")).eval()
    save_pretrained(model, tmp_path)
    hf = transformers.BertModel.from_pretrained(str(tmp_path)).eval()
    ids = torch.randint(1, 1000, (3, 12))
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    real = mask.bool()
    with torch.inference_mode():
        ours = model(ids, mask)
        ref = hf(input_ids=ids, attention_mask=mask)
        again = from_pretrained(tmp_path, tokenizer=False).model(ids, mask)
    assert (ours.last_hidden_state - ref.last_hidden_state)[real].abs().max() <= 1e-5
    assert (ours.pooled - ref.pooler_output).abs().max() <= 1e-5
    assert (again.last_hidden_state - ref.last_hidden_state)[real].abs().max() <= 1e-5


def test_minilm_round_trip_with_tokenizer(minilm, tmp_path):
    """glassformer MiniLM + WordPiece → save_pretrained → transformers AutoTokenizer + BertModel → same
    ids and hidden states as glassformer."""
    transformers = pytest.importorskip("transformers")
    from glassformer.pretrained import save_pretrained
    from glassformer.pretrained.api import batch_encode

    save_pretrained(minilm.model, tmp_path, tokenizer=minilm.tokenizer)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    hf = transformers.BertModel.from_pretrained(str(tmp_path)).eval()
    ids, mask = batch_encode(minilm.tokenizer, SENTENCES, 256)
    theirs = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    assert torch.equal(theirs["input_ids"], ids)
    with torch.inference_mode():
        ours = minilm.model(ids, mask).last_hidden_state
        ref = hf(**theirs).last_hidden_state
    assert (ours - ref)[mask.bool()].abs().max() <= 1e-5
