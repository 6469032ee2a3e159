"""One worker of a task trained under torchrun, on tiny synthetic data (what test_ddp_tasks.py launches).

    torchrun --nproc-per-node 2 -m tests.training.ddp_task TASK OUT

Prints, per rank, a digest of the vocabulary it trains with. With FAULT_AT_STEP set, the worker of
FAULT_RANK kills itself (SIGKILL, as an out-of-memory kill would) at that step of the first attempt.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sys

import numpy as np
import torch

from glassformer.training import distributed
from glassformer.training import trainer as trainer_module

WORDS = {0: ["dull", "flat", "tired", "boring", "weak"], 1: ["witty", "moving", "bright", "sharp", "warm"]}


def sentiment_data():
    from glassformer.data import TextDataset, TextSplit

    rng = random.Random(0)

    def split(n: int) -> TextSplit:
        labels = [rng.randint(0, 1) for _ in range(n)]
        texts = [" ".join(rng.choice(WORDS[y]) if rng.random() < 0.5 else rng.choice(["a", "the", "film", "plot"])
                          for _ in range(rng.randint(3, 9))) for y in labels]
        return TextSplit(texts, labels)

    return TextDataset("tiny", ["negative", "positive"], split(96), split(24), split(24), info={"source": "tiny"})


def vit_data():
    from glassformer.data.corpora import ImageDataset

    rng = np.random.default_rng(0)

    def images(n: int):
        labels = rng.integers(0, 3, n)
        pixels = rng.integers(0, 60, (n, 8, 8)).astype(np.uint8)
        for i, y in enumerate(labels):
            pixels[i, :, 2 * y:2 * y + 2] = 250  # a bright stripe whose position is the class
        return pixels, labels.astype(np.int64)

    (train_x, train_y), (test_x, test_y) = images(120), images(30)
    return ImageDataset(train_x, train_y, test_x, test_y, ("a", "b", "c"))


def lm_data():
    from glassformer.data.corpora import PlaySplit

    rng = random.Random(0)
    lines = ["to be or not to be", "all the world is a stage", "the rest is silence", "so fair and foul a day"]

    def work(n: int) -> str:
        return "\n".join(rng.choice(lines) for _ in range(n))

    return PlaySplit({f"w{i}": work(100) for i in range(3)}, {"v": work(10)}, {}, 0)  # > 8 full batches


def translate_data():
    from glassformer.data.corpora import ParallelCorpus

    lexicon = {"der": "the", "hund": "dog", "katze": "cat", "sieht": "sees", "rote": "red", "ball": "ball"}
    rng = random.Random(0)

    def pairs(n: int) -> list[tuple[str, str]]:
        chosen = [[rng.choice(list(lexicon)) for _ in range(rng.randint(2, 5))] for _ in range(n)]
        return [(" ".join(words) + ".", " ".join(lexicon[w] for w in words) + ".") for words in chosen]

    return ParallelCorpus(pairs(120), pairs(8), pairs(8), [], {"source": "toy"})


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(task: str, out: str) -> None:
    fault_at, fault_rank = int(os.environ.get("FAULT_AT_STEP", 0)), int(os.environ.get("FAULT_RANK", 1))
    if fault_at and distributed.restart_count() == 0:
        original = trainer_module.Trainer.__init__

        def with_fault(self, *args, **kwargs):
            original(self, *args, **kwargs)

            def die(trainer, record):
                if record["step"] == fault_at and trainer.dist.rank == fault_rank:
                    os.kill(os.getpid(), signal.SIGKILL)

            self.callbacks.append(die)

        trainer_module.Trainer.__init__ = with_fault

    common = dict(progress=False, precision="fp32", seed=0)
    learnt = []  # how many vocabularies this process trained
    if task == "sentiment":
        from glassformer.tasks import sentiment

        train_tokenizer = sentiment.train_tokenizer
        sentiment.train_tokenizer = lambda *args: learnt.append(1) or train_tokenizer(*args)
        run = sentiment.train("quick", out, init="scratch", data=sentiment_data(), max_steps=8, batch_size=8,
                              d_model=16, n_heads=2, n_layers=1, d_ff=32, vocab_size=200, max_length=16,
                              eval_every=2, dropout=0.0, lr=1e-2, **common)
        vocabulary = run.classifier.tokenizer.vocab
    elif task == "lm":
        from glassformer.tasks import lm

        build, encode, used = lm.build_tokenizer, lm.encode_work, []
        lm.build_tokenizer = lambda *args: learnt.append(1) or build(*args)
        lm.encode_work = lambda vocab, text: used.append(vocab) or encode(vocab, text)  # what this rank trains with
        run = lm.train_transformer(lm.TransformerPreset("tiny", d_model=16, n_heads=2, n_layers=1, d_ff=32, context=16,
                                                        batch_size=8, max_steps=8, lr=1e-2, warmup_steps=2,
                                                        bpe_vocab_size=300, eval_windows=4, tokenizer="bpe"),
                                   out=out, data=lm_data(), **common)
        vocabulary = used[0].encode_ordinary("to be or not to be, all the world is a stage")
    elif task == "translate":
        from glassformer.tasks import translate

        train_tokenizer, examples, used = translate.train_tokenizer, translate.training_examples, []
        translate.train_tokenizer = lambda *args: learnt.append(1) or train_tokenizer(*args)
        translate.training_examples = lambda tokenizer, *rest: used.append(tokenizer) or examples(tokenizer, *rest)
        translate.train("quick", out, corpus=translate_data(), vocab_size=300, d_model=16, n_heads=2,
                              n_encoder_layers=1, n_decoder_layers=1, d_ff=32, max_length=12, max_tokens=120,
                              max_steps=6, warmup_steps=1, eval_every=3, beam_size=1, tune_alpha=False, **common)
        vocabulary = used[0].encode_ordinary("der hund sieht die rote katze")
    elif task == "vit":
        from glassformer.tasks import vit

        run = vit.train(vit.ViTPreset("tiny", patch_size=4, d_model=16, n_heads=2, n_layers=1, d_ff=32, epochs=2,
                                      batch_size=8, validation_size=24, eval_every=3, threads=1, lr=1e-2),
                        out, data=vit_data(), **common)
        vocabulary = []
    else:
        raise SystemExit(f"unknown task {task!r}")
    info = distributed.current()
    digest = hashlib.sha256(json.dumps(vocabulary).encode()).hexdigest()[:16]
    # One write per line: both processes share the pipe, and print() writes the text and its newline apart.
    say(f"rank {info.rank}: vocabulary {digest} learnt {len(learnt)} time(s)")
    if info.is_main:
        say(f"saved to {out}")
    distributed.cleanup()


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(*sys.argv[1:3])
