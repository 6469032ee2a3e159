"""export(): glassformer models → transformers, sentence-transformers and ONNX, each loaded by its own library.

References: transformers' Auto classes, AutoTokenizer and pipeline(); sentence-transformers'
SentenceTransformer.encode; onnxruntime's InferenceSession; the tokenizers library. Every model is a tiny
one of its family, fine-tuned for a few steps (tests/pretrained/helpers.py).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from glassformer.errors import OutputExistsError, WrongModelError
from glassformer.inference.generate import generate, greedy_search, target_ids
from glassformer.pretrained import SentenceConfig, SentenceEncoder, bert, export, from_pretrained, marian, save_pretrained
from glassformer.tasks import task_of
from glassformer.tasks.pipeline import load_predictor
from tests.pretrained.helpers import TEXTS, broken_mapping, lm_dir, sentiment_dir, translate_dir, vit_dir


@pytest.fixture(scope="module")
def sentiment(tmp_path_factory):
    return sentiment_dir(tmp_path_factory.mktemp("sentiment") / "model")


def check_sentiment_export(transformers, sentiment, tmp_path) -> None:
    exported = export(sentiment, "hf", tmp_path / "hf")
    assert exported.notes == []
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    theirs = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "hf").eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    texts = TEXTS + ["a very long review " * 20]
    batch = tokenizer(texts, padding=True, truncation=True, return_tensors="pt")  # needs the pad token
    ours = load_predictor(sentiment)
    ids = ours.tokenizer(texts, padding=True, truncation=True, max_length=ours.max_length, return_tensors="pt")
    assert tokenizer.model_max_length == 48 and torch.equal(batch["input_ids"], ids["input_ids"])
    with torch.no_grad():
        expected = theirs(**batch).logits
        got = ours.model(ids["input_ids"], ids["attention_mask"]).logits
    gap = (got - expected).abs().max().item()
    assert gap <= 1e-5
    hf_pipe = transformers.pipeline("text-classification", model=str(tmp_path / "hf"))
    for mine, reference in zip(ours(TEXTS), hf_pipe(TEXTS)):
        assert mine["label"] == reference["label"] and mine["score"] == pytest.approx(reference["score"], abs=1e-5)


def test_sentiment_loads_in_transformers_with_identical_predictions(transformers, sentiment, tmp_path):
    check_sentiment_export(transformers, sentiment, tmp_path)


def test_sentiment_export_check_fails_on_a_broken_mapping(transformers, sentiment, tmp_path, monkeypatch):
    broken_mapping(monkeypatch, bert, drop="encoder.encoder.layers.0.self_attn.v_proj.bias")
    with pytest.raises(AssertionError, match=r"assert .* <= 1e-05"):
        check_sentiment_export(transformers, sentiment, tmp_path)


def test_mean_pooled_classifier_is_refused_naming_pooling_cls(tmp_path):
    directory = sentiment_dir(tmp_path / "mean", pooling="mean")
    with pytest.raises(WrongModelError, match="--pooling cls"):
        export(directory, "hf", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(WrongModelError, match="--pooling cls"):
        save_pretrained(load_predictor(directory).model, tmp_path / "out2")


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_language_model_loads_as_gpt2_with_identical_logits_and_generation(transformers, kind, tmp_path):
    directory = lm_dir(tmp_path / "lm", kind)
    exported = export(directory, "hf", tmp_path / "hf")
    assert any("<|endoftext|>" in note for note in exported.notes)
    theirs = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    ours = load_predictor(directory)
    text = "the film was good"
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    assert ids[0].tolist() == ours.tokenizer.encode(text)
    prompt = torch.cat([torch.tensor([[ours.end_token_id]]), ids], dim=1)
    with torch.no_grad():
        assert (theirs(prompt).logits - ours.model(prompt).logits).abs().max() <= 1e-5
        expected = theirs.generate(prompt, max_new_tokens=12, min_new_tokens=12, do_sample=False,
                                   pad_token_id=ours.end_token_id)
    got = generate(ours.model, prompt, max_new_tokens=12, greedy=True)
    assert torch.equal(got, expected)


def test_vit_loads_with_its_labels_and_pixel_scaling(transformers, tmp_path):
    directory = vit_dir(tmp_path / "vit")
    export(directory, "hf", tmp_path / "hf")
    theirs = transformers.AutoModelForImageClassification.from_pretrained(tmp_path / "hf").eval()
    assert theirs.config.id2label == {0: "shirt", 1: "shoe", 2: "bag"}
    from glassformer.tasks.vit import normalise

    images = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8)
    processor = transformers.ViTImageProcessor.from_pretrained(tmp_path / "hf")
    pixels = processor([image.numpy()[..., None] for image in images], return_tensors="pt",
                       input_data_format="channels_last")["pixel_values"]
    torch.testing.assert_close(pixels, normalise(images), atol=1e-5, rtol=0)  # the ViT task's (x/255 - MEAN)/STD
    ours = load_predictor(directory)
    with torch.no_grad():
        assert (theirs(pixel_values=pixels).logits - ours.model(normalise(images)).logits).abs().max() <= 1e-5


def test_pre_norm_translator_is_refused_naming_the_difference(tmp_path):
    directory = translate_dir(tmp_path / "translate", norm_first=True)
    with pytest.raises(WrongModelError, match=r"pre-norm.*MarianMTModel normalises after each sublayer"):
        export(directory, "hf", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def check_marian_export(transformers, directory, tmp_path) -> None:
    export(directory, "hf", tmp_path / "hf")
    theirs = transformers.AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "hf").eval()
    assert type(theirs).__name__ == "MarianMTModel"
    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    ours = load_predictor(directory)
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    assert batch["input_ids"][1][batch["attention_mask"][1].bool()].tolist() == ours._source_ids([TEXTS[1]])[0]
    config = ours.model.config
    target = torch.tensor([[config.bos_token_id] + ours.tokenizer.encode("the good film")] * len(TEXTS))
    with torch.no_grad():
        expected = theirs(**batch, decoder_input_ids=target).logits
        got = ours.model(batch["input_ids"], target, batch["attention_mask"]).logits
        gap = (got - expected).abs().max().item()
        assert gap <= 1e-5
        generated = theirs.generate(**batch, num_beams=1, do_sample=False, max_new_tokens=8,
                                    forced_eos_token_id=None)
    # 8 free steps as max_new_tokens=8: greedy_search ends what is still open with EOS at a ninth step.
    greedy = target_ids(ours.model, greedy_search(ours.model, batch["input_ids"], batch["attention_mask"], max_len=9))
    width = min(generated.shape[1], greedy.shape[1])
    assert torch.equal(generated[:, :width - 1], greedy[:, :width - 1])
    # The last place holds the same token, or </s> where MarianMTModel's forced_eos_token_id ends a search that ran
    # to max_new_tokens (an untrained model with N(0, 1/d) embeddings repeats <s> until then); ours does not force it.
    last = generated[:, width - 1]
    assert ((last == greedy[:, width - 1]) | (last == config.eos_token_id)).all()
    back = from_pretrained(tmp_path / "hf")  # and MarianMTModel checkpoints come back in
    assert task_of(back) == "translate"
    with torch.no_grad():
        assert (back.model(batch["input_ids"], target, batch["attention_mask"]).logits - got).abs().max() <= 1e-5


@pytest.fixture(scope="module")
def post_norm_translator(tmp_path_factory):
    return translate_dir(tmp_path_factory.mktemp("translate") / "model", norm_first=False)


def test_post_norm_translator_loads_as_marian_with_identical_logits_and_translations(transformers,
                                                                                        post_norm_translator,
                                                                                        tmp_path):
    check_marian_export(transformers, post_norm_translator, tmp_path)


def test_marian_export_check_fails_on_a_broken_mapping(transformers, post_norm_translator, tmp_path, monkeypatch):
    broken_mapping(monkeypatch, marian, swap=("encoder.layers.0.ffn.fc2.bias", "decoder.layers.0.ffn.fc2.bias"))
    with pytest.raises(AssertionError, match=r"assert .* <= 1e-05"):
        check_marian_export(transformers, post_norm_translator, tmp_path)


def test_sentence_transformers_export_encodes_as_glassformer(sentiment, tmp_path):
    st = pytest.importorskip("sentence_transformers")
    exported = export(sentiment, "sentence-transformers", tmp_path / "st")
    assert "classification head is not part of it" in exported.notes[0]
    modules = json.loads((tmp_path / "st" / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[1] for m in modules] == ["Transformer", "Pooling", "Normalize"]
    theirs = st.SentenceTransformer(str(tmp_path / "st"), device="cpu")
    assert theirs.max_seq_length == 48
    ours = SentenceEncoder.from_pretrained(str(tmp_path / "st"))
    classifier = load_predictor(sentiment)
    backbone = SentenceEncoder(classifier.model.encoder, classifier.tokenizer, SentenceConfig(48, "cls"))
    expected = torch.from_numpy(theirs.encode(TEXTS))
    for vectors in (ours.encode(TEXTS), backbone.encode(TEXTS)):
        assert torch.nn.functional.cosine_similarity(vectors, expected).min() >= 0.99999


@pytest.mark.slow
def test_minilm_keeps_its_sentence_modules_through_save_and_export(minilm_dir, tmp_path):
    """The issue's case: save_pretrained(minilm) used to drop pooling, normalisation and max length."""
    st = pytest.importorskip("sentence_transformers")
    minilm = from_pretrained(minilm_dir)
    texts = ["A man is eating food.", "Someone eats a meal.", "The weather is cold " * 60]
    expected = torch.from_numpy(st.SentenceTransformer(str(minilm_dir), device="cpu").encode(texts))
    save_pretrained(minilm, tmp_path / "saved")
    export(minilm_dir, "sentence-transformers", tmp_path / "exported")
    for directory in (tmp_path / "saved", tmp_path / "exported"):
        theirs = st.SentenceTransformer(str(directory), device="cpu")
        assert theirs.max_seq_length == 256
        got = torch.from_numpy(theirs.encode(texts))
        assert torch.nn.functional.cosine_similarity(got, expected).min() >= 0.99999
        assert got.norm(dim=-1).sub(1).abs().max() <= 1e-5


def _run_onnx(directory, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(directory / "model.onnx"), providers=["CPUExecutionProvider"])
    return session.run(None, inputs)


def _padded(rows: list[list[int]], pad: int) -> tuple[np.ndarray, np.ndarray]:
    width = max(map(len, rows))
    ids = np.array([row + [pad] * (width - len(row)) for row in rows], dtype=np.int64)
    mask = np.array([[1] * len(row) + [0] * (width - len(row)) for row in rows], dtype=np.int64)
    return ids, mask


@pytest.mark.slow
@pytest.mark.parametrize("family", ["sentiment", "lm", "vit", "translate"])
def test_onnx_runs_in_onnxruntime_like_glassformer(family, tmp_path):
    """Exported at batch 2, length 8; run at other batch sizes and lengths (dynamic axes), padding included."""
    pytest.importorskip("onnxscript")
    build = {"sentiment": sentiment_dir, "lm": lm_dir, "vit": vit_dir, "translate": translate_dir}[family]
    directory = build(tmp_path / family)
    export(directory, "onnx", tmp_path / "onnx")
    loaded = from_pretrained(directory)
    model, tokenizer = loaded.model, loaded.tokenizer
    description = json.loads((tmp_path / "onnx" / "onnx_model.json").read_text())
    assert description["task"] == family
    with torch.no_grad():
        if family == "vit":
            images = torch.randn(5, 1, 28, 28)
            (got,) = _run_onnx(tmp_path / "onnx", {"pixel_values": images.numpy()})
            expected = model(images).logits
        elif family == "lm":
            ids = torch.tensor([tokenizer.encode(t)[:12] for t in ("the movie was great", "not good at all!")])
            (got,) = _run_onnx(tmp_path / "onnx", {"input_ids": ids.numpy()})
            expected = model(ids).logits
        else:
            rows = [tokenizer.encode(t, add_special_tokens=family == "sentiment") for t in TEXTS]
            ids, mask = _padded(rows, tokenizer.special_tokens["[PAD]" if family == "sentiment" else "<pad>"])
            inputs = {"input_ids": ids, "attention_mask": mask}
            if family == "translate":
                inputs["decoder_input_ids"] = ids[:, :3].copy()
            (got,) = _run_onnx(tmp_path / "onnx", inputs)
            args = (torch.from_numpy(ids), torch.from_numpy(mask))
            expected = model(args[0], args[1]).logits if family == "sentiment" else \
                model(args[0], torch.from_numpy(inputs["decoder_input_ids"]), args[1]).logits
    assert np.abs(got - expected.numpy()).max() <= 1e-4
    if tokenizer is not None:
        from tokenizers import Tokenizer

        theirs = Tokenizer.from_file(str(tmp_path / "onnx" / "tokenizer.json"))
        assert theirs.encode("the movie was great").ids == tokenizer.encode("the movie was great",
                                                                             add_special_tokens=True)


@pytest.mark.slow
def test_onnx_encoder_gives_token_states_and_sentence_vectors(minilm_dir, tmp_path):
    pytest.importorskip("onnxscript")
    encoder = SentenceEncoder.from_pretrained(str(minilm_dir))  # loaded with the fused CPU kernels on
    export(from_pretrained(minilm_dir), "onnx", tmp_path / "onnx")
    ids, mask = encoder.tokenize(["A man is eating food.", "Someone eats a meal, slowly and with great care."])
    hidden, vectors = _run_onnx(tmp_path / "onnx", {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
    with torch.no_grad():
        expected_hidden = encoder.model(ids, mask).last_hidden_state
    keep = mask.bool().numpy()
    assert np.abs(hidden[keep] - expected_hidden.numpy()[keep]).max() <= 1e-4
    assert np.abs(vectors - encoder.embed_ids(ids, mask).numpy()).max() <= 1e-4


def test_export_refuses_what_it_must_not_replace(sentiment, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(OutputExistsError, match="not empty and was not written by glassformer"):
        export(sentiment, "hf", tmp_path / "mine")
    export(sentiment, "hf", tmp_path / "out")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        export(sentiment, "hf", tmp_path / "out")
    with pytest.raises(OutputExistsError, match="not a sentence-transformers"):
        export(sentiment, "sentence-transformers", tmp_path / "out", overwrite=True)
    export(sentiment, "hf", tmp_path / "out", overwrite=True)
    from glassformer._files import verify_manifest

    assert verify_manifest(tmp_path / "out")
    with pytest.raises(ValueError, match="unknown export format 'tflite'"):
        export(sentiment, "tflite", tmp_path / "other")
    with pytest.raises(WrongModelError, match="sentence-transformers models are encoders"):
        export(lm_dir(tmp_path / "lm"), "sentence-transformers", tmp_path / "other")


def test_marian_config_carries_the_three_dropout_rates_both_ways(transformers):
    """MarianConfig names them dropout, attention_dropout and activation_dropout; unset rates fall back to dropout."""
    from glassformer.models import Seq2SeqConfig

    config = Seq2SeqConfig(vocab_size=50, max_position=64, d_model=32, n_heads=4, n_encoder_layers=1,
                           n_decoder_layers=1, d_ff=64, dropout=0.3, attn_dropout=0.0, ffn_dropout=0.1)
    theirs = transformers.MarianConfig(**marian.config_to_hf(config))
    assert (theirs.dropout, theirs.attention_dropout, theirs.activation_dropout) == (0.3, 0.0, 0.1)
    back = marian.config_from_hf(theirs.to_dict())
    assert (back.dropout, back.attn_dropout, back.ffn_dropout) == (0.3, 0.0, 0.1)
    plain = transformers.MarianConfig(**marian.config_to_hf(Seq2SeqConfig(**{**config.__dict__, "attn_dropout": None,
                                                                            "ffn_dropout": None})))
    assert (plain.attention_dropout, plain.activation_dropout) == (0.3, 0.3)
