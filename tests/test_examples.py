"""The examples/ twins of the first article's Hugging Face and Gradio code run, and do what the article meant.

References: Gradio's own Label component (what the demo's output must satisfy), the saved model reloaded
by glassformer's loader, and the head view's embedded data.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest
import torch

from tests.pretrained.helpers import sentiment_dir

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def minilm_dir():
    """The cached MiniLM checkpoint the examples use in place of bert-base-uncased."""
    from glassformer.data import SourceError, fetch

    try:
        return fetch("minilm", quiet=True)
    except SourceError as exc:
        pytest.skip(f"MiniLM checkpoint not available: {exc}")


@pytest.mark.slow  # importing gradio takes half a minute on a busy 2-core machine
def test_gradio_demo_returns_what_gradios_label_shows(tmp_path, monkeypatch):
    gr = pytest.importorskip("gradio")
    sentiment_dir(tmp_path / "bert-finetuned")
    monkeypatch.chdir(tmp_path)
    demo = runpy.run_path(str(EXAMPLES / "gradio_demo.py"))  # builds the Interface; launching needs __main__
    scores = demo["classify"]("the movie was great")
    assert set(scores) == {"negative", "positive"} and sum(scores.values()) == pytest.approx(1.0)
    shown = gr.Label().postprocess(scores)
    assert shown.label == max(scores, key=scores.get)
    with pytest.raises(ValueError, match="expects one of"):  # why the article's `return pipe(text)` was changed
        gr.Label().postprocess(demo["pipe"]("the movie was great"))


def test_bertviz_example_writes_the_head_view(tmp_path, monkeypatch, minilm_dir):
    from glassformer.viz import embedded_data

    monkeypatch.chdir(tmp_path)
    namespace = runpy.run_path(str(EXAMPLES / "bertviz_head_view.py"))
    page = embedded_data((tmp_path / "head_view.html").read_text(encoding="utf-8"))
    assert page["views"][0]["query_tokens"][:3] == ["[CLS]", "the", "dog"]
    assert len(page["views"][0]["weights"]) == len(namespace["outputs"].attentions) == 6


@pytest.mark.slow
def test_finetune_example_trains_saves_and_reloads(tmp_path, monkeypatch, minilm_dir):
    from glassformer.tasks.pipeline import load_predictor

    monkeypatch.setattr(sys, "argv", ["finetune_sentiment.py"])
    example = runpy.run_path(str(EXAMPLES / "finetune_sentiment.py"))
    accuracy = example["main"](train_size=16, eval_size=8, out=str(tmp_path / "bert-finetuned"))
    assert 0.0 <= accuracy <= 1.0
    classifier = load_predictor(tmp_path / "bert-finetuned")
    assert classifier.label_names == ["negative", "positive"] and classifier.model.config.pooling == "cls"
    assert torch.isfinite(classifier.predict_proba(["A gorgeous film."])).all()
