"""One loading road: ``Predictor.load(dir)``, ``load_predictor(dir)``, ``pipeline(task, model=dir)`` and
``Predictor.from_loaded(from_pretrained(dir))`` give the same predictor, deciding kernels and precision alike.

References: the weights as ``load_saved`` reads them from the directory, independently of every road; the
classifier's probabilities recomputed by hand from those weights; a Hugging Face export of the same model,
which ``Predictor.load`` now reads too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from glassformer.errors import WrongModelError
from glassformer.nn.attention import MultiHeadAttention
from glassformer.pretrained import export, from_pretrained
from glassformer.tasks import get_task, task_of
from glassformer.tasks.pipeline import load_predictor, pipeline
from glassformer.training.saved import load_saved
from tests.pretrained.helpers import TEXTS, lm_dir, sentiment_dir, translate_dir, vit_dir

pytestmark = pytest.mark.usefixtures("one_thread")

BUILDERS = {"sentiment": sentiment_dir, "translate": translate_dir, "vit": vit_dir, "lm": lm_dir}
IMAGES = [np.random.default_rng(i).integers(0, 256, (28, 28), dtype=np.uint8) for i in range(2)]


@pytest.fixture(scope="module")
def directories(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("families")
    return {task: build(root / task) for task, build in BUILDERS.items()}


def _answer(predictor, task: str) -> list[dict]:
    if task == "vit":
        return predictor(IMAGES)
    if task == "lm":
        return predictor(["the film"], max_new_tokens=6)
    if task == "translate":
        return predictor(TEXTS[:2], beam_size=1)
    return predictor(TEXTS[:3])


@pytest.mark.parametrize("task", sorted(BUILDERS))
def test_every_road_gives_the_same_predictor_and_answers(task, directories):
    directory = directories[task]
    module = get_task(task)
    roads = {"Predictor.load": module.Predictor.load(directory), "load_predictor": load_predictor(directory),
             "pipeline": pipeline(task, model=directory),
             "from_loaded(from_pretrained)": module.Predictor.from_loaded(from_pretrained(directory))}
    assert {type(p) for p in roads.values()} == {module.Predictor}
    saved = load_saved(directory).model.state_dict()
    for road, predictor in roads.items():
        state = predictor.model.state_dict()
        assert state.keys() == saved.keys() and all(torch.equal(state[k], saved[k]) for k in saved), road
    # One decision about the fused kernels, whichever road loaded the model (they were off for saved models).
    fast = {road: [getattr(m, "fast", None) for m in p.model.modules() if isinstance(m, MultiHeadAttention)] for road, p in roads.items()}
    assert len({tuple(flags) for flags in fast.values()}) == 1, fast
    answers = {road: _answer(predictor, task) for road, predictor in roads.items()}
    assert all(answer == answers["Predictor.load"] for answer in answers.values()), answers


def test_the_classifier_answers_softmax_of_the_saved_weights(directories):
    """Reference: the EncoderClassifier as load_saved builds it, on [CLS] pieces [SEP] encoded here."""
    classifier = get_task("sentiment").Predictor.load(directories["sentiment"])
    saved = load_saved(directories["sentiment"])
    for text, result in zip(TEXTS[:3], classifier(TEXTS[:3])):
        ids = torch.tensor([saved.tokenizer.encode(text, add_special_tokens=True)])
        with torch.no_grad():
            probs = saved.model.eval()(ids).logits.softmax(-1)[0]
        assert result["label"] == saved.label_names[int(probs.argmax())]
        assert result["score"] == pytest.approx(float(probs.max()), abs=1e-5)


def test_predictor_load_reads_a_checkpoint_and_refuses_another_tasks_model(directories, tmp_path):
    sentiment = get_task("sentiment")
    export(directories["sentiment"], "hf", tmp_path / "hf")
    from_checkpoint = sentiment.Predictor.load(tmp_path / "hf")
    assert task_of(from_pretrained(tmp_path / "hf")) == "sentiment"  # by its class: the checkpoint records no task
    assert from_checkpoint(TEXTS[:3]) == load_predictor(tmp_path / "hf")(TEXTS[:3])
    ours = sentiment.Predictor.load(directories["sentiment"])(TEXTS[:3])
    assert [r["label"] for r in from_checkpoint(TEXTS[:3])] == [r["label"] for r in ours]
    with pytest.raises(WrongModelError, match="holds a model for task 'lm', not 'sentiment'"):
        sentiment.Predictor.load(directories["lm"])
    with pytest.raises(WrongModelError, match="holds a model for task 'vit', not 'translate'"):
        pipeline("translate", model=directories["vit"])
