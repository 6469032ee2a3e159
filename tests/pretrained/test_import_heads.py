"""from_pretrained as the one front door: Hugging Face task checkpoints with their heads and labels, transformers 5
directories that hold only tokenizer.json, and glassformer's own saved models.

References: transformers' BertForSequenceClassification, GPT2LMHeadModel and ViTForImageClassification (tiny
random ones, saved by transformers here), their tokenizers and pipeline(); glassformer's load_saved for its
own directories.
"""

from __future__ import annotations

import pytest
import torch

from glassformer.errors import WrongModelError
from glassformer.pretrained import CheckpointError, bert, from_pretrained, marian
from glassformer.tasks import task_of
from glassformer.tasks.pipeline import load_predictor, pipeline
from tests.pretrained.helpers import LETTERS, TEXTS, WORDS, broken_mapping, randomise, sentiment_dir


def _vocab_file(path) -> str:
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *LETTERS, *(f"##{c}" for c in LETTERS), ",", "!", *WORDS]
    path.write_text("".join(token + "\n" for token in vocab), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def hf_classifier(transformers, tmp_path_factory):
    """A BertForSequenceClassification with named labels and its tokenizer, saved by transformers (tokenizer.json only)."""
    directory = tmp_path_factory.mktemp("hf-bert-cls")
    tokenizer = transformers.BertTokenizerFast(vocab_file=_vocab_file(directory / "vocab-source.txt"))
    (directory / "vocab-source.txt").unlink()
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=4, intermediate_size=64, max_position_embeddings=64,
                                     num_labels=3, id2label={0: "sad", 1: "neutral", 2: "happy"},
                                     label2id={"sad": 0, "neutral": 1, "happy": 2})
    model = randomise(transformers.BertForSequenceClassification(config)).eval()
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    assert not (directory / "vocab.txt").exists()  # transformers 5 writes tokenizer.json alone
    return model, tokenizer, directory


def check_classifier(hf, hf_tokenizer, directory) -> None:
    loaded = from_pretrained(directory)
    assert type(loaded.model).__name__ == "EncoderClassifier" and task_of(loaded) == "sentiment"
    assert loaded.label_names == ["sad", "neutral", "happy"]
    assert loaded.tokenizer is not None and loaded.tokenizer.pad_token == "[PAD]"
    batch = hf_tokenizer(TEXTS, padding=True, return_tensors="pt")
    ours = loaded.tokenizer(TEXTS, padding=True, return_tensors="pt")
    assert torch.equal(ours["input_ids"], batch["input_ids"])
    with torch.no_grad():
        expected = hf(**batch).logits
        got = loaded.model(ours["input_ids"], ours["attention_mask"]).logits
    gap = (got - expected).abs().max().item()
    assert gap <= 1e-5


def test_sequence_classifier_loads_with_its_head_labels_and_tokenizer(hf_classifier):
    check_classifier(*hf_classifier)


@pytest.mark.parametrize("break_", [{"drop": "encoder.encoder.layers.1.ffn.fc2.bias"},
                                    {"swap": ("encoder.embeddings.norm.bias", "encoder.encoder.layers.0.norm1.bias")}],
                         ids=["dropped-bias", "swapped-biases"])
def test_classifier_check_fails_on_a_broken_mapping(hf_classifier, monkeypatch, break_):
    broken_mapping(monkeypatch, bert, **break_)
    with pytest.raises(AssertionError, match=r"assert .* <= 1e-05"):
        check_classifier(*hf_classifier)


def test_pipeline_answers_like_transformers_pipeline(transformers, hf_classifier):
    _, _, directory = hf_classifier
    theirs = transformers.pipeline("text-classification", model=str(directory))
    for task in ("text-classification", "sentiment-analysis"):
        ours = pipeline(task, model=directory)
        for mine, reference in zip(ours(TEXTS), theirs(TEXTS)):
            assert mine["label"] == reference["label"] and mine["score"] == pytest.approx(reference["score"], abs=1e-5)
    ours = pipeline("text-classification", model=directory)
    one = ours(TEXTS[0])
    assert len(one) == 1 and one[0]["label"] == theirs(TEXTS[0])[0]["label"]  # one text: a one-item list
    ranked, reference = ours(TEXTS[0], top_k=None), theirs(TEXTS[0], top_k=None)
    assert [r["label"] for r in ranked] == [r["label"] for r in reference]  # every label, best first
    assert [len(r) for r in ours(TEXTS[:2], top_k=2)] == [len(r) for r in theirs(TEXTS[:2], top_k=2)] == [2, 2]
    glassformer_shape = pipeline("sentiment", model=directory)(TEXTS[:1])
    assert set(glassformer_shape[0]) == {"text", "label", "score"}


def test_predict_command_reads_a_transformers_checkpoint(hf_classifier, capsys):
    from glassformer.cli import main

    _, _, directory = hf_classifier
    assert main(["predict", str(directory), "--precision", "fp32", "--json", TEXTS[0]]) == 0
    expected = load_predictor(directory)([TEXTS[0]])[0]
    assert f'"label": "{expected["label"]}"' in capsys.readouterr().out


def test_other_bert_heads_are_refused_by_name(transformers, tmp_path):
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, num_labels=4)
    transformers.BertForTokenClassification(config).save_pretrained(tmp_path / "tokens")
    with pytest.raises(CheckpointError, match="BertForTokenClassification.*BertForSequenceClassification only"):
        from_pretrained(tmp_path / "tokens")
    config.num_labels = 1
    transformers.BertForSequenceClassification(config).save_pretrained(tmp_path / "regression")
    with pytest.raises(CheckpointError, match="regression"):
        from_pretrained(tmp_path / "regression")


def test_gpt2_with_tokenizer_generates_like_transformers(transformers, tmp_path):
    from glassformer.data import SourceError, fetch

    try:
        source = fetch("gpt2-tokenizer", quiet=True)
    except SourceError as exc:
        pytest.skip(f"GPT-2 tokenizer files not available: {exc}")
    tokenizer = transformers.GPT2TokenizerFast(vocab=str(source / "encoder.json"), merges=str(source / "vocab.bpe"))
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=2, n_head=4)
    hf = transformers.GPT2LMHeadModel(config).eval()
    hf.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded = from_pretrained(tmp_path)
    assert task_of(loaded) == "lm" and loaded.tokenizer is not None  # from tokenizer.json alone
    prompt = "The dog chased the cat"
    assert loaded.tokenizer.encode(prompt) == tokenizer(prompt)["input_ids"]
    theirs = transformers.pipeline("text-generation", model=hf, tokenizer=tokenizer)
    expected = theirs(prompt, max_new_tokens=8, do_sample=False)
    got = pipeline("text-generation", model=tmp_path)(prompt, max_new_tokens=8, do_sample=False)
    assert got == expected
    assert got[0]["generated_text"].startswith(prompt)


def test_vit_labels_and_image_pipeline_match_transformers(transformers, tmp_path):
    from PIL import Image

    torch.manual_seed(0)
    config = transformers.ViTConfig(image_size=16, patch_size=4, num_channels=3, hidden_size=32, num_hidden_layers=2,
                                    num_attention_heads=4, intermediate_size=64, num_labels=3,
                                    id2label={0: "cat", 1: "dog", 2: "bird"}, label2id={"cat": 0, "dog": 1, "bird": 2})
    hf = transformers.ViTForImageClassification(config).eval()
    hf.save_pretrained(tmp_path)
    processor = transformers.ViTImageProcessor(size={"height": 16, "width": 16}, image_mean=[0.4, 0.5, 0.6],
                                               image_std=[0.2, 0.25, 0.3])
    processor.save_pretrained(tmp_path)
    assert from_pretrained(tmp_path).label_names == ["cat", "dog", "bird"]
    generator = torch.Generator().manual_seed(0)
    images = [Image.fromarray(torch.randint(0, 256, (16, 16, 3), generator=generator, dtype=torch.uint8).numpy())
              for _ in range(3)]
    theirs = transformers.pipeline("image-classification", model=hf, image_processor=processor)
    ours = pipeline("image-classification", model=tmp_path)
    for mine, reference in zip(ours(images, top_k=3), theirs(images, top_k=3)):
        assert [r["label"] for r in mine] == [r["label"] for r in reference]
        assert [r["score"] for r in mine] == pytest.approx([r["score"] for r in reference], abs=1e-5)
    assert len(ours(images[0])) == 3  # one image: its labels, at most top_k=5


def test_glassformer_saved_models_come_through_the_same_door(tmp_path):
    from glassformer.training.saved import load_saved

    directory = sentiment_dir(tmp_path / "sentiment")
    loaded, saved = from_pretrained(directory), load_saved(directory)
    assert loaded.saved and loaded.task == "sentiment" and loaded.label_names == ["negative", "positive"]
    assert loaded.extra["max_length"] == 48 and type(loaded.tokenizer).__name__ == "WordPiece"
    for name, tensor in saved.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], tensor)


def test_a_checkpoint_without_a_task_head_is_refused_by_task_pipelines_and_read_by_feature_extraction(transformers, tmp_path,
                                                                                                       minilm_dir):
    from glassformer.models import EncoderConfig, TransformerEncoderModel
    from glassformer.pretrained import save_pretrained

    save_pretrained(TransformerEncoderModel(EncoderConfig.preset("tiny")), tmp_path / "encoder")
    with pytest.raises(WrongModelError, match="no task head; feature-extraction reads its token vectors"):
        pipeline("sentiment", model=tmp_path / "encoder")
    ours = pipeline("feature-extraction", model=minilm_dir)
    theirs = transformers.pipeline("feature-extraction", model=str(minilm_dir))
    got, expected = torch.tensor(ours("A man is eating food.")), torch.tensor(theirs("A man is eating food."))
    assert got.shape == expected.shape == (1, 8, 384) and (got - expected).abs().max() <= 1e-4
    assert len(ours(["one", "two words"])) == 2


@pytest.fixture
def hf_marian(transformers, tmp_path):
    """A small MarianMTModel with every parameter random, saved by transformers, and its directory."""
    config = transformers.MarianConfig(vocab_size=60, d_model=32, encoder_layers=2, decoder_layers=2,
                                       encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                                       decoder_ffn_dim=64, max_position_embeddings=64, scale_embedding=True,
                                       activation_function="gelu", pad_token_id=0, eos_token_id=2,
                                       decoder_start_token_id=1, forced_eos_token_id=2)
    hf = randomise(transformers.MarianMTModel(config)).eval()
    hf.save_pretrained(tmp_path)
    return hf, tmp_path


def check_marian(hf, directory) -> None:
    loaded = from_pretrained(directory)
    assert type(loaded.model).__name__ == "Seq2SeqTransformer" and task_of(loaded) == "translate"
    src = torch.tensor([[5, 9, 33, 7, 2], [8, 41, 2, 0, 0]])
    mask = (src != 0).long()
    tgt = torch.tensor([[1, 12, 30], [1, 50, 3]])
    with torch.no_grad():
        expected = hf(input_ids=src, attention_mask=mask, decoder_input_ids=tgt).logits
        got = loaded.model(src, tgt, mask).logits
    gap = (got - expected).abs().max().item()
    assert gap <= 1e-5


def test_marian_checkpoint_loads_with_identical_logits(hf_marian):
    """transformers' own MarianMTModel (sines first in its position table) through glassformer's re-indexed weights."""
    check_marian(*hf_marian)
    with pytest.raises(WrongModelError, match="no tokenizer files"):
        load_predictor(hf_marian[1])  # Marian's own tokenizers are SentencePiece files, which glassformer does not read


def test_marian_check_fails_on_a_broken_mapping(hf_marian, monkeypatch):
    broken_mapping(monkeypatch, marian, drop="decoder.layers.1.cross_attn.v_proj.bias")
    with pytest.raises(AssertionError, match=r"assert .* <= 1e-05"):
        check_marian(*hf_marian)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_packed_logits_match_transformers_on_a_padded_batch(hf_classifier, monkeypatch, pooling):
    """Reference: BertForSequenceClassification (CLS through its pooler), or its BertModel's hidden states averaged
    over the real tokens (mean pooling) into the same head; ours computes only the real tokens (nn.packed), and for
    [CLS] pooling, in the last layer, only the [CLS] rows."""
    from dataclasses import replace

    from glassformer.nn import packed

    hf, hf_tokenizer, directory = hf_classifier
    loaded = from_pretrained(directory)
    model = loaded.model
    model.config = replace(model.config, pooling=pooling)
    batch = hf_tokenizer(TEXTS, padding=True, return_tensors="pt")
    assert not bool(batch["attention_mask"].all())  # the batch has padding to leave out
    # and more packed rows than [CLS] rows, so the [CLS]-only last layer leaves rows out
    packing = packed.Packing.of(batch["attention_mask"])
    assert packing.rows > packed.first_rows(packing).numel()
    calls = []
    monkeypatch.setattr(packed, "encode", lambda *args, _encode=packed.encode, **kwargs:
                        calls.append(kwargs.get("first_only", False)) or _encode(*args, **kwargs))
    with torch.no_grad():
        if pooling == "cls":
            expected = hf(**batch).logits
        else:
            hidden = hf.bert(**batch).last_hidden_state
            weights = batch["attention_mask"][..., None].float()
            expected = hf.classifier((hidden * weights).sum(1) / weights.sum(1))
        got = model.predict_logits(batch["input_ids"], batch["attention_mask"])
    assert calls == [pooling == "cls"]  # the packed path ran; for [CLS], its last layer on the [CLS] rows alone
    assert (got - expected).abs().max().item() <= 1e-5
    handle = model.encoder.encoder.layers[0].hook_resid_post.register_forward_hook(lambda m, i, o: o * 0)
    try:
        with torch.no_grad():
            hooked = model.predict_logits(batch["input_ids"], batch["attention_mask"])
    finally:
        handle.remove()
    assert len(calls) == 1 and (hooked - expected).abs().max().item() > 1e-3  # a hook: the forward pass, hook applied
