"""pipeline() under Hugging Face's task names on glassformer's own saved models: transformers' result shapes.

Reference: the shapes transformers' pipelines return (documented in their __call__ docstrings): one text or
image alone gives a list, a list of inputs a list per input where transformers nests, top_k ranks labels.
The numbers come from glassformer's own predictors, which tests/tasks check for accuracy.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glassformer import pipeline
from glassformer.errors import UsageError
from tests.pretrained.helpers import lm_dir, sentiment_dir, translate_dir, vit_dir


def test_text_classification_shapes_and_top_k(tmp_path):
    directory = sentiment_dir(tmp_path / "sentiment")
    classify = pipeline("text-classification", model=directory)
    probs = pipeline("sentiment", model=directory).predict_proba(["the movie was great", "bad plot"])
    one = classify("the movie was great")
    assert len(one) == 1 and one[0]["score"] == pytest.approx(float(probs[0].max()))
    assert [r["label"] for r in classify(["the movie was great", "bad plot"])] == \
        [["negative", "positive"][int(i)] for i in probs.argmax(-1)]
    ranked = classify("the movie was great", top_k=None)
    assert [r["score"] for r in ranked] == pytest.approx(sorted((float(p) for p in probs[0]), reverse=True), abs=1e-6)
    assert [len(r) for r in classify(["a", "b", "c"], top_k=1)] == [1, 1, 1]
    assert len(pipeline("sentiment-analysis", model=directory, top_k=2)("good")) == 2


def test_translation_and_generation_shapes(tmp_path):
    translate = pipeline("translation", model=translate_dir(tmp_path / "translate", norm_first=True))
    assert [set(r) for r in translate(["the film", "a plot"], num_beams=1)] == [{"translation_text"}] * 2
    assert len(translate("the film", num_beams=1)) == 1
    generate = pipeline("text-generation", model=lm_dir(tmp_path / "lm"))
    one = generate("the ", max_new_tokens=5, do_sample=False)
    assert len(one) == 1 and one[0]["generated_text"].startswith("the ")
    again = generate(["the ", "a "], max_new_tokens=5, do_sample=True, seed=0, return_full_text=False)
    assert [len(r) for r in again] == [1, 1] and not again[1][0]["generated_text"].startswith("a ")


def test_image_classification_shapes_on_grey_arrays(tmp_path):
    classify = pipeline("image-classification", model=vit_dir(tmp_path / "vit"))
    images = [np.random.default_rng(i).integers(0, 256, (28, 28), dtype=np.uint8) for i in range(2)]
    one = classify(images[0])
    assert [r["label"] for r in one] == sorted(["shirt", "shoe", "bag"], key=lambda n: -next(
        r["score"] for r in one if r["label"] == n))
    assert len(one) == 3 and sum(r["score"] for r in one) == pytest.approx(1.0)
    assert [len(r) for r in classify(images, top_k=1)] == [1, 1]
    probs = pipeline("vit", model=tmp_path / "vit").predict_proba(np.stack(images))
    assert one[0]["score"] == pytest.approx(float(probs[0].max()), abs=1e-6)


def test_feature_extraction_reads_a_classifiers_backbone(tmp_path):
    directory = sentiment_dir(tmp_path / "sentiment")
    vectors = pipeline("feature-extraction", model=directory)("the movie", return_tensors=True)
    assert vectors.shape == (1, 4, 32)  # [CLS] the movie [SEP]
    classifier = pipeline("sentiment", model=directory)
    ids = torch.tensor([classifier.tokenizer.encode("the movie", add_special_tokens=True)])
    with torch.no_grad():
        torch.testing.assert_close(vectors, classifier.model.encoder(ids).last_hidden_state)


def test_unknown_task_names_both_sets():
    with pytest.raises(UsageError, match="glassformer's tasks: .*sentiment.*Hugging Face's: text-classification"):
        pipeline("summarization", model="x")
