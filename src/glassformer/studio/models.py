"""The models the studio serves: the sentiment classifier, the task slots, and where each comes from and trains."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from glassformer.studio.baseline import MarkovBaseline
from glassformer.studio.jobs import ModelSlot, TrainCommand


@dataclass
class StudioModels:
    """The models the studio serves: the sentiment classifier (required), the optional task models, the LM's baseline."""

    sentiment: Any  # a SentimentClassifier
    translate: ModelSlot
    vision: ModelSlot
    generate: ModelSlot
    markov: MarkovBaseline | None = None  # None: an order-5 chain over the language model's tokens

    def __post_init__(self) -> None:
        if self.markov is None:
            self.markov = MarkovBaseline(self.generate)


# What each quick preset reached when it was measured (benchmarks/RESULTS.md; a test checks that every
# figure here is there), so that a learner knows what the background run or the button will give.
QUICK_QUALITY = {
    # Measured by benchmarks/headline.py (the whole `train` command, 2 idle cores of an Intel Xeon with
    # AVX512-BF16 and AMX, bf16, 6 December 2026) and benchmarks/first_launch.py (the same run in the studio);
    # translation by two runs of its `train` command with dictionary-guided decoding on 7 December (the seventh
    # session's "Dictionary-guided decoding" in benchmarks/RESULTS.md).
    "translate": "What to expect from the quick preset: BLEU 4.14 and 4.70 with beam search in two runs (chrF 24.17 "
                 "and 23.65) on the 1,003 test sentences, against the retrieval baseline's 3.51 and 20.75: above "
                 "looking up the nearest training sentence, with the dictionary's words favoured in the search. "
                 "The preset trains for 4.3 minutes: the command took 4.4 and 4.5 minutes on 2 idle cores of an "
                 "Intel Xeon with AVX512-BF16 (7 December 2026); in the studio, which shares the cores with the "
                 "page, it trains fewer steps in the same minutes.",
    "vit": "What to expect from the quick preset: 85.4% test accuracy on Fashion-MNIST (chance: 10%). The command "
           "took 1.6 minutes on 2 idle cores of an Intel Xeon with AVX512-BF16 (6 December 2026); in the studio, "
           "about 2.4 minutes.",
    "lm": "What to expect from the quick preset: 2.1659 bits per character on the held-out works after its "
          "5-minute budget (1,464 steps) on 2 idle cores of an Intel Xeon with AVX512-BF16 (7 December 2026), level "
          "with the best Markov chain's 2.159; the full preset (`--preset full`, 30 minutes) crosses the chain at "
          "minute 8.9 and ends at 1.9417.",
}

# The background runs' presets: "quick" (what the README documents), or "tiny", a few steps of each family on
# its real data that checks the machinery end to end in a minute or two (the models are useless; they are
# saved beside the others as vit-tiny, translate-tiny and lm-transformer-bpe-tiny, never in a quick one's place).
TRAINING_PRESETS = ("quick", "tiny")
TINY = {
    "vit": {"max_steps": 20, "d_model": 16, "n_heads": 2, "n_layers": 2, "d_ff": 32, "batch_size": 64,
            "validation_size": 500, "eval_every": 10},
    "translate": {"max_steps": 20, "vocab_size": 500, "d_model": 32, "n_heads": 2, "n_encoder_layers": 1,
                  "n_decoder_layers": 1, "d_ff": 64, "max_length": 32, "max_tokens": 600, "warmup_steps": 2,
                  "eval_every": 10, "beam_size": 1, "tune_alpha": False},
    "lm": {"max_steps": 20, "minutes": None, "d_model": 32, "n_heads": 2, "n_layers": 2, "d_ff": 64, "context": 64,
           "batch_size": 8, "warmup_steps": 2, "eval_windows": 8, "eval_points": 4},
}


def _score(task: str, config: dict[str, Any]) -> float | None:
    """A saved model's recorded score, higher is better: test accuracy, test BLEU, or minus validation bits/char."""
    metrics = config.get("extra", {}).get("metrics", {})
    if task == "lm":
        return -metrics["validation"]["bits_per_char"]
    return metrics["test_bleu" if task == "translate" else "test_accuracy"]


def task_slot(task: str, name: str, directory: Path | None = None, preset: str = "quick") -> ModelSlot:
    """The studio's place for one task's model and how to train it (`preset`: one of :data:`TRAINING_PRESETS`).

    Without `directory` the slot loads the strongest of the models the documented commands save in the
    cache (``train TASK --preset full`` and ``--preset quick``, by their recorded scores) and trains the
    preset into its own cache directory; with one, it uses that directory alone.
    """
    from glassformer.tasks import get_task
    from glassformer.tasks.pipeline import load_predictor

    if preset not in TRAINING_PRESETS:
        raise ValueError(f"preset must be one of {TRAINING_PRESETS}, got {preset!r}")
    module = get_task(task)
    settings = TINY[task] if preset == "tiny" else {}
    recipe = module.get_preset("quick", **settings)
    if preset == "tiny":
        recipe = dataclasses.replace(recipe, name="tiny")
    out = Path(directory) if directory is not None else module.default_out_dir(recipe)
    others = () if directory is not None else tuple(module.default_out_dir(module.get_preset(name))
                                                    for name in ("full", "quick") if name != recipe.name)
    slot = ModelSlot(name, out, f"glassformer train {task} --preset quick", lambda path: load_predictor(path, task),
                     TrainCommand(task, "quick", settings), expected=QUICK_QUALITY.get(task, ""), others=others,
                     quality=partial(_score, task))
    if task == "lm":  # the chain the run fits first (and saves in the cache) is the level its curve must go below
        slot.baseline = partial(module.saved_chain_baseline, recipe.tokenizer, recipe.bpe_vocab_size)
    return slot


def unavailable_slot(name: str, reason: str) -> ModelSlot:
    """A slot for a task this installation cannot run; its status says so."""
    return ModelSlot(name, Path(os.devnull), "", lambda _: None, unavailable=reason)


def _slot(task: str, name: str, directory: Path | None, preset: str) -> ModelSlot:
    try:
        return task_slot(task, name, directory, preset)
    except ImportError as exc:
        return unavailable_slot(name, str(exc))


def default_models(sentiment_dir: str | Path, translate_dir: Path | None = None, vision_dir: Path | None = None,
                   generate_dir: Path | None = None, preset: str = "quick") -> StudioModels:
    """The sentiment classifier saved in `sentiment_dir` and the task slots (defaults: the cache's strongest models).

    The language model's slot trains the LM's quick preset (the BPE transformer the README documents)
    and loads ``lm-transformer-bpe-full`` instead when that one is saved and scores better.
    """
    from glassformer.tasks.pipeline import load_predictor

    return StudioModels(load_predictor(sentiment_dir, "sentiment"),
                        _slot("translate", "translation", translate_dir, preset),
                        _slot("vit", "vision", vision_dir, preset),
                        _slot("lm", "language", generate_dir, preset))
