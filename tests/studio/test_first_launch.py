"""First launch: the studio finds what the documented `train` commands save, and trains what is missing in the background.

The tiny models of conftest.py are put where `glassformer train TASK --preset quick` (and `full`)
save theirs, in a temporary cache (``GLASSFORMER_HOME``); the studio must find them with no
directory given and serve each tab from them. The queue is driven with trainers that wait on an
event, so every state (queued, training, live) is observed without timing.
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest

gr = pytest.importorskip("gradio", reason="gradio is not installed (pip install gradio)")

from glassformer.studio import build_app, default_models  # noqa: E402
from glassformer.studio.app import background_training  # noqa: E402
from glassformer.studio.jobs import ModelSlot  # noqa: E402
from glassformer.studio.models import StudioModels, task_slot  # noqa: E402
from glassformer.studio.tabs import generate  # noqa: E402
from glassformer.studio.tabs import translate as translate_tab  # noqa: E402
from glassformer.studio.tabs import vision as vision_tab  # noqa: E402

from .helpers import browser_page, serve, shot  # noqa: E402


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty glassformer cache for this test (the data sets are not needed: the models are copied in)."""
    home = tmp_path / "home"
    monkeypatch.setenv("GLASSFORMER_HOME", str(home))
    return home


def _bits_per_char(directory: Path) -> float:
    return json.loads((directory / "config.json").read_text())["extra"]["metrics"]["validation"]["bits_per_char"]


@pytest.mark.slow
def test_studio_finds_the_models_the_documented_commands_save(cache, sentiment_dir, vit_dir, translate_dir, lm_dir,
                                                              shakespeare_slice):
    """Reference: the directories `train --preset quick/full` write, and the bits/char each saved LM records."""
    from glassformer.tasks import lm, translate, vit

    shutil.copytree(vit_dir, vit.default_out_dir(vit.get_preset("quick")))
    shutil.copytree(translate_dir, translate.default_out_dir(translate.get_preset("quick")))
    quick_lm = lm.default_out_dir(lm.get_preset("quick"))
    full_lm = lm.default_out_dir(lm.get_preset("full"))
    assert quick_lm.name == "lm-transformer-bpe-quick" and full_lm.name == "lm-transformer-bpe-full"
    shutil.copytree(lm_dir, quick_lm)
    # A second language model where the full preset saves, trained for 2 steps instead of 10: the studio
    # must pick by the recorded score, not by the directory's name.
    lm.train_transformer("quick", out=full_lm, data=shakespeare_slice, progress=False, tokenizer="char", max_steps=2,
                         d_model=32, n_heads=2, n_layers=2, d_ff=64, context=32, batch_size=8, warmup_steps=1,
                         eval_windows=4)
    strongest = min((quick_lm, full_lm), key=_bits_per_char)

    models = default_models(sentiment_dir)
    assert models.generate.get() is not None and models.generate.loaded_from == strongest
    assert models.vision.get() is not None and models.translate.get() is not None
    assert models.vision.loaded_from == vit.default_out_dir(vit.get_preset("quick"))
    assert models.translate.loaded_from == translate.default_out_dir(translate.get_preset("quick"))
    for slot in (models.vision, models.translate, models.generate):
        assert "is ready" in slot.status() and "not trained yet" not in slot.status()
    assert background_training(models).slots == []  # nothing is missing: nothing trains

    label, _, view = vision_tab.classify_image(models, 3, None)
    assert label is not None and "gf-overlay" in view
    english, _, _ = translate_tab.translate(models, "der hund sieht die katze.", "greedy")
    assert isinstance(english, str) and english
    text, _, state, *_ = generate.generate(models.generate, models.markov, "ROMEO:", 5, 0.0, 0, 1.0, 0)
    assert state is not None and len(state.tokens) == 5 and text.startswith("ROMEO:")


def test_lm_slot_prefers_full_over_quick_when_no_score_is_recorded(cache, tmp_path):
    slot = task_slot("lm", "language")
    for directory in (*slot.others, slot.directory):
        directory.mkdir(parents=True)
        (directory / "config.json").write_text("{}")
    assert slot.source() == slot.others[0] and slot.others[0].name == "lm-transformer-bpe-full"


class _Gate:
    """Trainers that log a plan and one step, then wait for the test before saving a model; the order they ran in."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self.release = {name: threading.Event() for name in ("vision", "translation", "language")}
        self.running = 0
        self.overlap = False

    def trainer(self, name: str):
        def train(out: Path) -> None:
            self.running += 1
            self.overlap |= self.running > 1
            self.order.append(name)
            (out / "run").mkdir(parents=True)
            records = [{"kind": "plan", "step": 0, "total_steps": 40}, {"kind": "train", "step": 10, "loss": 2.5}]
            (out / "run" / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
            self.release[name].wait(30)
            (out / "config.json").write_text("{}")
            self.running -= 1
        return train


def test_missing_models_train_one_at_a_time_vision_translation_language(tmp_path):
    gate = _Gate()
    slots = {name: ModelSlot(name, tmp_path / name, f"glassformer train {name}", lambda d: f"model in {d.name}",
                             gate.trainer(name)) for name in ("translation", "vision", "language")}
    models = StudioModels(object(), slots["translation"], slots["vision"], slots["language"])
    queue = background_training(models)
    try:
        assert [s.name for s in queue.slots] == ["vision", "translation", "language"]
        for _ in range(200):
            if "step 10 of 40" in slots["vision"].status():
                break
            threading.Event().wait(0.05)
        assert "in the background: step 10 of 40, loss 2.500" in slots["vision"].status()
        for name, before in (("translation", "vision"), ("language", "translation")):
            line = slots[name].status()
            assert f"queued after the {before} model" in line and "not trained yet" not in line
            assert slots[name].job is None
        gate.release["vision"].set()
        slots["vision"].job.join(10)
        assert slots["vision"].get() == "model in vision"  # live as soon as it is saved
        assert "ready" in slots["vision"].status()
        for _ in range(200):
            if slots["translation"].job is not None:
                break
            threading.Event().wait(0.05)
        assert "queued after the translation model" in slots["language"].status()
    finally:
        for event in gate.release.values():
            event.set()
        queue.join(30)
    assert gate.order == ["vision", "translation", "language"] and not gate.overlap
    assert all(slot.get() is not None for slot in slots.values())


# --- in a real browser ------------------------------------------------------------------------------

@pytest.mark.slow
def test_browser_vision_tab_switches_from_background_training_to_live(model_root, sentiment_dir, translate_dir, lm_dir,
                                                                      tmp_path):
    """The Vision tab, missing its model, shows the queued run's progress, then the tiny ViT it trains, without a restart."""
    from glassformer.data.corpora import ImageDataset, load_fashion_mnist
    from glassformer.tasks import vit

    images = load_fashion_mnist(quiet=True)
    tiny = ImageDataset(images.train_images[:200], images.train_labels[:200], images.test_images[:40],
                        images.test_labels[:40], images.class_names)
    release = threading.Event()

    def tiny_preset(out: Path) -> None:
        (out / "run").mkdir(parents=True)
        records = [{"kind": "plan", "step": 0, "total_steps": 2}, {"kind": "train", "step": 1, "loss": 2.25}]
        (out / "run" / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        release.wait(60)
        shutil.rmtree(out)
        vit.train("quick", out=out, progress=False, data=tiny, max_steps=2, d_model=16, n_heads=2, n_layers=1, d_ff=32,
                  batch_size=100, validation_size=40, threads=1)

    models = default_models(sentiment_dir, translate_dir=translate_dir, vision_dir=tmp_path / "vit",
                            generate_dir=lm_dir)
    models.vision.trainer = tiny_preset
    queue = background_training(models)
    try:
        with_app = serve(build_app(models))
        url = next(with_app)
        pages = browser_page(url)
        page = next(pages)
        page.get_by_role("tab", name="Vision", exact=True).click()
        page.wait_for_selector("text=in the background: step 1 of 2", timeout=30_000)
        assert "not trained yet" not in page.locator(".gf-status:visible").first.inner_text()
        chart = page.locator(".gf-training-curve svg.gf-race-curve:visible")
        chart.locator(".gf-level").wait_for(state="attached", timeout=15_000)  # the chance level (a line: no height)
        assert float(chart.get_attribute("data-level")) == pytest.approx(2.302585, abs=1e-6)  # ln 10
        assert page.locator(".gf-train:visible").count() == 0
        shot(page, "first-launch-vision-training")
        release.set()
        page.locator(".gf-status:visible").filter(has_text="is ready").first.wait_for(timeout=120_000)
        page.click("#vis-submit")
        page.wait_for_selector("#vis-out img", timeout=30_000)
        assert "%" in page.locator("#vis-label").inner_text()
        shot(page, "first-launch-vision-live")
        for tab in ("Sentiment", "Walkthrough", "Tokenizer", "Translate", "Generate"):
            page.get_by_role("tab", name=tab, exact=True).click()
            page.wait_for_timeout(300)
            assert "not trained yet" not in page.locator("body").inner_text()
            shot(page, f"first-launch-{tab.lower()}")
        race = page.locator(".gf-training-curve svg.gf-race-curve:visible")
        level = json.loads((lm_dir / "config.json").read_text())["extra"]["metrics"]["markov"]["bits_per_char"]
        assert float(race.get_attribute("data-level")) == pytest.approx(level)
        next(pages, None)
    finally:
        release.set()
        queue.join(120)
        next(with_app, None)
