"""Small random models and their attention, shared by the viz tests (fast: a few milliseconds each)."""

from __future__ import annotations

import torch

from glassformer.models import EncoderClassifier, EncoderConfig, Seq2SeqConfig, Seq2SeqTransformer
from glassformer.viz import AttentionMaps


def tiny_encoder(seed: int = 0, vocab_size: int = 64, max_position: int = 128) -> EncoderClassifier:
    torch.manual_seed(seed)
    config = EncoderConfig(vocab_size=vocab_size, max_position=max_position, d_model=16, n_heads=2, n_layers=2,
                           d_ff=32, dropout=0.0, attn_dropout=0.0, num_labels=2)
    return EncoderClassifier(config).eval()


def encoder_attention(n_tokens: int = 7, seed: int = 0) -> tuple[tuple[torch.Tensor, ...], list[str]]:
    """The attention tensors of a random 2-layer, 2-head encoder on `n_tokens` tokens, and token labels."""
    model = tiny_encoder(seed)
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 64, (1, n_tokens), generator=generator)
    # Scale the embeddings up so the attention is peaked rather than nearly uniform.
    with torch.no_grad():
        model.encoder.embeddings.word_embeddings.weight.mul_(40)
        out = model(ids, output_attentions=True)
    tokens = [f"tok{i}" for i in range(n_tokens)]
    return out.attentions, tokens


def encoder_maps(n_tokens: int = 7, seed: int = 0) -> AttentionMaps:
    attentions, tokens = encoder_attention(n_tokens, seed)
    return AttentionMaps.from_attentions(attentions, tokens, name="encoder self-attention")


def tiny_seq2seq(seed: int = 0) -> Seq2SeqTransformer:
    torch.manual_seed(seed)
    return Seq2SeqTransformer(Seq2SeqConfig.preset("tiny", dropout=0.0)).eval()
