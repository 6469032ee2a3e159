"""One road in the studio: each tab's prediction and its explanation (or walkthrough) feed the model identical tensors.

Reference: a forward hook on the model's embedding layer records every input row the model reads while a
handler runs; whatever an explanation adds may only be its baseline ([PAD] ids, a black image). Tiny
saved models (tests/pretrained/helpers.py), a ViT that averages each image with its mirror, and the
Fashion-MNIST test images the Vision tab reads.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import pytest
import torch

gr = pytest.importorskip("gradio", reason="gradio is not installed (pip install gradio)")

from glassformer.models import VisionTransformer, ViTConfig  # noqa: E402
from glassformer.studio import default_models  # noqa: E402
from glassformer.studio.baseline import MarkovBaseline  # noqa: E402
from glassformer.studio.common import fashion_test_images  # noqa: E402
from glassformer.studio.tabs import generate  # noqa: E402
from glassformer.studio.tabs import sentiment as sentiment_tab  # noqa: E402
from glassformer.studio.tabs import translate as translate_tab  # noqa: E402
from glassformer.studio.tabs import vision as vision_tab  # noqa: E402
from glassformer.studio.tabs import walkthrough as walk_tab  # noqa: E402
from glassformer.training import save_model  # noqa: E402
from tests.pretrained.helpers import lm_dir, sentiment_dir, translate_dir  # noqa: E402


@contextmanager
def reading(embedding: torch.nn.Module) -> Iterator[set[tuple]]:
    """The rows (ids, or pixels) `embedding` reads inside the block."""
    seen: set[tuple] = set()
    handle = embedding.register_forward_hook(
        lambda module, inputs, out: seen.update(tuple(row.flatten().tolist()) for row in inputs[0].detach().cpu()))
    try:
        yield seen
    finally:
        handle.remove()


@pytest.fixture(scope="module")
def models(tmp_path_factory, shakespeare_slice):
    root = tmp_path_factory.mktemp("one-road")
    torch.manual_seed(0)
    vit = VisionTransformer(ViTConfig(image_size=28, patch_size=14, d_model=16, n_heads=2, n_layers=1, d_ff=32,
                                      num_classes=10))
    vision = save_model(root / "vit", vit, task="vit", label_names=[str(i) for i in range(10)],
                        extra={"preset": {"mirror_average": True}})
    studio = default_models(sentiment_dir(root / "sentiment"), translate_dir=translate_dir(root / "mt"),
                            vision_dir=vision, generate_dir=lm_dir(root / "lm"))
    studio.markov = MarkovBaseline(studio.generate, order=2, works=shakespeare_slice, chars_per_work=200)
    return studio


def test_sentiment_classify_and_explain_read_the_same_ids(models):
    classifier = models.sentiment
    embedding = classifier.model.encoder.embeddings.word_embeddings
    text = "the movie was great"
    with reading(embedding) as shown:
        sentiment_tab.classify(models, text)
    with reading(embedding) as explained:
        page = sentiment_tab.explain(models, text)
    with reading(embedding) as walked:
        walk_tab.walk_sentiment(models, text)
    assert "gf-explain" in page
    ids = tuple(classifier.tokenizer.encode(text, add_special_tokens=True))
    baseline = tuple(i if i in classifier.tokenizer.special_tokens.values() else 0 for i in ids)
    assert shown == walked == {ids} and explained == {ids, baseline}


def test_vision_see_and_explain_read_both_views(models):
    from glassformer.tasks.vit import MEAN, STD

    classifier = models.vision.get()
    with reading(classifier.model.patch_embedding) as shown:
        vision_tab.classify_image(models, 3)
    with reading(classifier.model.patch_embedding) as explained:
        page = vision_tab.explain(models, 3)
    pixels = (torch.as_tensor(fashion_test_images()[0][3]).float() / 255 - MEAN) / STD
    image, mirror = tuple(pixels.flatten().tolist()), tuple(pixels.flip(-1).flatten().tolist())
    black = tuple(torch.full((28 * 28,), (0.0 - MEAN) / STD).tolist())
    assert shown == {image, mirror}
    assert explained == {image, mirror, black}
    # Every method's card draws the mirror's patches beside the image's.
    assert page.count("per patch (mirrored view)") > 0
    assert 2 * page.count("per patch (mirrored view)") == page.count(" per patch")


def test_translate_and_its_explanation_read_the_same_source(models):
    translator = models.translate.get()
    text = "the movie was great"
    with reading(translator.model.embedding) as shown:
        translate_tab.translate(models, text)
    with reading(translator.model.embedding) as explained:
        translate_tab.explain_step(models, text)
    with reading(translator.model.embedding) as walked:
        walk_tab.walk_translation(models, text)
    source = tuple(translator.tokenizer.encode_ordinary(text) + [translator.model.config.eos_token_id])
    assert source in shown and source in explained and source in walked


def test_generate_and_its_walkthrough_read_the_prompt_after_the_end_token(models):
    generator = models.generate.get()
    prompt = "the film"
    with reading(generator.model.token_embedding) as shown:
        generate.generate(models.generate, models.markov, prompt, 3, 0.0)
    with reading(generator.model.token_embedding) as walked:
        walk_tab.walk_lm(models, prompt)
    ids = tuple([generator.tokenizer.special_tokens["<|endoftext|>"]] + generator.tokenizer.encode_ordinary(prompt))
    assert ids in shown and ids in walked
