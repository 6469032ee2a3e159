"""The first article's baseline beside the Generate tab: a Markov chain over the language model's own tokens.

Once the language model is loaded, a thread fits an order-N chain (interpolated Kneser–Ney,
:class:`~glassformer.models.MarkovChain`) on the Shakespeare works the model was trained on, encoded
with the model's tokenizer, so both predict the same tokens from the same context. It then scores
both models with :mod:`glassformer.tasks.lm`'s own functions on a fixed slice of the held-out
works, ready seconds after the first Generate: all 408,013 held-out characters took the quick
transformer 28 s to score on a loaded machine (benchmarks/RESULTS.md), the CPU the studio would
take from every other request meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from glassformer.data.corpora import PlaySplit, load_shakespeare
from glassformer.models import MarkovChain
from glassformer.studio.common import model_lock
from glassformer.studio.jobs import ModelSlot

log = logging.getLogger("glassformer.studio")

# Order 5 is within 0.01 bits/char of the best character chain (order 6: 2.208 against 2.214) and fits
# in two thirds of its time (benchmarks/RESULTS.md, "Language models on Shakespeare").
MARKOV_ORDER = 5
# Characters scored from the start of each held-out work: about 1.5 s for both quick models together.
HELD_OUT_CHARS = 5_000


@dataclass
class BaselineScores:
    """Bits per character of both models on the same held-out slice, and what fitting and scoring cost."""

    markov: dict[str, float]  # score_markov's figures
    transformer: dict[str, float]  # score_transformer's figures
    works: list[str]  # the titles of the held-out works the slice comes from
    chars_per_work: int
    fit_seconds: float
    markov_seconds: float
    transformer_seconds: float


class MarkovBaseline:
    """A Markov chain fitted in a background thread for the language model in `slot`, and both models' scores."""

    def __init__(self, slot: ModelSlot, order: int = MARKOV_ORDER, *, works: PlaySplit | None = None,
                 chars_per_work: int = HELD_OUT_CHARS) -> None:
        self.slot = slot
        self.order = order
        self.works = works  # None: the Shakespeare split recorded with the model (tests pass a small one)
        self.chars_per_work = chars_per_work
        self.chain: MarkovChain | None = None
        self.scores: BaselineScores | None = None
        self.error: str | None = None
        self.started = 0.0
        self._for: Any = None  # the generator the chain belongs to; a retrained model gets a new chain
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start fitting for the slot's current model, unless that is done or under way (or no model exists yet)."""
        generator = self.slot.get()
        if generator is None:
            return
        with self._lock:
            if self._for is generator:
                return
            self._for, self.chain, self.scores, self.error = generator, None, None, None
            self.started = time.perf_counter()
            self._thread = threading.Thread(target=self._run, args=(generator,), name="markov-baseline", daemon=True)
            self._thread.start()

    def ready_for(self, generator: Any) -> bool:
        """Whether the chain and the scores are there for this model."""
        return self._for is generator and self.scores is not None

    def _run(self, generator: Any) -> None:
        try:
            from glassformer.tasks.lm import score_markov, score_transformer

            tokenizer = generator.tokenizer
            split = self.works
            if split is None:
                info = generator.info
                split = load_shakespeare(seed=int(info.get("seed", 0)), n_validation=int(info.get("n_validation", 4)),
                                         quiet=True)
            began = time.perf_counter()
            chain = MarkovChain(order=self.order).fit(tokenizer.encode_ordinary(text) for text in split.train.values())
            fitted = time.perf_counter()
            held_out = [text[:self.chars_per_work] for text in split.validation.values()]
            markov = score_markov(chain, held_out, tokenizer)
            scored = time.perf_counter()
            with model_lock:
                transformer = score_transformer(generator.model, tokenizer, held_out)
            done = time.perf_counter()
            if self._for is generator:
                self.chain = chain
                works = [split.titles.get(name, name) for name in sorted(split.validation)]
                self.scores = BaselineScores(markov, transformer, works, self.chars_per_work,
                                             fitted - began, scored - fitted, done - scored)
        except Exception as exc:  # the Generate tab still works without its baseline
            log.exception("fitting the Markov baseline failed")
            self.error = f"{type(exc).__name__}: {exc}"

    def status(self) -> str:
        """A line for the panel while the chain is not ready: fitting (with the time so far), failed, or waiting."""
        if self.error:
            return f"The Markov chain could not be fitted: {self.error}"
        if self._thread is None:
            return "The Markov chain is fitted once the language model exists."
        return (f"Fitting an order-{self.order} Markov chain on the training works and scoring both models on held-out "
                f"text, once… ({time.perf_counter() - self.started:.0f} s so far)")
