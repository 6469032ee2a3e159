"""German→English translation: train an encoder–decoder on the Ding dictionary, decode, score with BLEU and chrF.

1. data: the ``de-en`` sentence pairs (:func:`glassformer.data.corpora.load_de_en`: fixed-seed split,
   1,000 held-out test sentences), a target that joins alternatives ("What time is it?; What's the
   time?") trained as one pair per alternative (:func:`glassformer.data.dictionary.training_pairs`),
   optionally plus some of the dictionary's phrase pairs ("Fehlerschranke" → "error bound"), which
   teach words that no training sentence holds; no dictionary pair whose side (or an alternative in
   one) is a validation or test side is ever trained on (:func:`training_dictionary`);
2. the word-first curriculum (``dictionary_words``, ``dictionary_steps``, ``dictionary_share``): the
   dictionary's one-word translations of the most frequent training-source words ("Hund" → "dog")
   alone for the first steps, then the sentences, each batch keeping a share of word pairs
   (:class:`CurriculumBatches`). Measured with the quick model, the words first helped at every budget
   where mixing dictionary pairs into every batch from the start hurt;
3. vocabulary: one byte-level BPE shared by both languages, learned on the training pairs, with
   ``<pad>``, ``<s>`` and ``</s>`` (and ``<phrase>`` when phrase pairs are used) as its last ids; the
   source is ``pieces… </s>``, the decoder reads ``<s> pieces…`` and learns to predict
   ``pieces… </s>`` (teacher forcing); a phrase pair's source starts with ``<phrase>``, so the model
   can tell a dictionary headword from a sentence and a sentence still gets a sentence back
   (the tagging trick of Caswell et al., 2019, "Tagged Back-Translation"; measured here, phrase
   pairs tagged or not lowered BLEU within these presets' budgets, so neither preset uses them);
4. model: a :class:`~glassformer.models.seq2seq.Seq2SeqTransformer` (pre-norm, tied embeddings) trained
   by the shared :class:`~glassformer.training.Trainer` on label-smoothed cross-entropy, with padding
   masked on both sides;
5. batches hold about ``max_tokens`` padded tokens (source + target) rather than a fixed number of
   sentences: pairs are sorted by length and cut into batches once, and the trainer shuffles the
   order of those batches every epoch (fairseq's recipe), so short pairs fill big batches and
   little padding is computed;
6. decoding: greedy or beam search with the GNMT length penalty (:mod:`glassformer.inference.generate`);
   after training, the penalty's exponent is picked from ``ALPHA_GRID`` by BLEU on the validation
   split (a half-trained model puts so much probability on an early end token that beam search with
   the usual 0.6 returns translations a quarter shorter than the references, and loses to greedy);
   BLEU and chrF come from sacrebleu on the detokenised output (the BPE decodes back to plain text)
   against the raw reference sentences, with sacrebleu's default ``13a`` tokenisation. A reference
   that lists alternatives ("The teams are tied on points.; The teams are even on points.") counts
   each as a reference of its own (sacrebleu's multiple references), and a source listing as many
   alternatives is translated alternative by alternative
   (:func:`glassformer.data.dictionary.reference_items`); the score against each pair as written,
   one reference, is reported beside it;
7. optional dictionary hints (``hints=K``): K phrase pairs looked up by the source's own words, rarest
   first (:class:`glassformer.data.dictionary.HintRetriever`), appended to each source in training and
   at test time alike ("Ich rufe dich morgen an. || jdn. anrufen = to call sb. || …"), or instead
   (``fuzzy=True``, Neural Fuzzy Repair, Bulte & Tezcan 2019) the English side of the training pair the
   retrieval baseline finds for the source, a pair with the very same source excepted, so that in
   training a sentence never reads its own translation (:class:`FuzzyMatches`);
8. baselines (:class:`Baselines`), scored on the same split exactly as the model: retrieval (the
   English of the training pair sharing the rarest German words) and word by word (each German word
   replaced by its dictionary translation). ``train`` and ``evaluate`` print them beside the model.

Or the user's own pairs (``data=``: a TSV/CSV/JSONL file, two aligned text files ``src.txt,tgt.txt``
or ``hf:NAME``; :func:`glassformer.data.parallel.load_parallel`), in any language pair: the BPE is
learned on them, the split (theirs, or seeded) and the languages are recorded in the saved model,
and of the baselines only retrieval applies, since there is no dictionary for them (nor hints or
the word-first curriculum).
"""

from __future__ import annotations

import functools
import math
import random
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from glassformer._config import check_probabilities
from glassformer.data import cache_dir
from glassformer.data.batching import PAD_LABEL, pad_sequences
from glassformer.data.corpora import ParallelCorpus, load_de_en
from glassformer.data.dictionary import (
    HINT_SEPARATOR,
    HintRetriever,
    Lexicon,
    ReferenceItem,
    entry_alternatives,
    headword_tokens,
    reference_items,
    reference_streams,
    split_alternatives,
    training_pairs,
    word_tokens,
)
from glassformer.data.parallel import Columns, load_parallel, read_pairs
from glassformer.errors import UsageError
from glassformer.inference.generate import Hypothesis, WordBias, beam_search, greedy_search, target_ids
from glassformer.models.seq2seq import Seq2SeqConfig, Seq2SeqTransformer, shift_right
from glassformer.tasks.base import (
    ModelInputs,
    Option,
    TrainingSettings,
    is_checkpoint,
    load_pretrained,
    pick_preset,
    require_tokenizer,
    setting,
)
from glassformer.tasks.run import TrainingRun
from glassformer.tokenizers import special_token_policy
from glassformer.tokenizers.base import POLICY_HINT
from glassformer.training import TrainConfig, Trainer, distributed

TASK = "translate"
DESCRIPTION = ("encoder–decoder translation: German→English on the Ding dictionary sentences, or your own pairs "
               "(--data pairs.tsv, or src.txt,tgt.txt)")
# What the built-in de-en data translates; a model of the user's pairs records its own (or none).
DE_EN = ("de", "en")
LANGUAGE_NAMES = {"de": "German", "en": "English", "fr": "French", "es": "Spanish", "it": "Italian",
                  "nl": "Dutch", "pt": "Portuguese", "ru": "Russian", "zh": "Chinese", "ja": "Japanese",
                  "pl": "Polish", "sv": "Swedish", "tr": "Turkish", "uk": "Ukrainian", "cs": "Czech"}
PAD, BOS, EOS = "<pad>", "<s>", "</s>"
MAX_BEAM = 64  # beams beyond this cost memory and time without changing translations of this length
PHRASE = "<phrase>"  # first source token of a dictionary phrase pair (never of a sentence)


@dataclass(frozen=True)
class TranslatePreset(TrainingSettings):
    """A named recipe: vocabulary, model shape, batching, schedule and decoding settings."""

    name: str
    vocab_size: int = 8000
    d_model: int = 256
    n_heads: int = 4
    n_encoder_layers: int = 3
    n_decoder_layers: int = 3
    d_ff: int = 1024
    dropout: float = 0.1
    attn_dropout: float | None = setting(None, "dropout on the attention probabilities alone (None: --dropout)")
    ffn_dropout: float | None = setting(None, "dropout inside the feed-forward network, after its activation, alone "
                                              "(None: --dropout)")
    max_length: int = 64  # BPE tokens per side, </s> included; longer training pairs are left out
    extra_pairs: int = 0  # dictionary phrase pairs added to the training sentences (0: none)
    tag_phrases: bool = True  # start each phrase pair's source with <phrase>
    max_tokens: int = 4000  # padded source + target tokens per batch
    max_steps: int | None = 1000  # None: the steps that fit in `minutes`
    lr: float = 1e-3
    warmup_steps: int = 200
    schedule: str = "cosine"
    min_lr_ratio: float = 0.05
    weight_decay: float = 0.01
    label_smoothing: float = 0.1
    word_dropout: float = setting(0.0, "in training, hide each source token and each earlier target token from "
                                       "attention with this probability (word dropout; 0: off)")
    eval_every: int = 500
    beam_size: int = 4  # the default for `evaluate` and the translator; 1 is greedy
    alpha: float = 0.6  # GNMT length-penalty exponent (replaced by the tuned one when tune_alpha)
    tune_alpha: bool = True  # after training, pick alpha from ALPHA_GRID by validation BLEU
    hints: int = setting(0, "dictionary phrase pairs appended to every source (training and test alike), rarest "
                            "word first, looked up by the source's words; 0: none")
    hint_max_count: int = setting(100, "with --hints: words seen more often than this in the training sources get "
                                       "no hint")
    fuzzy: bool = setting(False, "Neural Fuzzy Repair: append to every source (training and test alike) the English "
                                 "side of the nearest other training pair, as the retrieval baseline finds it")
    dictionary_bias: float = setting(0.0, "dictionary-guided decoding: the search adds this to the log-probability "
                                          "of each next piece of the dictionary translation of every source word seen "
                                          "at most 100 times in training, until it is written (0: off); after "
                                          "training it is picked from DICTIONARY_BIAS_GRID by validation BLEU")
    dictionary_training: bool = setting(False, "with --dictionary-bias: add the same favouring to the logits in "
                                               "training too, so the model learns beside the lexicon (Arthur, "
                                               "Neubig & Nakamura 2016) instead of meeting it only in the search")
    dictionary_words: int = setting(0, "word-first curriculum: train on the dictionary pairs (German word = its "
                                       "one-word English translation) of this many of the most frequent "
                                       "training-source words; 0: no dictionary pairs, no curriculum")
    dictionary_steps: int = setting(0, "with --dictionary-words: the first this many steps train on those word "
                                       "pairs alone, then on the sentences")
    dictionary_share: float = setting(0.0, "with --dictionary-words: after the word-first steps, this fraction of "
                                           "each batch's pairs are still word pairs, so the words do not fade")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_tokens < 2 * self.max_length:
            raise ValueError(f"max_tokens={self.max_tokens} cannot hold one pair of max_length={self.max_length}")
        check_probabilities(self, "word_dropout", "label_smoothing", "attn_dropout", "ffn_dropout")
        if self.beam_size < 1:
            raise ValueError(f"beam_size must be >= 1, got {self.beam_size}")
        if self.hints < 0:
            raise ValueError(f"hints must be >= 0 (0: no dictionary hints), got {self.hints}")
        if self.hints and self.fuzzy:
            raise ValueError("hints and fuzzy both append to the source; choose one")
        if self.dictionary_words < 0 or self.dictionary_steps < 0:
            raise ValueError(f"dictionary_words and dictionary_steps must be >= 0, got {self.dictionary_words} and "
                             f"{self.dictionary_steps}")
        if self.dictionary_bias < 0:
            raise ValueError(f"dictionary_bias must be >= 0 (0: off), got {self.dictionary_bias}")
        if self.dictionary_training and not self.dictionary_bias:
            raise ValueError("dictionary_training adds the dictionary_bias weight in training; set dictionary_bias > 0")
        if not 0.0 <= self.dictionary_share < 1.0:
            raise ValueError(f"dictionary_share must be in [0, 1) (a fraction of each batch), got "
                             f"{self.dictionary_share}")

    def model_config(self, tokenizer: Any) -> Seq2SeqConfig:
        """The encoder–decoder this preset trains, sized to `tokenizer`'s vocabulary."""
        special = tokenizer.special_tokens
        return Seq2SeqConfig(vocab_size=tokenizer.vocab_size, max_position=max(256, 2 * self.max_length),
                             d_model=self.d_model, n_heads=self.n_heads, n_encoder_layers=self.n_encoder_layers,
                             n_decoder_layers=self.n_decoder_layers, d_ff=self.d_ff, dropout=self.dropout,
                             attn_dropout=self.attn_dropout, ffn_dropout=self.ffn_dropout,
                             norm_first=True, tie_embeddings=True, pad_token_id=special[PAD],
                             bos_token_id=special[BOS], eos_token_id=special[EOS])

    def train_config(self, out_dir: str | None, *, seed: int = 0, progress: bool = True) -> TrainConfig:
        """The trainer settings this preset stands for (one "example" is one token-budgeted batch)."""
        return TrainConfig(out_dir=out_dir, max_steps=self.max_steps, batch_size=1, lr=self.lr,
                           weight_decay=self.weight_decay, betas=(0.9, 0.98), schedule=self.schedule,
                           warmup_steps=self.warmup_steps, min_lr_ratio=self.min_lr_ratio,
                           eval_every=self.eval_every, eval_batch_size=1, metric="loss", seed=seed,
                           progress=progress, log_every=50, **self.trainer_settings())


PRESETS: dict[str, TranslatePreset] = {
    # A small model that learns the frequent words and phrases within minutes: d 128, 2+2 layers, batches of
    # 1,200 tokens, as many steps as fit in 4.3 minutes, then the scoring (about 6,000 steps on 2 idle cores of
    # an Intel Xeon with AVX512-BF16 and AMX; benchmarks/RESULTS.md, 7 December). The search favours the
    # dictionary's words (dictionary_bias, weight picked on validation): test BLEU 3.2-3.9 without, 4.7 with,
    # and chrF +2.5 (RESULTS, "Dictionary-guided decoding"). It trains in float32:
    # on batches of varying shape bfloat16 recompiled oneDNN's matrix kernels at every new shape and ran at
    # 9.5 steps a second against float32's 22. Word dropout 0.2 lowered the validation loss from 3.28 (none)
    # to 3.16 at the same budget; model dropout 0.1 (3.37: its steps are slower), a d-192 model (3.46), the
    # word-first curriculum and 20,000 dictionary phrase pairs mixed in all scored below it.
    "quick": TranslatePreset("quick", vocab_size=2000, d_model=128, n_heads=4, n_encoder_layers=2,
                             n_decoder_layers=2, d_ff=512, dropout=0.0, max_tokens=1200, max_steps=None,
                             minutes=4.3, warmup_steps=100, eval_every=1000, lr=2e-3, word_dropout=0.2,
                             precision="fp32", dictionary_bias=3.0),
    # A small Transformer (d 256, 2 encoder and 4 decoder layers, tied embeddings) on the same 2,000-id BPE, in
    # small batches, for as many steps as fit in 28 minutes (5,400–5,900 on a 2-core AMD EPYC, 12–13 passes), in
    # float32 (see quick), with the dictionary's favouring in training too (dictionary_training: chrF 26.0 → 27.1
    # and 28.0 in two runs, BLEU 6.32 → 6.13 and 6.50, on an Intel Xeon with AMX, at 3+3 layers).
    # The layers sit in the decoder: at the same cost a step, 2+4 ended at validation loss 2.7625 and 2.7755 in two
    # runs where 3+3 ended at 2.7987 and 2.8134 and 4+2 at 2.8627 (thirteenth session; test BLEU 5.96 and 5.87, chrF
    # 27.23 and 26.41, against 3+3's 5.78 / 26.51 and 5.12 / 26.66).
    # Dropout 0.3 (the literature's for ~20k sentences) still lagged 0.33 in validation loss at step 5,000;
    # dropout 0 overfits after step 3,000; three dictionary hints per source halve the pairs a batch holds
    # (benchmarks/RESULTS.md, 7 December, eighth session). Dropout 0.15 on the residual branches alone (attn_dropout
    # and ffn_dropout 0, fairseq's placement) makes a step about 1.2x cheaper than 0.1 everywhere and, at the same
    # number of steps, reached the same validation loss (2.8409 against 2.8414 at about 4,850 steps; 0.1 on the
    # residuals over-fits after step 5,000, 0.2 learns more slowly), so the budget buys more steps (ninth and tenth
    # sessions).
    "full": TranslatePreset("full", vocab_size=2000, d_model=256, n_heads=4, n_encoder_layers=2,
                            n_decoder_layers=4, d_ff=1024, dropout=0.15, attn_dropout=0.0, ffn_dropout=0.0,
                            max_tokens=1500, max_steps=None,
                            minutes=28.0, warmup_steps=300, eval_every=1000, lr=1e-3, word_dropout=0.1,
                            precision="fp32", dictionary_bias=3.0, dictionary_training=True),
}


@dataclass(frozen=True)
class Measured:
    """What a preset reached when it was measured (benchmarks/RESULTS.md): what `train` prints as expected."""

    bleu: float  # multi-reference test BLEU, beam search with the tuned length penalty
    chrf: float
    retrieval_bleu: float  # the retrieval baseline's BLEU printed by the same run
    seconds: float  # wall time of `train`, scoring included
    where: str  # the machine and precision: "2 idle cores, AVX512-BF16, bf16"

    def line(self) -> str:
        """One line for the training report."""
        minutes, seconds = divmod(round(self.seconds), 60)
        return (f"test BLEU {self.bleu:.2f}, chrF {self.chrf:.1f} (retrieval baseline {self.retrieval_bleu:.2f}) "
                f"in {minutes}:{seconds:02d} on {self.where}")


# The figures of each preset as it stands; None until the current recipe has been measured.
MEASURED: dict[str, Measured | None] = {
    "quick": Measured(4.14, 24.17, 3.51, 262, "2 idle cores of an Intel Xeon with AVX512-BF16 and AMX, fp32"),
    # The lower of two runs of the preset as it stands (2+4 layers) on the EPYC (5.96 / 27.23 in 1,749 s the other).
    "full": Measured(5.87, 26.41, 3.51, 1623, "2 idle cores of an AMD EPYC with AVX512-BF16 (no AMX), fp32"),
}


def get_preset(name: str = "quick", **overrides: Any) -> TranslatePreset:
    """The preset called `name`, with any field overridden."""
    return pick_preset(PRESETS, name, TASK, overrides)


def default_out_dir(preset: TranslatePreset) -> Path:
    """Where `train` saves a model when no directory is given: ``cache_dir()/models/translate-PRESET``."""
    return cache_dir() / "models" / f"{TASK}-{preset.name}"


# --- text → ids ----------------------------------------------------------------------------------

def train_tokenizer(pairs: Sequence[tuple[str, str]], vocab_size: int, extra_special: Sequence[str] = ()) -> Any:
    """One byte-level BPE for both languages, learned on both sides of `pairs`.

    Its last ids are <pad>, <s>, </s> and then `extra_special`.
    """
    from glassformer.tokenizers import ByteLevelBPE

    tokenizer = ByteLevelBPE("gpt2")
    tokenizer.train((side for pair in pairs for side in pair), vocab_size,
                    special_tokens=[PAD, BOS, EOS, *extra_special], progress=False)
    return tokenizer


Example = tuple[list[int], list[int]]  # (source ids, target ids), both ending in </s>


def encode_pairs(tokenizer: Any, pairs: Iterable[tuple[str, str]], max_length: int,
                 source_prefix: Sequence[int] = ()) -> list[Example]:
    """``(source_prefix + source pieces + </s>, target pieces + </s>)`` per pair.

    Pairs longer than `max_length` on either side are left out.
    """
    eos = tokenizer.special_tokens[EOS]
    out = []
    for source, target in pairs:
        src = [*source_prefix, *tokenizer.encode_ordinary(source), eos]
        tgt = tokenizer.encode_ordinary(target) + [eos]
        if len(src) <= max_length and len(tgt) <= max_length:
            out.append((src, tgt))
    return out


def training_examples(tokenizer: Any, sentences: Sequence[tuple[str, str]], phrases: Sequence[tuple[str, str]],
                      max_length: int) -> list[Example]:
    """Encoded sentence pairs, then phrase pairs, whose sources start with <phrase> when `tokenizer` has that token."""
    tag = tokenizer.special_tokens.get(PHRASE)
    return (encode_pairs(tokenizer, sentences, max_length)
            + encode_pairs(tokenizer, phrases, max_length, source_prefix=[] if tag is None else [tag]))


def token_batches(examples: Sequence[Example], max_tokens: int, seed: int = 0) -> list[list[Example]]:
    """Cut length-sorted pairs into batches, padded size ``n × (longest source + longest target)`` <= `max_tokens`."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)  # equal lengths come in random order
    order.sort(key=lambda i: (len(examples[i][0]), len(examples[i][1])))
    batches, current, longest_src, longest_tgt = [], [], 0, 0
    for i in order:
        src, tgt = examples[i]
        src_len, tgt_len = max(longest_src, len(src)), max(longest_tgt, len(tgt))
        if current and (len(current) + 1) * (src_len + tgt_len) > max_tokens:
            batches.append(current)
            current, src_len, tgt_len = [], len(src), len(tgt)
        current.append(examples[i])
        longest_src, longest_tgt = src_len, tgt_len
    if current:
        batches.append(current)
    return batches


class Seq2SeqCollator:
    """Turn one batch of (source, target) id lists into padded tensors and masks for teacher forcing."""

    def __init__(self, pad_id: int, bos_id: int, bias: "TrainingBias | None" = None) -> None:
        self.pad_id = pad_id
        self.bos_id = bos_id
        self.bias = bias  # dictionary_training: the favoured pieces of each pair, added to the logits

    def __call__(self, items: Sequence[Sequence[Example]]) -> dict[str, torch.Tensor]:
        pairs = [pair for batch in items for pair in batch]
        if not pairs:
            raise ValueError("cannot collate an empty batch")
        src_ids = pad_sequences([src for src, _ in pairs], self.pad_id)  # (B, S)
        labels = pad_sequences([tgt for _, tgt in pairs], PAD_LABEL)  # (B, T): what each position predicts
        batch = {"src_ids": src_ids, "src_attention_mask": (src_ids != self.pad_id).long(),
                 "tgt_ids": shift_right(labels, self.bos_id, self.pad_id),  # (B, T): <s> y_1 .. y_{T-1}
                 "tgt_attention_mask": (labels != PAD_LABEL).long(), "labels": labels}
        if self.bias is not None:
            batch.update(self.bias.indices(pairs))
        return batch


class TrainingBias:
    """Dictionary-guided decoding's favouring in teacher-forced training: for each pair, at each target position,
    the pieces a :class:`~glassformer.inference.generate.WordBias` search would favour after the reference prefix
    there, found once per pair from the German text it was encoded from.

    :meth:`indices` gives a batch's ``bias_index`` ``(K, 3)`` (row, position, token) and ``bias_value`` ``(K,)``,
    which the loss adds to the logits before the softmax: what the search adds to the log-probabilities before
    renormalising. A model trained so learns its word choices beside the lexicon (Arthur, Neubig & Nakamura 2016).
    """

    def __init__(self, dictionary: "DictionaryBias", weight: float) -> None:
        self.dictionary = dictionary
        self.weight = weight
        self._positions: dict[tuple[tuple[int, ...], tuple[int, ...]], list[tuple[int, int]]] = {}

    def add(self, texts: Sequence[str], examples: Sequence[Example]) -> None:
        """Learn the favoured pieces of `examples`, each encoded from the German text at the same index."""
        if len(texts) != len(examples):
            raise ValueError(f"{len(texts)} texts for {len(examples)} examples")
        for text, (src, tgt) in zip(texts, examples):
            search = WordBias([self.dictionary.words(text)], self.weight)
            self._positions[(tuple(src), tuple(tgt))] = [
                (t, token) for t in range(len(tgt)) for token in dict.fromkeys(search.pieces(0, tgt[:t]))]

    def indices(self, pairs: Sequence[Example]) -> dict[str, torch.Tensor]:
        """``bias_index`` and ``bias_value`` of a batch of `pairs` (a pair never added favours nothing)."""
        found = [(row, t, token) for row, (src, tgt) in enumerate(pairs)
                 for t, token in self._positions.get((tuple(src), tuple(tgt)), ())]
        index = torch.tensor(found, dtype=torch.long).reshape(-1, 3)
        return {"bias_index": index, "bias_value": torch.full((len(found),), self.weight)}


# --- the word-first curriculum ------------------------------------------------------------------

def held_out_sides(corpus: ParallelCorpus) -> set[str]:
    """Every side of the validation and test pairs, whole and split into its alternatives."""
    sides = {side.strip() for pair in corpus.validation + corpus.test for side in pair}
    return sides | {alternative for side in list(sides) for alternative in split_alternatives(side)}


def training_dictionary(corpus: ParallelCorpus) -> list[tuple[str, str]]:
    """The corpus's extra phrase pairs that may be trained on: no side, nor an alternative in one, is held out.

    Held out: :func:`held_out_sides`. ``load_de_en`` leaves pairs sharing a whole side with a
    validation or test pair out of ``extra`` already; this also drops ("Hallo; Servus", "hello; hi")
    when "Hallo" is a validation source, and holds for a corpus made by hand.
    """
    held_out = held_out_sides(corpus)

    def clean(side: str) -> bool:
        return side.strip() not in held_out and not held_out.intersection(entry_alternatives(side))

    return [(de, en) for de, en in corpus.extra if clean(de) and clean(en)]


def dictionary_pairs(corpus: ParallelCorpus, n_words: int, lexicon: Lexicon | None = None) -> list[tuple[str, str]]:
    """(German word, English word) for the `n_words` most frequent training-source words that have a translation.

    Each word's translation is its :class:`~glassformer.data.dictionary.Lexicon` one-word
    translation, built from :func:`training_dictionary` alone unless `lexicon` is given; a pair
    with a side equal to a validation or test side (or one of its alternatives) is never returned.
    Words of equal frequency come in alphabetical order.
    """
    if lexicon is None:
        lexicon = Lexicon(training_dictionary(corpus), [target for _, target in training_pairs(corpus.train)])
    held_out = held_out_sides(corpus)
    counts = Counter(word.lower() for source, _ in corpus.train for word in headword_tokens(source))
    pairs: list[tuple[str, str]] = []
    for word, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        if len(pairs) == n_words:
            break
        english = lexicon.word_translation(word)
        german = lexicon.written.get(word)
        if english is not None and german not in held_out and english not in held_out:
            pairs.append((german, english))
    return pairs


class CurriculumBatches(Sequence):
    """Training batches that teach the words first: word pairs alone for `word_steps` steps, then sentences.

    The trainer shuffles batch indices every epoch; which kind of batch an index gives depends on
    the step the trainer is at (:meth:`follow`), so the switch happens at the same step whatever
    the order. In the word phase each step takes the next batch of word pairs (a fresh shuffle of
    their batches per pass, one batch per process under DDP). After it, index ``i`` gives sentence
    batch ``i`` plus word pairs drawn with a seed of (seed, step, i), as many as make them
    `share` of the batch's pairs; the sentence batches were cut to ``1 − share`` of the token
    budget, so the padded batch still fits it. Deterministic in (step, index): a resumed run sees
    the batches an uninterrupted one would.
    """

    def __init__(self, sentence_batches: Sequence[Sequence[Example]], word_examples: Sequence[Example], *,
                 word_steps: int, share: float, max_tokens: int, seed: int = 0, world_size: int = 1,
                 rank: int = 0) -> None:
        if not sentence_batches or not word_examples:
            raise ValueError("a curriculum needs sentence batches and word pairs")
        self.sentence_batches = list(sentence_batches)
        self.word_examples = list(word_examples)
        self.word_batches = token_batches(self.word_examples, max_tokens, seed)
        self.word_steps = word_steps
        self.share = share
        self.seed = seed
        self.world_size = world_size
        self.rank = rank
        self._step: Callable[[], int] | None = None
        self._passes: dict[int, list[int]] = {}

    def follow(self, step: Callable[[], int]) -> None:
        """Read the number of optimizer steps taken so far from `step` (``lambda: trainer.progress.step``)."""
        self._step = step

    def __len__(self) -> int:
        return len(self.sentence_batches)

    def __getitem__(self, index: int) -> list[Example]:
        if self._step is None:
            raise RuntimeError("CurriculumBatches.follow(step) must be called before the batches are read")
        step = self._step()
        if step < self.word_steps:
            return self._word_batch(step * self.world_size + self.rank)
        batch = list(self.sentence_batches[index])
        extra = round(len(batch) * self.share / (1.0 - self.share))
        rng = random.Random((self.seed * 1_000_003 + step) * 1_000_003 + index)
        return batch + rng.sample(self.word_examples, min(extra, len(self.word_examples)))

    def _word_batch(self, slot: int) -> list[Example]:
        n = len(self.word_batches)
        passed, position = divmod(slot, n)
        if passed not in self._passes:
            order = list(range(n))
            random.Random(self.seed * 1_000_003 + passed).shuffle(order)
            self._passes = {passed: order}  # one pass at a time is all a run reads
        return self.word_batches[self._passes[passed][position]]


def curriculum_data(sentences: Sequence[Example], words: Sequence[Example], recipe: TranslatePreset, seed: int,
                    world_size: int = 1, rank: int = 0) -> list[list[Example]] | CurriculumBatches:
    """The trainer's batches: token-budgeted sentence batches, inside a :class:`CurriculumBatches` when there are words."""
    if not words or (recipe.dictionary_steps == 0 and recipe.dictionary_share == 0):
        return token_batches(sentences, recipe.max_tokens, seed)
    sentence_tokens = max(int(recipe.max_tokens * (1.0 - recipe.dictionary_share)), 2 * recipe.max_length)
    return CurriculumBatches(token_batches(sentences, sentence_tokens, seed), words,
                             word_steps=recipe.dictionary_steps, share=recipe.dictionary_share,
                             max_tokens=recipe.max_tokens, seed=seed, world_size=world_size, rank=rank)


# --- training ------------------------------------------------------------------------------------

def _logits(model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    logits = model(batch["src_ids"], batch["tgt_ids"], batch["src_attention_mask"], batch["tgt_attention_mask"]).logits
    if "bias_index" in batch:  # dictionary_training (TrainingBias): the search's favouring, in training too
        logits = logits.index_put(tuple(batch["bias_index"].T), batch["bias_value"].to(logits.dtype), accumulate=True)
    return logits


LossFn = Callable[[nn.Module, Mapping[str, torch.Tensor]], torch.Tensor]


def drop_words(mask: torch.Tensor, p: float) -> torch.Tensor:
    """Hide each real token of a ``(B, T)`` attention mask from attention with probability `p` (never position 0).

    Word dropout (Sennrich, Haddow and Birch, 2016; Gal and Ghahramani, 2016) on the token level: the dropped
    token is not seen as a key by any query, so the model must translate from the rest of the sentence.
    """
    keep = torch.rand(mask.shape, device=mask.device) >= p
    keep[:, 0] = True  # the first source token, and the decoder's <s>, stay: every query keeps a key
    return mask * keep.to(mask.dtype)


def smoothed_loss(label_smoothing: float, word_dropout: float = 0.0) -> LossFn:
    """A trainer loss_fn: cross-entropy against (1 − ε)·one-hot + ε/V, averaged over the real target tokens.

    The loss is taken in float32 whatever precision the trainer runs the forward pass in (its
    ``precision`` setting: bf16 autocast where the hardware computes bf16 natively). With `word_dropout`,
    a model in training mode sees each source token and each earlier target token with that probability
    hidden (:func:`drop_words`); what it must predict is unchanged.
    """

    def loss_fn(model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if word_dropout > 0.0 and model.training:
            batch = {**batch, "src_attention_mask": drop_words(batch["src_attention_mask"], word_dropout),
                     "tgt_attention_mask": drop_words(batch["tgt_attention_mask"], word_dropout)}
        logits = _logits(model, batch)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), batch["labels"].reshape(-1),
                               ignore_index=PAD_LABEL, label_smoothing=label_smoothing)

    return loss_fn


def token_nll(model: nn.Module, loader: Iterable) -> dict[str, float]:
    """Mean negative log-likelihood per target token (no smoothing) and the number of tokens scored."""
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items()}
        logits = _logits(model, batch)
        total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), batch["labels"].reshape(-1),
                                       ignore_index=PAD_LABEL, reduction="sum"))
        count += int((batch["labels"] != PAD_LABEL).sum())
    if count == 0:
        raise ValueError("cannot score an empty split")
    return {"loss": total / count, "n_tokens": count}


@dataclass
class TranslateRun:
    """What `train` reports: where the model went and how well it translates the test split."""

    out_dir: Path
    preset: TranslatePreset  # with the alpha and the dictionary weight that were chosen, when tuned
    validation_loss: float
    bleu: float  # beam search (greedy when beam_size is 1), every alternative of a reference a reference
    chrf: float
    bleu_greedy: float
    chrf_greedy: float
    n_test: int  # test items: source alternatives aligned with reference alternatives count one each
    beam_size: int
    steps: int
    train_seconds: float
    total_seconds: float
    bleu_single: float = float("nan")  # beam search, one reference per test pair as written (the old figure)
    bleu_signature: str = ""
    baselines: dict[str, float] = field(default_factory=dict)  # Baselines.scores() on the same test split
    data: str = "de-en"  # the data trained on: de-en, or the user's spec
    languages: tuple[str | None, str | None] = DE_EN
    # The settings as trained, before the length penalty and the dictionary weight were picked on validation: what
    # is compared with the preset for "your settings differ" (None: `preset`).
    trained: TranslatePreset | None = None

    def json(self) -> dict[str, Any]:
        """The figures as one JSON object (``train translate --json``)."""
        return {"bleu": self.bleu, "chrf": self.chrf, "n": self.n_test, "bleu_single": self.bleu_single,
                "bleu_signature": self.bleu_signature, "beam_size": self.beam_size,
                "alpha": self.preset.alpha, "bleu_greedy": self.bleu_greedy, "chrf_greedy": self.chrf_greedy,
                **self.baselines, "validation_loss": self.validation_loss, "steps": self.steps,
                "train_seconds": round(self.train_seconds, 1), "total_seconds": round(self.total_seconds, 1),
                "out": str(self.out_dir)}

    def report(self) -> str:
        """The figures as lines for a person, the baselines and what the preset is expected to reach."""
        references = (f"every alternative a reference; {self.bleu_signature}); one reference per pair as written: "
                      f"BLEU {self.bleu_single:.2f}" if self.data == "de-en" else f"{self.bleu_signature})")
        return (f"test BLEU {self.bleu:.2f}, chrF {self.chrf:.2f} (n={self.n_test}, {references}\n"
                f"beam {self.beam_size}, length-penalty alpha {self.preset.alpha}; greedy: BLEU {self.bleu_greedy:.2f}, chrF "
                f"{self.chrf_greedy:.2f}; validation loss {self.validation_loss:.4f}; {self.steps} steps, training "
                f"{self.train_seconds:.0f} s, total {self.total_seconds:.0f} s\n"
                f"{baseline_line(self.bleu, self.baselines)}\n{expected_line(self.trained or self.preset, self.data)}\n"
                f"saved to {self.out_dir}")


def baseline_line(bleu: float, baselines: Mapping[str, float]) -> str:
    """The baselines' scores beside a model's test BLEU, saying whether the model beats retrieval."""
    if not baselines:
        return "baselines: none (they need the training data; the model's is not stored with it)"
    verdict = ("the model LOSES to the retrieval baseline" if bleu < baselines["retrieval_bleu"]
               else "the model beats the retrieval baseline")
    words = (f"word by word BLEU {baselines['dictionary_bleu']:.2f}, chrF {baselines['dictionary_chrf']:.2f}"
             if "dictionary_bleu" in baselines else "word by word: none (no dictionary for this data)")
    return (f"baselines on the same split: retrieval BLEU {baselines['retrieval_bleu']:.2f}, chrF "
            f"{baselines['retrieval_chrf']:.2f}; {words}: {verdict}")


def expected_line(preset: TranslatePreset, data: str = "de-en") -> str:
    """What the preset reached when it was measured (:data:`MEASURED`), and whether these settings are that preset's."""
    if data != "de-en":
        return "expected: no measured figures for your data (the presets were measured on de-en)"
    measured = MEASURED.get(preset.name)
    if measured is None:
        return f"expected: the {preset.name!r} preset's current recipe has no measured figures yet"
    reference = PRESETS.get(preset.name)
    changed = reference is None or replace(preset, alpha=reference.alpha) != reference
    return (f"expected from the {preset.name!r} preset: {measured.line()}"
            + ("; your settings differ from it" if changed else ""))


TRAIN_OPTIONS = (
    Option("--beam", "test_beam", "beam size for the test score (1: greedy; default: the preset's)", type=int),
    Option("--data", "data", "de-en (the default), a TSV/CSV/JSONL file of pairs, two aligned text files "
                             "SRC.txt,TGT.txt, or hf:NAME (a datasets folder or hub set)"),
    Option("--validation-data", "validation_data", "own data: pairs of the same shape to pick the best checkpoint "
                                                   "and length penalty on (default: a seeded cut of --data)"),
    Option("--test-data", "test_data", "own data: pairs of the same shape to score the model on (default: a "
                                       "seeded cut of --data)"),
    Option("--source-column", "source_column", "the column holding the source: a header's name, or a field "
                                               "number (1, 2, ...) in a file without a header"),
    Option("--target-column", "target_column", "the column holding the target (as --source-column)"),
    Option("--source-language", "source_language", "the source language's code (de, fr, ...): recorded in the "
                                                   "model, and picks the side of hf: translation records"),
    Option("--target-language", "target_language", "the target language's code (as --source-language)"),
)
EVAL_OPTIONS = (Option("--beam", "beam_size", "translate: beam size (1: greedy; default: the model's)", type=int),)


def _phrase_pairs(corpus: ParallelCorpus, extra_pairs: int, seed: int) -> list[tuple[str, str]]:
    if extra_pairs <= 0:
        return []
    eligible = training_dictionary(corpus)
    return random.Random(seed).sample(eligible, min(extra_pairs, len(eligible)))


class SourceHints:
    """Appends dictionary hints to a German source (:class:`~glassformer.data.dictionary.HintRetriever`).

    The retriever is built from the corpus's training-eligible phrase pairs and training sentences
    only, and looks entries up by the source's own words; in training and at test time alike.
    """

    def __init__(self, corpus: ParallelCorpus, k: int, max_count: int) -> None:
        self.retriever = HintRetriever(corpus.extra, [s for s, _ in corpus.train], [t for _, t in corpus.train])
        self.k = k
        self.max_count = max_count

    def __call__(self, source: str) -> str:
        return self.retriever.annotate(source, self.k, self.max_count)


class FuzzyMatches:
    """Neural Fuzzy Repair's input (Bulte & Tezcan 2019): a source, then the English side of the training pair
    that :class:`RetrievalBaseline` finds for it, after `separator`.

    A training pair whose source is the very same sentence is never the match: in training a sentence
    would otherwise read its own translation, and no validation or test source is a training source.
    """

    def __init__(self, pairs: Sequence[tuple[str, str]], separator: str = HINT_SEPARATOR) -> None:
        self.retrieval = RetrievalBaseline(pairs)
        self.separator = separator
        self._same: dict[str, list[int]] = {}
        for index, (source, _) in enumerate(self.retrieval.pairs):
            self._same.setdefault(source, []).append(index)

    def match(self, source: str) -> tuple[str, str]:
        """The training pair matched to `source`."""
        return self.retrieval.pairs[self.retrieval.nearest(source, skip=self._same.get(source, ()))]

    def __call__(self, source: str) -> str:
        return source + self.separator + self.match(source)[1]


def _hinted(pairs: Sequence[tuple[str, str]], hints: Callable[[str], str] | None, tokenizer: Any,
            max_length: int) -> list[tuple[str, str]]:
    """`pairs` with hints appended to each source, unless that would make the source longer than `max_length`."""
    if hints is None:
        return list(pairs)
    out = []
    for source, target in pairs:
        annotated = hints(source)
        fits = len(tokenizer.encode_ordinary(annotated)) < max_length
        out.append((annotated if fits else source, target))
    return out


def _add_bias(bias: TrainingBias, pairs: Sequence[tuple[str, str]], hinted_pairs: Sequence[tuple[str, str]],
              tokenizer: Any, max_length: int) -> None:
    """Teach `bias` the favoured pieces of `pairs` as training encodes them: `hinted_pairs` are the same pairs as
    :func:`_hinted` gives them to training (the words come from each pair's own source)."""
    texts, examples = [], []
    for (source, _), hinted in zip(pairs, hinted_pairs, strict=True):
        encoded = encode_pairs(tokenizer, [hinted], max_length)
        if encoded:  # pairs too long for training are left out there too
            texts.append(source)
            examples.append(encoded[0])
    bias.add(texts, examples)


def _own_corpus(recipe: TranslatePreset, data: str, validation_data: str | None, test_data: str | None,
                columns: Columns, seed: int, progress: bool) -> ParallelCorpus:
    """The user's pairs, refused with one line before anything is written when they (or the settings) cannot work."""
    if recipe.fuzzy:
        raise UsageError(f"--fuzzy matches against the de-en training pairs, which a model saved from your own data "
                         f"(--data {data}) could not find again when reloaded; leave it off")
    needs = [name for name in ("hints", "dictionary_words", "extra_pairs") if getattr(recipe, name)]
    if needs:
        flags = ", ".join("--" + name.replace("_", "-") for name in needs)
        raise UsageError(f"{flags} read the de-en dictionary; with your own data (--data {data}) leave them at 0")
    return load_parallel(data, validation_data=validation_data, test_data=test_data, columns=columns, seed=seed,
                         progress=progress)


def train(preset: str | TranslatePreset = "quick", out: str | Path | None = None, *,
          corpus: ParallelCorpus | None = None, data: str | None = None, validation_data: str | None = None,
          test_data: str | None = None, source_column: str | None = None, target_column: str | None = None,
          source_language: str | None = None, target_language: str | None = None, resume: bool = False,
          overwrite: bool = False, seed: int = 0, progress: bool = True, test_beam: int | None = None,
          **overrides: Any) -> TranslateRun:
    """Train a translation model (German→English by default), score it on the test split (BLEU, chrF), save it to `out`.

    `data` names the user's own pairs (:func:`glassformer.data.parallel.load_parallel`: a table, two
    aligned text files ``src.txt,tgt.txt`` or ``hf:NAME``, with optional `validation_data` and
    `test_data` of the same shape); they are read, and refused if bad, before anything is written.
    `overrides` replace fields of the preset (``max_steps=50`` ...). `corpus` replaces the ``de-en``
    data (tests use a small one). Checkpoints live in ``out/run`` until the saved model replaces the
    directory, so a killed run continues with ``resume=True``.
    """
    run = TrainingRun.begin(sys.modules[__name__], preset, overrides)
    recipe = run.recipe
    columns = Columns(source_column, target_column, source_language, target_language)
    own = data not in (None, "de-en")
    if not own and (validation_data or test_data or source_column or target_column):
        raise UsageError("--validation-data, --test-data, --source-column and --target-column apply to your own "
                         "pairs (--data FILE, SRC,TGT or hf:NAME), not to de-en")
    if own:
        if overrides.get("dictionary_bias") or overrides.get("dictionary_training"):
            raise UsageError(f"--dictionary-bias and --dictionary-training favour the de-en dictionary's words; with "
                             f"your own data (--data {data}) leave them off")
        # the presets' dictionary-guided decoding (and training): de-en's dictionary
        recipe = replace(recipe, dictionary_bias=0.0, dictionary_training=False)
        corpus = _own_corpus(recipe, data, validation_data, test_data, columns, seed, progress)
    with run.claim(out, overwrite=overwrite, resume=resume):
        # `seed` splits the data too, unless a corpus is given (its info's "seed" is the split's then).
        corpus = corpus if corpus is not None else load_de_en(seed=seed, quiet=not progress)
        languages = (source_language, target_language) if own else (source_language or DE_EN[0],
                                                                      target_language or DE_EN[1])

        phrases = _phrase_pairs(corpus, recipe.extra_pairs, seed)
        tagged = recipe.tag_phrases and bool(phrases)
        # de-en's "a; b" targets: one pair per alternative; the user's own pairs are kept as written.
        split_pairs: Callable[[Sequence[tuple[str, str]]], list[tuple[str, str]]] = list if own else training_pairs
        sentences = split_pairs(corpus.train)
        baselines = Baselines(corpus, dictionary=not own)
        words = dictionary_pairs(corpus, recipe.dictionary_words, baselines.lexicon) if recipe.dictionary_words else []
        # Under DDP rank 0 learns the BPE and every rank receives it, so all train on the same ids.
        tokenizer = distributed.on_main(lambda: train_tokenizer(sentences + phrases, recipe.vocab_size,
                                                                [PHRASE] if tagged else []))
        hints: Callable[[str], str] | None = None
        if recipe.hints:
            hints = SourceHints(corpus, recipe.hints, recipe.hint_max_count)
        elif recipe.fuzzy:
            hints = FuzzyMatches(sentences)
        validation = split_pairs(corpus.validation)
        hinted_sentences = _hinted(sentences, hints, tokenizer, recipe.max_length)
        hinted_validation = _hinted(validation, hints, tokenizer, recipe.max_length)
        examples = training_examples(tokenizer, hinted_sentences, phrases, recipe.max_length)
        word_examples = encode_pairs(tokenizer, _hinted(words, hints, tokenizer, recipe.max_length), recipe.max_length)
        info = distributed.env_info()
        train_batches = curriculum_data(examples, word_examples, recipe, seed, info.world_size, info.rank)
        valid_examples = encode_pairs(tokenizer, hinted_validation, recipe.max_length)
        valid_batches = token_batches(valid_examples, recipe.max_tokens, seed)
        # Dictionary-guided decoding's words (and with dictionary_training, the same favouring in training).
        dictionary = (DictionaryBias(baselines.lexicon, [source for source, _ in sentences], tokenizer)
                      if recipe.dictionary_bias and baselines.lexicon is not None else None)
        training_bias = None
        if recipe.dictionary_training and dictionary is not None:
            training_bias = TrainingBias(dictionary, recipe.dictionary_bias)
            _add_bias(training_bias, sentences, hinted_sentences, tokenizer, recipe.max_length)
            _add_bias(training_bias, validation, hinted_validation, tokenizer, recipe.max_length)
        torch.manual_seed(seed)
        model = Seq2SeqTransformer(recipe.model_config(tokenizer))
        special = tokenizer.special_tokens
        config = run.train_config(seed=seed, progress=progress)
        if info.world_size > 1:  # each process takes one token-budgeted batch per step: a global step holds `world`
            config = replace(config, batch_size=info.world_size)
        if isinstance(train_batches, CurriculumBatches) and recipe.dictionary_steps:
            # A time budget times the sentence batches that follow the word-first steps, not the cheaper word pairs.
            config = replace(config, timing_step=recipe.dictionary_steps)
        trainer = Trainer(model, config, train_batches,
                          collate_fn=Seq2SeqCollator(special[PAD], special[BOS], training_bias),
                          loss_fn=smoothed_loss(recipe.label_smoothing, recipe.word_dropout), eval_data=valid_batches,
                          evaluate=token_nll)
        if isinstance(train_batches, CurriculumBatches):
            train_batches.follow(lambda: trainer.progress.step)
        result = run.fit(trainer, resume=resume)

        model.eval()
        beam = recipe.beam_size if test_beam is None else test_beam

        def score_and_save() -> tuple[TranslatePreset, dict[str, Any], dict[str, Any], dict[str, Any]]:
            chosen = recipe
            translator = Translator(model, tokenizer, chosen.max_length, beam_size=beam, alpha=chosen.alpha,
                                    hints=hints)
            validation_bleu: dict[str, float] = {}
            if chosen.tune_alpha and beam > 1:
                alpha, tried = choose_alpha(translator, corpus.validation, beam_size=beam, alternatives=not own)
                chosen, translator.alpha = replace(chosen, alpha=alpha), alpha
                validation_bleu = {str(a): round(b, 3) for a, b in tried.items()}
            bias_bleu: dict[str, float] = {}
            if dictionary is not None:
                translator.dictionary = dictionary
                # A model trained with the favouring searches with it: its logits assume the bias (no weight 0).
                grid = [w for w in DICTIONARY_BIAS_GRID if w] if chosen.dictionary_training else DICTIONARY_BIAS_GRID
                weight, tried = choose_dictionary_weight(translator, corpus.validation, beam_size=beam, grid=grid)
                chosen, translator.dictionary_weight = replace(chosen, dictionary_bias=weight), weight
                bias_bleu = {str(w): round(b, 3) for w, b in tried.items()}
            test = score(translator, corpus.test, beam_size=beam, alternatives=not own)
            greedy = score(translator, corpus.test, beam_size=1, alternatives=not own) if beam > 1 else test
            looked_up = baselines.scores(corpus.test)
            extra = {
                # "seed" is the split's (what `evaluate` and the baselines split again with), "train_seed" the run's.
                "preset": asdict(chosen), "max_length": chosen.max_length, "seed": corpus.info.get("seed", seed),
                "train_seed": seed,
                "data": corpus.info.get("source", "de-en"),
                "source_language": languages[0], "target_language": languages[1], "alternatives": not own,
                **({key: corpus.info.get(key) for key in ("validation_data", "test_data", "source_column",
                                                         "target_column", "seeded_splits", "sizes")} if own else {}),
                "metrics": {"validation_loss": result.best_metric, "test_bleu": test["bleu"],
                            "test_chrf": test["chrf"], "test_bleu_single": test["bleu_single"],
                            "test_chrf_single": test["chrf_single"], "bleu_signature": test["bleu_signature"],
                            "test_bleu_greedy": greedy["bleu"], "test_chrf_greedy": greedy["chrf"],
                            "validation_bleu_by_alpha": validation_bleu, "alpha": chosen.alpha,
                            "validation_bleu_by_dictionary_bias": bias_bleu, "dictionary_bias": chosen.dictionary_bias,
                            "n_test": test["n"], "beam_size": beam, **run.figures(),
                            "train_pairs": len(examples), "dictionary_pairs": len(word_examples),
                            "train_batches": len(train_batches), **looked_up},
            }
            run.save(model, extra, tokenizer=tokenizer)
            return chosen, test, greedy, looked_up

        # Under DDP rank 0 alone scores and writes.
        chosen, test, greedy, looked_up = distributed.write_once(score_and_save)
    return TranslateRun(out_dir=run.out_dir, preset=chosen, trained=recipe, validation_loss=run.best_metric,
                        bleu=test["bleu"], chrf=test["chrf"], bleu_greedy=greedy["bleu"], chrf_greedy=greedy["chrf"],
                        n_test=test["n"], beam_size=beam, steps=result.steps,
                        train_seconds=result.seconds, total_seconds=run.seconds(),
                        bleu_single=test["bleu_single"], bleu_signature=test["bleu_signature"], baselines=looked_up,
                        data=str(corpus.info.get("source", "de-en")) if own else "de-en", languages=languages)


# --- a model at work -----------------------------------------------------------------------------

DICTIONARY_BIAS_GRID = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0)  # weights tried on validation after training (0: the plain search)
DICTIONARY_BIAS_MAX_COUNT = 100  # source words seen more often in training are left to the model
# German endings tried when a word is not a headword as written: "Tagen" → "Tag", "Katzen" → "Katze".
_ENDINGS = ("en", "n", "e", "s", "es", "er", "em", "ern")


class DictionaryBias:
    """The words a search should favour for a German source: the one-word :class:`Lexicon` translation of each
    of its words seen at most `max_count` times in the training sources (the model knows the frequent ones),
    as `tokenizer`'s pieces of the word after a space (:class:`~glassformer.inference.generate.WordBias`).

    A word is looked up as written, then without a plural or case ending ("Tagen" → "Tag").
    """

    def __init__(self, lexicon: Lexicon, training_sources: Iterable[str], tokenizer: Any,
                 max_count: int = DICTIONARY_BIAS_MAX_COUNT) -> None:
        self.lexicon = lexicon
        self.tokenizer = tokenizer
        self.max_count = max_count
        self.counts = Counter(word.lower() for source in training_sources for word in headword_tokens(source))

    def translation(self, word: str) -> str | None:
        """The one-word English translation of `word` (or of it without an ending), or None."""
        lowered = word.lower()
        forms = [lowered] + [lowered[: -len(e)] for e in _ENDINGS if lowered.endswith(e) and len(lowered) > len(e) + 2]
        return next((t for t in map(self.lexicon.word_translation, forms) if t is not None), None)

    def words(self, source: str) -> list[tuple[int, ...]]:
        """The pieces of each favoured translation for `source`, once each, in the source's order."""
        out: dict[tuple[int, ...], None] = {}
        for word in headword_tokens(source):
            if self.counts[word.lower()] > self.max_count:
                continue
            translation = self.translation(word)
            if translation is not None:
                out[tuple(self.tokenizer.encode_ordinary(" " + translation))] = None
        return list(out)


class Translator:
    """A trained German→English model with its vocabulary: text in, detokenised translation out."""

    def __init__(self, model: Seq2SeqTransformer, tokenizer: Any, max_length: int, *, beam_size: int = 4,
                 alpha: float = 0.6, info: dict[str, Any] | None = None,
                 hints: Callable[[str], str] | None = None, dictionary: DictionaryBias | None = None,
                 dictionary_weight: float = 0.0) -> None:
        self.model = model.eval()
        self.hints = hints  # what the model was trained to read after each source (dictionary hints), if anything
        # Dictionary-guided decoding: the words `dictionary` finds in a source get `dictionary_weight` in the search.
        self.dictionary = dictionary
        self.dictionary_weight = dictionary_weight
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.beam_size = beam_size
        self.alpha = alpha
        self.info = dict(info or {})

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu", verify: bool = True,
             precision: str = "fp32") -> "Translator":
        """The translator of a directory written by `train` (or a MarianMT checkpoint)."""
        return cls.from_loaded(load_pretrained(directory, TASK, device=device, verify=verify, precision=precision))

    @classmethod
    def from_loaded(cls, loaded: Any) -> "Translator":
        """The translator of a model in memory: a saved model with its preset's beam, alpha and dictionary hints,
        a checkpoint with its ``tokenizer_config.json``'s ``model_max_length``."""
        require_tokenizer(loaded)
        if is_checkpoint(loaded):
            from glassformer.pretrained.hf_tokenizer import model_max_length

            limit = loaded.model.config.max_position
            return cls(loaded.model, loaded.tokenizer,
                       model_max_length(loaded.path, limit) if loaded.path is not None else limit)
        extra = loaded.extra
        preset = extra.get("preset") or {}
        hints: Callable[[str], str] | None = None
        if int(preset.get("hints", 0)) or preset.get("fuzzy"):
            if extra.get("data", "de-en") != "de-en":
                raise ValueError(f"{loaded.path} reads dictionary hints or fuzzy matches from {extra.get('data')!r} "
                                 f"data, which is not stored with the model; only de-en models with them can be "
                                 f"reloaded")
            corpus = load_de_en(seed=int(extra.get("seed", 0)), quiet=True)
            if preset.get("fuzzy"):
                hints = FuzzyMatches(training_pairs(corpus.train))
            else:
                hints = SourceHints(corpus, int(preset["hints"]), int(preset.get("hint_max_count", 100)))
        weight = float(preset.get("dictionary_bias", 0.0))
        dictionary = None
        if weight:
            if extra.get("data", "de-en") != "de-en":
                raise ValueError(f"{loaded.path} favours dictionary words, but was trained on {extra.get('data')!r} "
                                 f"data, which has no dictionary")
            # The baselines hold the split's lexicon and its training pairs (alternatives split, as in training).
            baselines = de_en_baselines(int(extra.get("seed", 0)))
            dictionary = DictionaryBias(baselines.lexicon, [source for source, _ in baselines.retrieval.pairs],
                                        loaded.tokenizer)
        return cls(loaded.model, loaded.tokenizer, int(extra.get("max_length", 64)),
                   beam_size=int(preset.get("beam_size", 4)), alpha=float(preset.get("alpha", 0.6)), info=extra,
                   hints=hints, dictionary=dictionary, dictionary_weight=weight)

    @property
    def languages(self) -> tuple[str | None, str | None]:
        """(source, target) language codes the model was trained on: de-en's, the ones recorded for the user's
        data, or None where none was given."""
        if "source_language" not in self.info:  # saved before languages were recorded: only de-en existed
            return DE_EN if self.info.get("data", "de-en") == "de-en" else (None, None)
        return self.info.get("source_language"), self.info.get("target_language")

    def _read(self, index: int, text: str, special_tokens: str) -> tuple[list[int], bool]:
        """One source's ids as the model reads it, and whether it was cut to fit the model's positions."""
        if not isinstance(text, str):
            raise TypeError(f"text {index} must be str, got {type(text).__name__}")
        if not text.strip():
            raise ValueError(f"text {index} is empty; give a sentence to translate")
        policy = special_token_policy(special_tokens, hint=POLICY_HINT)
        # The model's end token is appended below, as in training; a tokenizer.json template would add it twice.
        ids = self.tokenizer.encode(text, add_special_tokens=False, **policy)
        if self.hints is not None:  # as in training: the hints only where they fit
            hinted = self.tokenizer.encode(self.hints(text), add_special_tokens=False, **policy)
            ids = hinted if len(hinted) < self.max_length else ids
        room = self.model.config.max_position - 1
        return ids[:room] + [self.model.config.eos_token_id], len(ids) > room

    def _source_ids(self, texts: Sequence[str], special_tokens: str = "text") -> list[list[int]]:
        return [self._read(index, text, special_tokens)[0] for index, text in enumerate(texts)]

    def prepare(self, texts: str | Sequence[str], *, special_tokens: str = "text") -> ModelInputs:
        """Each source as the model reads it (its pieces, the dictionary hints where the model was trained with
        them and they fit, then EOS), padded with its mask, and the decoder prefix ``[BOS]``.

        `special_tokens` (``raise``, ``allow`` or ``text``, the default) says what text that spells a special
        token becomes.
        """
        if isinstance(texts, str):
            texts = [texts]
        read = [self._read(index, text, special_tokens) for index, text in enumerate(texts)]
        return self._batch([ids for ids, _ in read], [cut for _, cut in read])

    def _batch(self, rows: list[list[int]], truncated: list[bool] | None = None) -> ModelInputs:
        pad = self.model.config.pad_token_id
        device = next(self.model.parameters()).device
        src = pad_sequences(rows, pad).to(device)
        prefix = src.new_full((len(rows), 1), self.model.config.bos_token_id)
        return ModelInputs([{"src_ids": src, "src_attention_mask": (src != pad).long(), "tgt_ids": prefix}], rows,
                           truncated or [])

    def decode_steps(self, source_length: int) -> int:
        """How many tokens a search may produce (EOS included) for a padded source of `source_length` tokens."""
        return min(int(1.5 * source_length) + 10, self.model.config.max_position)

    def word_bias(self, rows: Sequence[Sequence[int]]) -> WordBias | None:
        """The words the search favours for sources read as `rows` of ids (None without dictionary-guided decoding).

        Found from the text the ids spell (the tokenizer decodes its pieces back exactly), so that a search over
        prepared inputs favours what :meth:`translate` favours for the same texts.
        """
        if self.dictionary is None or not self.dictionary_weight:
            return None
        eos = self.model.config.eos_token_id
        texts = [self.tokenizer.decode([i for i in row if i != eos]) for row in rows]
        if self.hints is not None:  # the words of the sentence itself, not of the hints after it
            texts = [text.split(HINT_SEPARATOR)[0] for text in texts]
        return WordBias([self.dictionary.words(text) for text in texts], self.dictionary_weight)

    def greedy_target(self, inputs: ModelInputs) -> torch.Tensor:
        """``(B, 2 + n)``: ``[BOS, y_1 … y_n, EOS]``, the greedy translation of prepared sources as
        :meth:`translate` with ``beam_size=1`` finds it (the same search and limit), which explanations read along."""
        src, mask = inputs.tensors["src_ids"], inputs.tensors["src_attention_mask"]
        return target_ids(self.model, greedy_search(self.model, src, mask, max_len=self.decode_steps(src.shape[1]),
                                                    alpha=self.alpha, bias=self.word_bias(inputs.ids)))

    def translate(self, texts: Sequence[str], *, beam_size: int | None = None, alpha: float | None = None,
                  batch_size: int = 64, special_tokens: str = "text") -> list[str]:
        """The translation of each text: beam search (``beam_size`` > 1) or greedy search (1)."""
        if isinstance(texts, str):
            texts = [texts]
        beam = self.beam_size if beam_size is None else beam_size
        if not (isinstance(beam, int) and 1 <= beam <= MAX_BEAM):
            raise UsageError(f"beam_size={beam!r}; expected an integer from 1 (greedy) to {MAX_BEAM}")
        alpha = self.alpha if alpha is None else alpha
        rows = self._source_ids(texts, special_tokens)  # every text checked before any is translated
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))  # similar lengths decode together
        out: list[str] = [""] * len(rows)
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            inputs = self._batch([rows[i] for i in chunk])
            src, mask = inputs.tensors["src_ids"], inputs.tensors["src_attention_mask"]
            max_len = self.decode_steps(src.shape[1])
            bias = self.word_bias(inputs.ids)
            if beam > 1:
                hyps: list[Hypothesis] = beam_search(self.model, src, mask, beam_size=beam, max_len=max_len,
                                                     alpha=alpha, bias=bias)
            else:
                hyps = greedy_search(self.model, src, mask, max_len=max_len, alpha=alpha, bias=bias)
            for i, hyp in zip(chunk, hyps):
                out[i] = self.tokenizer.decode(hyp.tokens).strip()
        return out

    def __call__(self, texts: str | Sequence[str], *, beam_size: int | None = None,
                 special_tokens: str = "text") -> list[dict[str, str]]:
        """``[{"source", "translation"}]``, one per text."""
        if isinstance(texts, str):
            texts = [texts]
        translations = self.translate(texts, beam_size=beam_size, special_tokens=special_tokens)
        return [{"source": s, "translation": t} for s, t in zip(texts, translations)]

    def format(self, results: Sequence[dict[str, str]]) -> list[str]:
        """The translation of each result."""
        return [r["translation"] for r in results]


def corpus_scores(hypotheses: Sequence[str], references: Sequence[str | Sequence[str]]) -> dict[str, Any]:
    """sacrebleu's corpus BLEU (13a tokenisation, with its signature) and chrF of detokenised hypotheses.

    Each reference is a string, or a sequence of acceptable translations of that segment
    (sacrebleu's multiple references: BLEU counts n-grams clipped by the most generous reference
    and takes the closest reference length; chrF takes the best-scoring reference).
    """
    import sacrebleu

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if not hypotheses:
        raise ValueError("cannot score an empty split")
    streams = reference_streams([[r] if isinstance(r, str) else list(r) for r in references])
    metric = sacrebleu.BLEU()
    bleu = metric.corpus_score(list(hypotheses), streams)
    return {"bleu": bleu.score, "chrf": sacrebleu.corpus_chrf(list(hypotheses), streams).score,
            "n": len(hypotheses), "bleu_signature": str(metric.get_signature())}


ALPHA_GRID = (0.6, 1.0, 1.5, 2.0)  # GNMT length-penalty exponents tried on the validation split


def as_items(pairs: Sequence[tuple[str, str]], alternatives: bool = True) -> list[ReferenceItem]:
    """Test items of `pairs`: with `alternatives`, de-en's ``"; "``-joined alternatives split
    (:func:`~glassformer.data.dictionary.reference_items`); without (the user's own pairs, where a
    semicolon is punctuation), one item per pair with its one reference."""
    if alternatives:
        return reference_items(pairs)
    return [ReferenceItem(source, (reference,), index) for index, (source, reference) in enumerate(pairs)]


def _best_by_bleu(translate: Callable[[list[str], float], list[str]], pairs: Sequence[tuple[str, str]],
                  grid: Sequence[float], alternatives: bool) -> tuple[float, dict[float, float]]:
    """The value in `grid` whose translations score the best multi-reference BLEU on `pairs`, and each one's BLEU
    (ties go to the earlier value)."""
    if not grid:
        raise ValueError("grid must hold at least one value")
    items = as_items(pairs, alternatives)
    sources, references = [item.source for item in items], [item.references for item in items]
    bleu = {float(value): corpus_scores(translate(sources, value), references)["bleu"] for value in grid}
    best = max(bleu, key=lambda value: (bleu[value], -list(bleu).index(value)))
    return best, bleu


def choose_alpha(translator: Translator, pairs: Sequence[tuple[str, str]], *, beam_size: int,
                 grid: Sequence[float] = ALPHA_GRID, alternatives: bool = True) -> tuple[float, dict[float, float]]:
    """The exponent in `grid` whose beam search scores the best multi-reference BLEU on `pairs`, and the BLEU of each.

    Ties go to the earlier exponent in `grid`. `pairs` must not be the test split.
    """
    return _best_by_bleu(lambda sources, alpha: translator.translate(sources, beam_size=beam_size, alpha=alpha),
                         pairs, grid, alternatives)


def choose_dictionary_weight(translator: Translator, pairs: Sequence[tuple[str, str]], *, beam_size: int,
                             grid: Sequence[float] = DICTIONARY_BIAS_GRID) -> tuple[float, dict[float, float]]:
    """The dictionary-guided decoding weight in `grid` (0: off) whose search scores the best multi-reference BLEU on
    `pairs`, and the BLEU of each; `translator` keeps its weight. `pairs` must not be the test split."""
    kept = translator.dictionary_weight

    def translate(sources: list[str], weight: float) -> list[str]:
        translator.dictionary_weight = weight
        return translator.translate(sources, beam_size=beam_size)

    try:
        return _best_by_bleu(translate, pairs, grid, alternatives=True)
    finally:
        translator.dictionary_weight = kept


def score(translator: Translator, pairs: Sequence[tuple[str, str]], *, beam_size: int | None = None,
          alternatives: bool = True) -> dict[str, Any]:
    """Scores of `translator` on (source, reference) pairs, with the alternatives in them split.

    ``bleu``, ``chrf``, ``n`` and ``bleu_signature`` score one item per source alternative against
    every reference alternative (:func:`glassformer.data.dictionary.reference_items`);
    ``bleu_single``, ``chrf_single`` and ``n_single`` score each pair as written, one reference each
    (the figures before multi-reference scoring, for continuity). Without `alternatives` (the
    user's own pairs) both score each pair as written.
    """
    return score_translations(lambda sources: translator.translate(sources, beam_size=beam_size), pairs,
                              alternatives=alternatives)


def score_translations(translate: Callable[[list[str]], list[str]], pairs: Sequence[tuple[str, str]], *,
                       alternatives: bool = True) -> dict[str, Any]:
    """:func:`score` for any function from sources to translations (a model's search, a baseline)."""
    items = as_items(pairs, alternatives)
    sources = list(dict.fromkeys([source for source, _ in pairs] + [item.source for item in items]))
    translated = dict(zip(sources, translate(sources)))
    multi = corpus_scores([translated[item.source] for item in items], [item.references for item in items])
    single = corpus_scores([translated[source] for source, _ in pairs], [reference for _, reference in pairs])
    return {**multi, "bleu_single": single["bleu"], "chrf_single": single["chrf"], "n_single": single["n"]}


# --- baselines: what looking things up gives --------------------------------------------------------

class RetrievalBaseline:
    """Translation by retrieval: the English side of the training pair that shares the rarest German words.

    A word's weight is its inverse document frequency over the training sources, log(N / df); a
    pair's score is the sum of the weights of the distinct lower-cased words
    (:func:`~glassformer.data.dictionary.word_tokens`) it shares with the source. Ties go to the
    pair with the shorter English side (in words), then to the earlier pair; a source that shares
    no word gets the shortest English side.
    """

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        if not pairs:
            raise ValueError("the retrieval baseline needs at least one training pair")
        self.pairs = list(pairs)
        postings: dict[str, list[int]] = {}
        for index, (source, _) in enumerate(self.pairs):
            for word in set(word_tokens(source)):
                postings.setdefault(word, []).append(index)
        self.postings = {word: torch.tensor(rows) for word, rows in postings.items()}
        self.idf = {word: math.log(len(self.pairs) / len(rows)) for word, rows in postings.items()}
        self.lengths = torch.tensor([len(target.split()) for _, target in self.pairs])

    def nearest(self, source: str, skip: Sequence[int] = ()) -> int:
        """The index of the training pair retrieved for `source`, never one of the indices in `skip`."""
        # Weights added in increasing order: pairs whose shared words have equal weights get bit-equal sums and tie.
        words = sorted((w for w in set(word_tokens(source)) if self.idf.get(w, 0.0) > 0.0),
                       key=lambda w: (self.idf[w], w))
        scores = torch.zeros(len(self.pairs), dtype=torch.float64)
        for word in words:
            scores.index_add_(0, self.postings[word],
                              torch.full((len(self.postings[word]),), self.idf[word], dtype=torch.float64))
        if skip:
            scores[list(skip)] = -1.0  # below every score a pair can have
        best = torch.nonzero(scores == scores.max())[:, 0]
        return int(best[torch.argmin(self.lengths[best])])  # argmin: the first of the shortest

    def translate(self, sources: Sequence[str]) -> list[str]:
        """The retrieved English side for each source."""
        return [self.pairs[self.nearest(source)][1] for source in sources]


@dataclass(frozen=True)
class Lookup:
    """What looking a source up gives: the retrieved training pair and each word's dictionary translations."""

    source: str
    retrieved_source: str  # the German side of the training pair the retrieval baseline picks
    retrieved: str  # its English side: the retrieval baseline's translation
    word_by_word: str  # the word-by-word dictionary baseline's translation
    words: list[tuple[str, list[str]]]  # (word as written, its translations, the most frequent first; [] unknown)


class Baselines:
    """The two look-up translators a model is compared with, built from a corpus's training side alone.

    * retrieval (:class:`RetrievalBaseline`) over the training pairs, alternatives split as in
      training (:func:`~glassformer.data.dictionary.training_pairs`);
    * word by word: each German word replaced by its one-word translation in the
      :class:`~glassformer.data.dictionary.Lexicon` of :func:`training_dictionary` (unknown words
      copied).
    """

    def __init__(self, corpus: ParallelCorpus, *, dictionary: bool = True) -> None:
        # Without the dictionary (the user's own pairs) a "; " in a sentence is punctuation, not alternatives.
        train = training_pairs(corpus.train) if dictionary else list(corpus.train)
        self.retrieval = RetrievalBaseline(train)
        # The user's own pairs come without a dictionary: retrieval alone applies to them.
        self.lexicon = Lexicon(training_dictionary(corpus), [target for _, target in train]) if dictionary else None

    def word_by_word(self, sources: Sequence[str]) -> list[str]:
        """The word-by-word translation of each source."""
        if self.lexicon is None:
            raise ValueError("no dictionary: the word-by-word baseline needs the de-en dictionary")
        return [self.lexicon.word_by_word(source) for source in sources]

    def scores(self, pairs: Sequence[tuple[str, str]]) -> dict[str, float]:
        """``retrieval_bleu``, ``retrieval_chrf``, ``dictionary_bleu``, ``dictionary_chrf`` on `pairs`, scored as a
        model is (the last two only with a dictionary)."""
        alternatives = self.lexicon is not None
        retrieval = score_translations(self.retrieval.translate, pairs, alternatives=alternatives)
        out = {"retrieval_bleu": retrieval["bleu"], "retrieval_chrf": retrieval["chrf"]}
        if self.lexicon is not None:
            dictionary = score_translations(self.word_by_word, pairs)
            out.update(dictionary_bleu=dictionary["bleu"], dictionary_chrf=dictionary["chrf"])
        return out

    def lookup(self, source: str, max_translations: int = 3) -> Lookup:
        """What both baselines make of `source`, and up to `max_translations` translations of each of its words."""
        if self.lexicon is None:
            raise ValueError("no dictionary: look-ups need the de-en dictionary")
        found = self.retrieval.pairs[self.retrieval.nearest(source)]
        words = list(dict.fromkeys(headword_tokens(source)))
        return Lookup(source, found[0], found[1], self.lexicon.word_by_word(source),
                      [(word, self.lexicon.translations(word)[:max_translations]) for word in words])


@functools.lru_cache(maxsize=2)
def de_en_baselines(seed: int = 0) -> Baselines:
    """The baselines of the ``de-en`` data split with `seed` (built once per process: a few seconds)."""
    return Baselines(load_de_en(seed=seed, quiet=True))


def baselines_for(translator: Translator) -> Baselines | None:
    """The baselines of the data `translator` was trained on; None when that is not ``de-en`` (it is not stored)."""
    if translator.info.get("data", "de-en") != "de-en":
        return None
    return de_en_baselines(int(translator.info.get("seed", 0)))


def lookup(translator: Translator, source: str) -> Lookup | None:
    """What the baselines of `translator`'s training data make of `source` (None: no baselines for that data)."""
    baselines = baselines_for(translator)
    return None if baselines is None else baselines.lookup(source)


def language_names(directory: str | Path | None) -> tuple[str, str]:
    """Names for the source and target sides of the translation model saved in `directory` ("German", "English"
    for de-en; a code without a known name as it is; "Source", "Target" when none was recorded), read from its
    config without loading the weights. A directory without a model yet gets de-en's."""
    from glassformer.training.saved import read_config

    info: dict[str, Any] = {}
    if directory is not None and (Path(directory) / "config.json").is_file():
        try:
            info = read_config(directory).get("extra") or {}
        except Exception:  # a damaged config: the tab still opens, the model's loader reports it
            info = {}
    codes = (info.get("source_language"), info.get("target_language")) if "source_language" in info else \
        (DE_EN if info.get("data", "de-en") == "de-en" else (None, None))
    return (LANGUAGE_NAMES.get(codes[0], codes[0]) if codes[0] else "Source",
            LANGUAGE_NAMES.get(codes[1], codes[1]) if codes[1] else "Target")


def _columns(info: Mapping[str, Any]) -> Columns:
    return Columns(info.get("source_column"), info.get("target_column"), info.get("source_language"),
                   info.get("target_language"))


def evaluate(directory: str | Path, split: str | None = None, data: str | None = None, *,
             beam_size: int | None = None, verify: bool = True, precision: str = "fp32") -> dict[str, Any]:
    """``{"bleu", "chrf", "n", "split", "beam_size", ...}`` of the model saved in `directory`, and the baselines'.

    The pairs are a split of the data the model was trained on (de-en, or the user's, split again
    with the seed the model was trained with), or every pair of `data` (any file or hf: set that
    ``train translate --data`` reads, with the model's column and language settings; the `split` of
    an hf: set that has one). For a model trained on ``de-en`` the same pairs are translated by the
    :class:`Baselines` of its training data and scored the same way (``retrieval_bleu``,
    ``retrieval_chrf``, ``dictionary_bleu``, ``dictionary_chrf``); for one trained on the user's pairs,
    by retrieval over those pairs. ``beats_retrieval`` says whether the model's BLEU is at least the
    retrieval baseline's.
    """
    if split is not None and split not in ("train", "valid", "validation", "test"):
        raise ValueError(f"split={split!r}; expected train, validation or test")
    translator = Translator.load(directory, verify=verify, precision=precision)
    info = translator.info
    own = info.get("data", "de-en") != "de-en"
    alternatives = bool(info.get("alternatives", True))
    baselines = baselines_for(translator)
    if data not in (None, "de-en"):
        where = split or str(data)
        pairs = read_pairs(data, _columns(info), split="validation" if split == "valid" else split)
        if own and baselines is None:
            baselines = _own_baselines(info)
    else:
        split = split or "test"
        if own:
            corpus = load_parallel(info["data"], validation_data=info.get("validation_data"),
                                   test_data=info.get("test_data"), columns=_columns(info),
                                   seed=int(info.get("seed", 0)))
            baselines = Baselines(corpus, dictionary=False)
        else:
            corpus = load_de_en(seed=int(info.get("seed", 0)), quiet=True)
        pairs = {"train": corpus.train, "valid": corpus.validation, "validation": corpus.validation,
                 "test": corpus.test}[split]
        where = split
    beam = translator.beam_size if beam_size is None else beam_size
    result = {**score(translator, pairs, beam_size=beam, alternatives=alternatives), "split": where,
              "beam_size": beam}
    if baselines is not None:
        result.update(baselines.scores(pairs))
        result["beats_retrieval"] = result["bleu"] >= result["retrieval_bleu"]
    return result


def _own_baselines(info: Mapping[str, Any]) -> Baselines | None:
    """Retrieval over the user's training pairs, split again as in training; None when they cannot be read now."""
    try:
        corpus = load_parallel(info["data"], validation_data=info.get("validation_data"),
                               test_data=info.get("test_data"), columns=_columns(info), seed=int(info.get("seed", 0)))
    except (ValueError, OSError):
        return None
    return Baselines(corpus, dictionary=False)


Predictor = Translator
