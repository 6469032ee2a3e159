"""Tiny models of each family with every parameter random and distinct, saved as ``glassformer train`` saves them.

Freshly built models have zero biases and identity LayerNorms, so an export or import that dropped or swapped one
of them would still give the same logits. :func:`randomise` fills every bias, LayerNorm scale and shift and every
table with its own seeded values first, and :func:`broken_mapping` breaks one family's table on purpose so a test
can prove that its parity check sees the difference.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Callable

import pytest
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
from glassformer.pretrained.mapping import Rule, Table
from glassformer.tokenizers import ByteLevelBPE, CharTokenizer, WordPiece
from glassformer.training.saved import save_model

TEXTS = ["the movie was great", "a bad plot, badly acted", "good acting and a fine story!",
         "the worst film of the year", "I loved it", "not good at all"]
LETTERS = "abcdefghijklmnopqrstuvwxyz"
WORDS = ["the", "movie", "good", "bad", "great", "plot", "film", "##ly", "##ed", "loved", "worst", "story"]


def randomise(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Every trainable parameter drawn afresh: LayerNorm scales around 1, other vectors around 0, matrices ~1/√fan-in.

    Frozen parameters (Marian's sinusoid tables) are left alone: they are not weights a mapping carries.
    """
    generator = torch.Generator().manual_seed(seed)
    norms = {f"{name}.weight" for name, module in model.named_modules() if isinstance(module, torch.nn.LayerNorm)}
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if not parameter.requires_grad:
                continue
            noise = torch.randn(parameter.shape, generator=generator)
            if name in norms:
                parameter.copy_(1 + 0.2 * noise)
            elif parameter.dim() == 1:
                parameter.copy_(0.2 * noise)
            else:
                parameter.copy_(noise / parameter[0].numel() ** 0.5)
    return model


def broken_mapping(monkeypatch: pytest.MonkeyPatch, family: ModuleType, *, drop: str = "",
                   swap: tuple[str, str] = ("", "")) -> None:
    """Make `family`'s name table lose tensor `drop` (zeros both ways) or exchange two of ours, as a mapping bug would."""
    real = family.table

    def table(model: torch.nn.Module) -> Table:
        rules = real(model).rules
        names = {rule.ours: rule for rule in rules}
        assert drop in names or not drop, f"{drop} is not in the {family.__name__} table"
        exchanged = dict(zip(swap, reversed(swap))) if all(swap) else {}
        out = []
        for rule in rules:
            if rule.ours == drop:
                rule = Rule(rule.ours, rule.theirs, torch.zeros_like, torch.zeros_like, "dropped")
            elif rule.ours in exchanged:
                rule = Rule(exchanged[rule.ours], rule.theirs, rule.load, rule.save, "swapped")
            out.append(rule)
        return Table(out, real(model).ignore, real(model).tied)

    monkeypatch.setattr(family, "table", table)


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
    randomise(model, seed)
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
    randomise(model, seed)
    ids = torch.tensor([tokenizer.encode_ordinary(TEXTS[0])[:16]])
    fine_tune(model, lambda: model(ids, labels=ids).loss)
    return save_model(path, model, task="lm", tokenizer=tokenizer, extra={"model": "transformer"})


def vit_dir(path: Path, seed: int = 0) -> Path:
    """A saved grey-image ViT classifier with named labels, as the ViT task saves one."""
    torch.manual_seed(seed)
    model = VisionTransformer(ViTConfig(image_size=28, patch_size=7, in_channels=1, d_model=32, n_heads=4, n_layers=2,
                                        d_ff=64, num_classes=3, layer_norm_eps=1e-6))
    randomise(model, seed)
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
    return save_model(path, randomise(Seq2SeqTransformer(config)).eval(), task="translate", tokenizer=tokenizer,
                      extra={"max_length": 32})

