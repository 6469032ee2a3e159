"""One road from input to answer to explanation: `glassformer predict` and `glassformer explain` on the same input
feed the model identical tensors, for every family.

Reference: a forward hook on the model's embedding layer (token, patch or shared source/target embedding)
records every tensor the model reads during each command. Whatever explain adds beyond the prediction's
inputs may only be its baseline (the [PAD] ids, a black image). Each test also checks the input it
expects from an independent construction (the ids with hints, the image and its mirror, the prompt with
or without ``<|endoftext|>``), so a predictor and an explanation that agreed on the wrong input would fail.
``predict`` runs with ``--precision fp32``: explain computes in fp32, and bf16 would round the pixels.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from PIL import Image

from glassformer.cli import main
from glassformer.models import DecoderLM, Seq2SeqConfig, Seq2SeqTransformer, VisionTransformer, ViTConfig
from glassformer.tasks import pipeline
from glassformer.tokenizers import ByteLevelBPE
from glassformer.training import save_model
from tests.pretrained.helpers import TEXTS, lm_dir, sentiment_dir, translate_dir


def _rows(tensor: torch.Tensor) -> set[tuple]:
    """Each row of a batch as a hashable tuple of its values (ids, or pixels)."""
    return {tuple(row.flatten().tolist()) for row in tensor.detach().cpu()}


def _reads(monkeypatch, embedding: Callable[[torch.nn.Module], torch.nn.Module], argv: list[str]) -> set[tuple]:
    """Every input row the embedding layer saw while the CLI ran `argv` (which must succeed)."""
    seen: set[tuple] = set()
    load = pipeline.load_predictor

    def hooked(*args, **kwargs):
        predictor = load(*args, **kwargs)
        embedding(predictor.model).register_forward_hook(lambda module, inputs, out: seen.update(_rows(inputs[0])))
        return predictor

    monkeypatch.setattr(pipeline, "load_predictor", hooked)
    assert main(argv) == 0
    monkeypatch.setattr(pipeline, "load_predictor", load)
    return seen


def test_sentiment_predict_and_explain_read_the_same_ids(tmp_path, monkeypatch, capsys):
    directory = sentiment_dir(tmp_path / "sentiment")
    text = "the movie was great"
    embedding = lambda model: model.encoder.embeddings.word_embeddings  # noqa: E731
    predicted = _reads(monkeypatch, embedding, ["predict", str(directory), text])
    explained = _reads(monkeypatch, embedding, ["explain", str(directory), "--json", text])
    capsys.readouterr()
    tokenizer = pipeline.load_predictor(directory).tokenizer
    ids = tuple(tokenizer.encode(text, add_special_tokens=True))
    assert ids[0] == tokenizer.special_tokens["[CLS]"] and ids[-1] == tokenizer.special_tokens["[SEP]"]
    baseline = tuple(i if i in tokenizer.special_tokens.values() else 0 for i in ids)
    assert predicted == {ids}
    assert explained == {ids, baseline}


@pytest.fixture(scope="module")
def mirrored_vit(tmp_path_factory) -> tuple[Path, Path]:
    """A saved ViT whose preset averages each image with its mirror, and a picture for it."""
    root = tmp_path_factory.mktemp("vit")
    torch.manual_seed(0)
    model = VisionTransformer(ViTConfig(image_size=28, patch_size=14, d_model=16, n_heads=2, n_layers=1, d_ff=32,
                                        num_classes=3))
    directory = save_model(root / "vit", model, task="vit", label_names=["shirt", "shoe", "bag"],
                           extra={"preset": {"mirror_average": True}})
    picture = root / "in.png"
    Image.fromarray((np.random.default_rng(0).random((28, 28)) * 255).astype(np.uint8)).save(picture)
    return directory, picture


def test_vit_explain_covers_both_views_of_a_mirror_averaged_prediction(mirrored_vit, monkeypatch, capsys):
    from glassformer.tasks.vit import MEAN, STD, load_image

    directory, picture = mirrored_vit
    embedding = lambda model: model.patch_embedding  # noqa: E731
    predicted = _reads(monkeypatch, embedding, ["predict", str(directory), str(picture), "--precision", "fp32"])
    explained = _reads(monkeypatch, embedding, ["explain", str(directory), "--json", "--method", "occlusion",
                                                str(picture)])
    scores = json.loads(capsys.readouterr().out.splitlines()[-1])
    pixels = (torch.as_tensor(load_image(picture)).float() / 255 - MEAN) / STD  # the task's reading, by hand
    image, mirror = tuple(pixels.flatten().tolist()), tuple(pixels.flip(-1).flatten().tolist())
    black = tuple(torch.full((28 * 28,), (0.0 - MEAN) / STD).tolist())  # float32, as the pixels
    assert predicted == {image, mirror}
    assert explained == {image, mirror, black}  # occlusion blacks out single patches: the rows seen are per view
    assert len(scores["scores"]) == 8 and scores["tokens"][4] == "patch 0,1 (mirrored view)"


def test_vit_explanation_is_of_the_averaged_probability(mirrored_vit):
    """The explained p(target) is the mean of the two views' class probabilities the prediction shows."""
    from glassformer.lens import explain

    directory, picture = mirrored_vit
    classifier = pipeline.load_predictor(directory)
    result = explain(classifier, picture, method="integrated-gradients", steps=64)
    with torch.no_grad():
        inputs = classifier.prepare([picture])
        views = [classifier.model(**view).logits.softmax(-1)[0] for view in inputs.passes]
    expected = (views[0] + views[1]) / 2
    assert result.target == classifier.label_names[int(expected.argmax())]
    assert result.probability == pytest.approx(float(expected.max()), abs=1e-6)
    assert abs(result.delta) < 1e-3  # completeness over both views' patches


@pytest.mark.slow  # reloading the dictionary hints from the de-en corpus takes ~13 s per command
def test_translator_with_hints_is_explained_on_the_hinted_source(tmp_path, monkeypatch, capsys):
    tokenizer = ByteLevelBPE("gpt2")
    tokenizer.train(TEXTS * 4 + ["der hund || hund = dog"], 300, special_tokens=["<pad>", "<s>", "</s>"],
                    progress=False)
    torch.manual_seed(0)
    config = Seq2SeqConfig(vocab_size=tokenizer.vocab_size, max_position=256, d_model=16, n_heads=2,
                           n_encoder_layers=1, n_decoder_layers=1, d_ff=32,
                           pad_token_id=tokenizer.special_tokens["<pad>"], bos_token_id=tokenizer.special_tokens["<s>"],
                           eos_token_id=tokenizer.special_tokens["</s>"])
    directory = save_model(tmp_path / "mt", Seq2SeqTransformer(config).eval(), task="translate", tokenizer=tokenizer,
                           extra={"max_length": 256, "data": "de-en", "seed": 0,
                                  "preset": {"hints": 2, "hint_max_count": 100, "beam_size": 2}})
    text = "Der Hund schläft im Haus."
    embedding = lambda model: model.embedding  # noqa: E731
    predicted = _reads(monkeypatch, embedding, ["predict", str(directory), text])
    explained = _reads(monkeypatch, embedding, ["explain", str(directory), "--json", "--method", "attention", text])
    capsys.readouterr()
    from glassformer.data.corpora import load_de_en
    from glassformer.tasks.translate import SourceHints

    hinted = SourceHints(load_de_en(seed=0, quiet=True), 2, 100)(text)
    assert hinted.startswith(text + " || ")  # the dictionary has hints for this sentence
    eos = config.eos_token_id
    source = tuple(tokenizer.encode_ordinary(hinted) + [eos])
    plain = tuple(tokenizer.encode_ordinary(text) + [eos])
    assert source in predicted and source in explained
    assert plain not in predicted and plain not in explained


def _hf_gpt2(directory: Path) -> "transformers.GPT2LMHeadModel":  # noqa: F821
    """A tiny random GPT-2 saved by transformers, with a byte-level BPE whose <|endoftext|> is id 0."""
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(["Hello world, hello there. The world is wide."] * 20,
                            trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    transformers.PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|endoftext|>",
                                         eos_token="<|endoftext|>").save_pretrained(directory)
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=bpe.get_vocab_size(), n_positions=256, n_embd=16, n_layer=2, n_head=2,
                                     bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # large random weights, so that the greedy continuation does not repeat one token
        for name, param in model.named_parameters():
            if ".ln_" in name or name.startswith("transformer.ln_f"):
                param.normal_(1.0 if name.endswith("weight") else 0.0, 0.3)
            else:
                param.normal_(0.0, 0.5)
    model.save_pretrained(directory)
    return model


def test_predict_on_a_gpt2_checkpoint_is_transformers_greedy_generation(tmp_path, monkeypatch, capsys):
    """The issue's failing command, `glassformer predict DIR "Hello world"`; reference: transformers' generate."""
    from transformers import AutoTokenizer

    directory = tmp_path / "gpt2"
    hf = _hf_gpt2(directory)
    prompt = AutoTokenizer.from_pretrained(directory)("Hello world", return_tensors="pt").input_ids
    expected = hf.generate(prompt, max_new_tokens=200, do_sample=False, pad_token_id=0)[0].tolist()
    embedding = lambda model: model.token_embedding  # noqa: E731
    seen: list[list[int]] = []
    load = pipeline.load_predictor

    def hooked(*args, **kwargs):
        predictor = load(*args, **kwargs)
        predictor.model.token_embedding.register_forward_hook(lambda m, inputs, out: seen.append(inputs[0][0].tolist()))
        return predictor

    monkeypatch.setattr(pipeline, "load_predictor", hooked)
    assert main(["predict", str(directory), "Hello world", "--json", "--precision", "fp32"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    monkeypatch.setattr(pipeline, "load_predictor", load)
    read = [token for step in seen for token in step]  # the prompt, then each new token fed back (KV cache)
    generated = expected[prompt.shape[1]:]
    ended = generated[-1] == 0
    assert seen[0] == prompt[0].tolist()  # read as transformers reads it: no <|endoftext|> in front
    # Every token fed is transformers' greedy sequence; the last one is not fed back (no step reads it).
    assert read == expected[:-1]
    assert len(set(generated)) >= 3 and result["prompt"] == "Hello world"
    assert result["text"] == AutoTokenizer.from_pretrained(directory).decode(generated[:-1] if ended else generated)
    explained = _reads(monkeypatch, embedding, ["explain", str(directory), "--json", "Hello world"])
    capsys.readouterr()
    assert tuple(prompt[0].tolist()) in explained  # explain reads the prompt as predict did


def test_a_saved_lm_reads_its_prompt_after_the_end_token_in_predict_and_explain(tmp_path, monkeypatch, capsys):
    directory = lm_dir(tmp_path / "lm")
    embedding = lambda model: model.token_embedding  # noqa: E731
    predicted = _reads(monkeypatch, embedding, ["predict", str(directory), "the film"])
    explained = _reads(monkeypatch, embedding, ["explain", str(directory), "--json", "the film"])
    capsys.readouterr()
    generator = pipeline.load_predictor(directory)
    assert isinstance(generator.model, DecoderLM)
    prompt = tuple([generator.tokenizer.special_tokens["<|endoftext|>"]] + generator.tokenizer.encode_ordinary("the film"))
    assert prompt in predicted and prompt in explained
    assert tuple(prompt[1:]) not in explained


def test_a_tokenizer_template_adds_nothing_to_what_lm_and_translator_read(tmp_path):
    """encode applies a tokenizer's template by default, as transformers does; the LM and translation
    predictors (and the logit lens's named token) place their own start and end tokens, as in training, so
    a template that an imported tokenizer.json may carry (a BOS, or Marian's "$A </s>") stays out."""
    from glassformer.lens import logit_lens
    from glassformer.tokenizers import Template
    from tests.pretrained.helpers import translate_dir

    generator = pipeline.load_predictor(lm_dir(tmp_path / "lm", kind="bpe"))
    tokenizer = generator.tokenizer
    tokenizer.post_processor = Template("<|endoftext|> $A")
    pieces = tokenizer.encode_ordinary("the film")
    assert tokenizer.encode("the film") == [tokenizer.special_tokens["<|endoftext|>"], *pieces]
    assert generator.prepare("the film").ids == [generator.start_ids + pieces]
    assert logit_lens(generator, "the film", token="m").token == tokenizer.encode_ordinary("m")[0]

    translator = pipeline.load_predictor(translate_dir(tmp_path / "mt"))
    eos = translator.model.config.eos_token_id
    translator.tokenizer.post_processor = Template("$A </s>")
    assert translator.tokenizer.encode("the film") == translator.tokenizer.encode_ordinary("the film") + [eos]
    assert translator._source_ids(["the film"]) == [translator.tokenizer.encode_ordinary("the film") + [eos]]


def test_translate_prints_the_greedy_translation_that_explain_reads(tmp_path, monkeypatch, capsys):
    """`translate --beam 1` and `explain` decode one translation, its end included, also where the search runs out
    of room and the end is forced (this untrained model never ends on its own). Reference: the decoder's
    embedding inputs in both commands, and the printed text decoded from them."""
    from glassformer.tasks import translate

    directory = translate_dir(tmp_path / "mt")
    text = TEXTS[0]
    fed: list[list[int]] = []
    load = translate.Translator.load.__func__

    def hooked(cls, *args, **kwargs):
        translator = load(cls, *args, **kwargs)
        translator.model.embedding.register_forward_hook(lambda m, inputs, out: fed.append(inputs[0][0].tolist()))
        return translator

    monkeypatch.setattr(translate.Translator, "load", classmethod(hooked))
    assert main(["translate", str(directory), "--beam", "1", "--precision", "fp32", text]) == 0
    printed = capsys.readouterr().out.strip()
    monkeypatch.undo()
    translator = pipeline.load_predictor(directory)
    config, tokenizer = translator.model.config, translator.tokenizer
    source, decoder = fed[0], [row[0] for row in fed[1:]]  # the source once, then one target token per step
    assert source == tokenizer.encode_ordinary(text) + [config.eos_token_id]
    assert decoder[0] == config.bos_token_id and config.eos_token_id not in decoder
    assert len(decoder) == translator.decode_steps(len(source))  # it ran out of room: the end was forced
    assert tokenizer.decode(decoder[1:]).strip() == printed

    last = len(decoder) - 1  # the step that wrote the (forced) end token
    explained = _reads(monkeypatch, lambda model: model.embedding,
                       ["explain", str(directory), "--method", "attention", "--position", str(last), text])
    shown = capsys.readouterr().out
    # Besides its own greedy search (one token a row), explain reads the source and the prefix before the end token.
    assert tuple(source) in explained
    assert max((row for row in explained if row[0] == config.bos_token_id), key=len) == tuple(decoder)
    assert shown.splitlines()[0].endswith(" ".join(tokenizer.id_to_token(i) for i in decoder[1:]) + ' </s>"')
    assert main(["explain", str(directory), "--method", "attention", "--position", str(last + 1), text]) == 2
    assert f"greedy translation's {last + 1} steps" in capsys.readouterr().err
