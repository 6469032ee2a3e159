"""Tiny models of each family, fine-tuned for a few steps and saved as ``glassformer train`` saves them.

A few optimizer steps move every weight away from its initial value (biases no longer zero, LayerNorms no
longer identity), so an export that dropped or misplaced a tensor would change the predictions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from glassformer.models import (
    DecoderLM,
    DecoderLMConfig,
    EncoderClassifier,
    EncoderConfig,
    Seq2SeqConfig,
    Seq2SeqTransformer,
    VisionTransformer,
    ViTConfig,
)
from glassformer.tokenizers import ByteLevelBPE, CharTokenizer, WordPiece
from glassformer.training.saved import save_model

TEXTS = ["the movie was great", "a bad plot, badly acted", "good acting and a fine story!",
         "the worst film of the year", "I loved it", "not good at all"]
LETTERS = "abcdefghijklmnopqrstuvwxyz"
WORDS = ["the", "movie", "good", "bad", "great", "plot", "film", "##ly", "##ed", "loved", "worst", "story"]


def fine_tune(model: torch.nn.Module, loss: Callable[[], torch.Tensor], steps: int = 3) -> torch.nn.Module:
    """A few AdamW steps on `loss`, then eval mode."""
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
    return model.eval()


def wordpiece() -> WordPiece:
    """A lowercasing WordPiece with BERT's special tokens, every letter (alone and as ##piece) and a few words."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *LETTERS, *(f"##{c}" for c in LETTERS), ",", "!", ".",
             *WORDS]
    return WordPiece(vocab)


def sentiment_dir(path: Path, pooling: str = "cls", seed: int = 0) -> Path:
    """A saved two-label sentiment classifier (BERT-style, post-norm) with its WordPiece."""
    tokenizer = wordpiece()
    torch.manual_seed(seed)
    model = EncoderClassifier(EncoderConfig(vocab_size=tokenizer.vocab_size, max_position=64, d_model=32, n_heads=4,
                                            n_layers=2, d_ff=64, pooling=pooling, use_pooler=pooling == "cls"))
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    labels = torch.tensor([1, 0, 1, 0, 1, 0])
    fine_tune(model, lambda: model(batch["input_ids"], batch["attention_mask"], labels=labels).loss)
    return save_model(path, model, task="sentiment", label_names=["negative", "positive"], tokenizer=tokenizer,
                      extra={"max_length": 48})


def lm_tokenizer(kind: str) -> CharTokenizer | ByteLevelBPE:
    """The language-model task's two vocabularies: characters, or a byte-level BPE, each with <|endoftext|>."""
    if kind == "char":
        tokenizer = CharTokenizer()
        tokenizer.train(TEXTS)
        return tokenizer
    tokenizer = ByteLevelBPE("gpt2")
    tokenizer.train(TEXTS * 4, 300, special_tokens=["<|endoftext|>"], progress=False)
    return tokenizer


def lm_dir(path: Path, kind: str = "char", seed: int = 0) -> Path:
    """A saved GPT-style language model with a character or byte-level BPE vocabulary."""
    tokenizer = lm_tokenizer(kind)
    torch.manual_seed(seed)
    model = DecoderLM(DecoderLMConfig(vocab_size=tokenizer.vocab_size, max_position=64, d_model=32, n_heads=4,
                                      n_layers=2, d_ff=64))
    ids = torch.tensor([tokenizer.encode_ordinary(TEXTS[0])[:16]])
    fine_tune(model, lambda: model(ids, labels=ids).loss)
    return save_model(path, model, task="lm", tokenizer=tokenizer, extra={"model": "transformer"})


def vit_dir(path: Path, seed: int = 0) -> Path:
    """A saved grey-image ViT classifier with named labels, as the ViT task saves one."""
    torch.manual_seed(seed)
    model = VisionTransformer(ViTConfig(image_size=28, patch_size=7, in_channels=1, d_model=32, n_heads=4, n_layers=2,
                                        d_ff=64, num_classes=3, layer_norm_eps=1e-6))
    images, labels = torch.randn(6, 1, 28, 28), torch.tensor([0, 1, 2, 0, 1, 2])
    fine_tune(model, lambda: model(images, labels=labels).loss)
    from glassformer.tasks.vit import MEAN, STD

    return save_model(path, model, task="vit", label_names=["shirt", "shoe", "bag"],
                      extra={"preset": {}, "image_mean": [MEAN], "image_std": [STD]})


def translate_dir(path: Path, norm_first: bool = True) -> Path:
    """A saved translation model (the task's presets are pre-norm) with a byte-level BPE."""
    tokenizer = ByteLevelBPE("gpt2")
    tokenizer.train(TEXTS * 4, 300, special_tokens=["<pad>", "<s>", "</s>"], progress=False)
    torch.manual_seed(0)
    config = Seq2SeqConfig(vocab_size=tokenizer.vocab_size, max_position=64, d_model=32, n_heads=4,
                           n_encoder_layers=1, n_decoder_layers=1, d_ff=64, norm_first=norm_first,
                           pad_token_id=tokenizer.special_tokens["<pad>"], bos_token_id=tokenizer.special_tokens["<s>"],
                           eos_token_id=tokenizer.special_tokens["</s>"])
    return save_model(path, Seq2SeqTransformer(config).eval(), task="translate", tokenizer=tokenizer,
                      extra={"max_length": 32})

