"""The studio: walkthrough numbers against the model's own, bad input through the API, and the app in a real browser.

The fixture trains a tiny scratch sentiment model (a few hundred movie-review sentences, a few
steps) and a tiny ViT (a few hundred Fashion-MNIST images), starts the studio on a free port and
drives it with gradio_client (the API) and Debian's headless Chromium through Playwright (the UI;
never a downloaded browser). Every request that leaves 127.0.0.1 is aborted and recorded; the test
fails if there was one. Screenshots go to test-artifacts/studio/.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

gr = pytest.importorskip("gradio", reason="gradio is not installed (pip install gradio)")

from glassformer.studio import build_app, default_models, walkthrough  # noqa: E402
from glassformer.studio.common import UserInputError, clean_text  # noqa: E402

from .helpers import browser_page, serve, shot  # noqa: E402


@pytest.fixture(scope="module")
def models(model_root, sentiment_dir, vit_dir):
    """The tiny sentiment model and the tiny ViT; no translation or LM model (their tabs are "not trained yet")."""
    return default_models(sentiment_dir, translate_dir=model_root / "no-translate", vision_dir=vit_dir,
                          generate_dir=model_root / "no-lm")


@pytest.fixture(scope="module")
def studio(models, sentiment_dir):
    """The studio as `glassformer studio` serves it: every handler counted by the request policy, the programs' API
    at /api (fp32 here); on a free port of 127.0.0.1; yields its URL."""
    from glassformer.studio.answering import Answering
    from glassformer.studio.batching import api_app

    answering = Answering()
    yield from serve(answering.install(build_app(models)), api_app(sentiment_dir, precision="fp32",
                                                                   counted=answering.counted))


# --- the walkthrough is the model's own arithmetic ------------------------------------------------

@pytest.mark.slow
def test_walkthrough_logits_and_weights_equal_the_models_own(sentiment_dir):
    """Reference: the EncoderClassifier's forward pass (logits and output_attentions) on the same ids."""
    from glassformer.tasks.sentiment import SentimentClassifier, encode

    classifier = SentimentClassifier.load(sentiment_dir)

    ids, _ = encode(classifier.tokenizer, "A witty, moving film.", classifier.max_length)
    with torch.no_grad():
        reference = classifier.model(torch.tensor([ids]), output_attentions=True)
    for layer in range(classifier.model.config.n_layers):
        for head in range(classifier.model.config.n_heads):
            steps = walkthrough(classifier.model, classifier.tokenizer, ids, classifier.label_names,
                                layer=layer, head=head)
            np.testing.assert_allclose(steps.weights, reference.attentions[layer][0, head].numpy(), atol=1e-5)
            np.testing.assert_allclose(steps.weights.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(steps.logits, reference.logits[0].numpy(), atol=1e-5)
    assert steps.tokens[0] == "[CLS]" and steps.tokens[-1] == "[SEP]"
    # one_hot(id) @ W_E picks row id of the embedding matrix
    table = classifier.model.encoder.embeddings.word_embeddings.weight.detach().numpy()
    np.testing.assert_allclose(steps.word, table[ids], atol=0)


@pytest.mark.parametrize("norm_first", [False, True])
def test_walkthrough_follows_cls_pooling_and_pre_norm_layers(norm_first):
    """Reference: the EncoderClassifier's own forward pass, for a random pre-/post-norm model with a [CLS] pooler."""
    from glassformer.models.encoder import EncoderClassifier, EncoderConfig
    from glassformer.tasks.sentiment import train_wordpiece

    tokenizer = train_wordpiece(["a witty film", "a dull film"], 100)
    torch.manual_seed(0)
    model = EncoderClassifier(EncoderConfig(vocab_size=tokenizer.vocab_size, max_position=16, d_model=24, n_heads=3,
                                            n_layers=2, d_ff=48, norm_first=norm_first, pooling="cls",
                                            use_pooler=True, num_labels=3)).eval()
    ids = [2, *tokenizer.encode_ordinary("a witty film"), 3]
    with torch.no_grad():
        reference = model(torch.tensor([ids]), output_attentions=True)
    steps = walkthrough(model, tokenizer, ids, ["x", "y", "z"], layer=1, head=2)
    np.testing.assert_allclose(steps.logits, reference.logits[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(steps.weights, reference.attentions[1][0, 2].numpy(), atol=1e-5)
    assert steps.q.shape == (len(ids), 8)


def test_clean_text_reports_what_it_changed():
    with pytest.raises(UserInputError):
        clean_text("  \n\t ")
    cleaned = clean_text("ok\x00\x1b[31m 😀", max_chars=10)
    assert "\x00" not in cleaned.text and "😀" in cleaned.text and len(cleaned.notes) == 1
    assert "only the first 10" in clean_text("x" * 50, max_chars=10).notes[0]


def test_tokenizer_tab_bert_column_matches_hugging_face_tokenizers():
    """Reference: Hugging Face `tokenizers`' BertWordPieceTokenizer on MiniLM's vocab.txt (lowercasing)."""
    hf = pytest.importorskip("tokenizers")
    from glassformer.data import fetch
    from glassformer.studio.tabs.tokenizer import reference_tokens, tokenize

    text = "Transformers don't read words; they read pieces!"
    reference = hf.BertWordPieceTokenizer(str(fetch("minilm") / "vocab.txt"), lowercase=True)
    expected = reference.encode(text, add_special_tokens=False).tokens
    ours = reference_tokens(text)["BERT uncased (WordPiece)"]
    assert [token for token, _ in ours] == expected
    assert [index for _, index in ours] == reference.encode(text, add_special_tokens=False).ids
    bpe, side = tokenize(text, 5)
    assert f"BERT uncased (WordPiece): {len(expected)} tokens" in side
    assert "merges learned" in bpe and "merged pair" in bpe


def test_training_slot_reports_progress_success_and_failure(tmp_path):
    """A background job: not trained → training (step from metrics.jsonl) → ready; a failing trainer → message."""
    import json
    import threading

    from glassformer.studio.jobs import ModelSlot

    release = threading.Event()

    def trainer(out: Path) -> None:
        (out / "run").mkdir(parents=True)
        (out / "run" / "metrics.jsonl").write_text(json.dumps({"kind": "train", "step": 7, "loss": 1.25}) + "\n")
        release.wait(10)
        (out / "config.json").write_text("{}")

    slot = ModelSlot("toy", tmp_path / "toy", "glassformer train toy", lambda d: "a model", trainer)
    assert "not trained yet" in slot.status() and "glassformer train toy" in slot.status() and slot.get() is None
    slot.start_training()
    for _ in range(100):
        if "step 7" in slot.status():
            break
        threading.Event().wait(0.05)
    assert "step 7, loss 1.250" in slot.status()
    assert slot.start_training() == "Training is already running."
    release.set()
    slot.job._thread.join(10)
    assert "ready" in slot.status() and slot.get() == "a model"

    def broken(out: Path) -> None:
        raise RuntimeError("disk full")

    failing = ModelSlot("toy", tmp_path / "other", "cmd", lambda d: None, broken)
    failing.start_training()
    failing.job._thread.join(10)
    assert "failed" in failing.status() and "disk full" in failing.status()

    from glassformer.studio.models import unavailable_slot

    missing = unavailable_slot("vision", "No module named 'glassformer.tasks.vit'")
    assert "not available in this version" in missing.status() and missing.get() is None
    assert "not available" in missing.start_training() and missing.job is None


# --- bad input through the API --------------------------------------------------------------------

@pytest.mark.slow
def test_bad_input_through_the_api_gives_messages_and_the_app_stays_up(studio, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(studio, verbose=False)
    label, summary, _, _ = client.predict("", 0, 0, api_name="/classify")
    assert "empty" in summary and "Traceback" not in summary
    label, summary, shading, view = client.predict("great " * 20_000, 1, 0, api_name="/classify")
    assert "120,000 characters" in summary and "cut off" in summary and "<iframe" in view
    label, summary, shading, _ = client.predict("good\x00\x07 film \U0001F600\u202e", 0, 1, api_name="/classify")
    assert "Control characters" in summary and label["label"] in {"negative", "positive"}
    not_image = tmp_path / "notes.png"
    not_image.write_text("this is not a picture")
    label, note, out = client.predict(0, handle_file(str(not_image)), api_name="/vision")
    assert "not a PNG or JPEG" in note and "Traceback" not in note
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not an image either")
    with pytest.raises(Exception, match="Invalid file type"):  # refused by the upload's allowed types
        client.predict(0, handle_file(str(text_file)), api_name="/vision")
    import httpx

    too_big = httpx.post(studio + "gradio_api/upload", files={"files": ("big.png", b"\x89PNG" + bytes(6 * 2**20))})
    assert too_big.status_code == 413  # the server enforces the 5 MB cap, whatever the client does
    # still serving, and the translation tab (no model) says how to train one
    translation, note, _ = client.predict("Hallo Welt", "beam", api_name="/translate")
    assert "glassformer train translate --preset quick" in note
    label, summary, _, _ = client.predict("A lovely film.", 0, 0, api_name="/classify")
    assert set(x["label"] for x in label["confidences"]) == {"negative", "positive"}


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(studio, sentiment_dir):
    """Reference: the saved model's predictor called on one text at a time; 24 requests at once to each route.

    ``/predict`` and ``/classify`` (Gradio events gathered by the studio's micro-batcher) and
    ``/api/predict`` (glassformer serve's route, outside Gradio's queue): every answer must be its own
    text's, with the probabilities the predictor gives that text alone.
    """
    from concurrent.futures import ThreadPoolExecutor

    import httpx
    from gradio_client import Client

    from glassformer.tasks.pipeline import load_predictor

    texts = [f"{word} film, {n} times" for n, word in enumerate(["a dull", "a lovely", "an awful", "a moving"] * 6)]
    predictor = load_predictor(sentiment_dir, "sentiment")
    alone = [predictor.predict_proba([text], special_tokens="text")[0] for text in texts]
    expected = [{name: float(p) for name, p in zip(predictor.label_names, probs.tolist())} for probs in alone]
    client = Client(studio, verbose=False)
    with ThreadPoolExecutor(max_workers=len(texts)) as pool:
        answers = list(pool.map(lambda text: client.predict(text, api_name="/predict"), texts))
        views = list(pool.map(lambda text: client.predict(text, 0, 0, api_name="/classify"), texts[:8]))
        api = list(pool.map(lambda text: httpx.post(f"{studio}api/predict", json={"text": text}, timeout=60), texts))
    for answer, reference in zip(answers, expected):
        assert answer["label"] == max(reference, key=reference.get)
        assert answer["probabilities"] == pytest.approx(reference, abs=1e-5)
    for (label, _, _, view), reference in zip(views, expected):
        assert label["label"] == max(reference, key=reference.get) and "<iframe" in view
        assert {c["label"]: c["confidence"] for c in label["confidences"]} == pytest.approx(reference, abs=1e-5)
    for response, text, reference in zip(api, texts, expected):
        assert response.status_code == 200
        (answer,) = response.json()
        assert answer["text"] == text and answer["label"] == max(reference, key=reference.get)
        assert answer["score"] == pytest.approx(max(reference.values()), abs=1e-5)
    health = httpx.get(f"{studio}api/health", timeout=10).json()
    assert health["items"] == len(texts) and health["batches"] <= len(texts)
    assert "error" in client.predict("   ", api_name="/predict")


# --- the app in a real browser --------------------------------------------------------------------

@pytest.fixture(scope="module")
def page(studio):
    yield from browser_page(studio)


@pytest.mark.slow
def test_browser_sentiment_shows_label_probabilities_and_head_view(page):
    box = page.locator("#sentiment-text textarea")
    box.fill("A gorgeous, witty, seductive movie.")
    page.click("#sentiment-submit")
    page.wait_for_selector("#sentiment-headview iframe", timeout=30_000)
    label = page.locator("#sentiment-label")
    text = label.inner_text()
    assert "negative" in text and "positive" in text and "%" in text
    assert page.locator("#sentiment-tokens span").count() >= 5  # [CLS] … [SEP] shaded
    frame = page.frame_locator("#sentiment-headview iframe")
    frame.locator("body[data-ready='1']").wait_for(timeout=15_000)
    assert frame.locator("svg line, svg path").count() > 0
    shot(page, "sentiment")

    box.fill("")
    page.click("#sentiment-submit")
    page.wait_for_selector("#sentiment-summary .gf-warning", timeout=30_000)
    assert "empty" in page.locator("#sentiment-summary").inner_text()
    box.fill("great " * 20_000)
    page.click("#sentiment-submit")
    page.wait_for_function("document.querySelector('#sentiment-summary').innerText.includes('characters')",
                           timeout=30_000)
    assert "only the first 2,000 were read" in page.locator("#sentiment-summary").inner_text()
    shot(page, "sentiment-long-input")


@pytest.mark.slow
def test_browser_walkthrough_and_vision_tabs(page):
    page.get_by_role("tab", name="Walkthrough", exact=True).click()
    page.click("#walk-submit")
    page.wait_for_selector("#walk-out .gf-prediction", timeout=30_000)
    out = page.locator("#walk-out")
    assert out.locator("section.gf-step").count() == 11
    text = out.inner_text()
    for formula in ("Q Kᵀ / √d_head", "softmax", "W_E[id]", "Prediction:"):
        assert formula in text
    assert out.locator("table.gf-grid").count() == 3  # one-hot rows, scores, softmax weights
    assert out.locator("img").count() == 3  # embeddings and positions as pixels, the sinusoidal table
    shot(page, "walkthrough")

    page.get_by_role("tab", name="Vision", exact=True).click()
    page.click("#vis-submit")
    page.wait_for_selector("#vis-out img", timeout=30_000)
    layers = 2  # the tiny ViT: its rollout, then per layer the mean over its 2 heads and each head
    assert page.locator("#vis-out figure.gf-overlay").count() == 1 + layers * 3
    assert "test image 0" in page.locator("#vis-note").inner_text()
    assert "%" in page.locator("#vis-label").inner_text()
    shot(page, "vision")

    page.get_by_role("tab", name="Translate", exact=True).click()
    page.wait_for_selector("text=glassformer train translate --preset quick", timeout=10_000)
    assert page.locator(".gf-train:visible").count() == 1
    from glassformer.studio.models import QUICK_QUALITY

    assert QUICK_QUALITY["translate"] in page.locator(".gf-status:visible").first.inner_text()
    shot(page, "translate-not-trained")


@pytest.mark.slow
def test_browser_train_button_shows_live_progress_and_loss_curve(page, models, monkeypatch):
    """The Translate tab's button starts the slot's trainer in a thread; the tab shows its step and loss curve live."""
    import json
    import threading

    more, release = threading.Event(), threading.Event()

    def fake_quick_preset(out: Path) -> None:
        (out / "run").mkdir(parents=True, exist_ok=True)
        log = out / "run" / "metrics.jsonl"
        log.write_text("".join(json.dumps({"kind": "train", "step": s, "loss": 4.0 - s / 2}) + "\n" for s in (1, 2, 3)))
        more.wait(30)
        with log.open("a") as handle:
            handle.write(json.dumps({"kind": "train", "step": 4, "loss": 1.75}) + "\n")
        release.wait(30)

    monkeypatch.setattr(models.translate, "trainer", fake_quick_preset)
    page.get_by_role("tab", name="Translate", exact=True).click()
    page.click(".gf-train")
    try:
        page.wait_for_selector("text=step 3, loss 2.500", timeout=15_000)
        assert page.locator(".gf-train:visible").count() == 0
        page.wait_for_selector(".gf-training-curve svg[data-points='3']", timeout=15_000)
        more.set()
        page.wait_for_selector(".gf-training-curve svg[data-points='4']", timeout=15_000)  # the curve grows
        assert "1.750" in page.locator(".gf-training-curve svg").first.inner_html()
        shot(page, "translate-training")
    finally:
        more.set()
        release.set()
    models.translate.job._thread.join(10)
    page.wait_for_selector("text=not trained yet", timeout=15_000)  # the fake run saved no model
