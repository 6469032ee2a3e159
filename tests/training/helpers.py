"""A tiny classifier and a synthetic task small enough to train in well under a second."""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from torch import nn

from glassformer.data.batching import PaddingCollator
from glassformer.training import TrainConfig, Trainer

VOCAB = 20


@dataclass
class TinyConfig:
    vocab_size: int = VOCAB
    d_model: int = 16
    num_labels: int = 2
    dropout: float = 0.1


class TinyClassifier(nn.Module):
    """Embedding → masked mean → LayerNorm → dropout → linear."""

    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model, padding_idx=0)
        self.norm = nn.LayerNorm(config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.d_model, config.num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.unsqueeze(-1).float()
        pooled = (self.embed(input_ids) * mask).sum(1) / mask.sum(1)
        return self.head(self.drop(self.norm(pooled)))


def make_examples(n: int, seed: int = 0) -> list[dict]:
    """Label 1 when token 3 occurs in the sequence; lengths 2..12."""
    rng = random.Random(seed)
    examples = []
    for _ in range(n):
        ids = [rng.randint(4, VOCAB - 1) for _ in range(rng.randint(2, 12))]
        label = rng.random() < 0.5
        if label:
            ids[rng.randrange(len(ids))] = 3
        examples.append({"input_ids": ids, "labels": int(label)})
    return examples


def classification_loss(model: nn.Module, batch: dict) -> torch.Tensor:
    logits = model(batch["input_ids"], batch["attention_mask"])
    return nn.functional.cross_entropy(logits, batch["labels"])


def accuracy(model: nn.Module, loader) -> dict:
    correct = total = 0
    loss = 0.0
    for batch in loader:
        logits = model(batch["input_ids"], batch["attention_mask"])
        loss += float(nn.functional.cross_entropy(logits, batch["labels"], reduction="sum"))
        correct += int((logits.argmax(-1) == batch["labels"]).sum())
        total += len(batch["labels"])
    return {"accuracy": correct / total, "loss": loss / total}


def make_trainer(config: TrainConfig, *, n_train: int = 100, n_eval: int = 40, dropout: float = 0.1,
                 model_seed: int = 0, callbacks=()) -> Trainer:
    torch.manual_seed(model_seed)
    model = TinyClassifier(TinyConfig(dropout=dropout))
    train, valid = make_examples(n_train, seed=1), make_examples(n_eval, seed=2)
    return Trainer(model, config, train, collate_fn=PaddingCollator(pad_id=0), loss_fn=classification_loss,
                   eval_data=valid, evaluate=accuracy, lengths=[len(e["input_ids"]) for e in train],
                   eval_lengths=[len(e["input_ids"]) for e in valid], callbacks=callbacks)


def ddp_config(out_dir: str) -> TrainConfig:
    """The run both the 1-process and the 2-process DDP test use: accumulation on, one global batch of 8."""
    # fp32: bf16 rounds shards and whole batches differently, and this compares the DDP arithmetic itself.
    return TrainConfig(out_dir=out_dir, epochs=2, batch_size=8, grad_accum=2, lr=1e-2, eval_every=4,
                       metric="accuracy", log_every=1, progress=False, load_best_at_end=False, precision="fp32")


def ddp_worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    """One process of a CPU (gloo) DDP job, set up the way torchrun would set it up."""
    import os

    from glassformer.training import distributed

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    trainer = make_trainer(ddp_config(out_dir), n_train=96, dropout=0.0)
    trainer.fit()
    if rank == 0:
        torch.save(trainer.model.state_dict(), f"{out_dir}/final.pt")
    distributed.cleanup()


def ddp_budget_worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    """One process of a 2-process job with a one-minute budget, whose simulated clock runs at its own rate."""
    import json
    import os

    from glassformer.training import distributed

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    config = TrainConfig(batch_size=8, lr=1e-2, warmup_steps=20, max_minutes=1.0, metric="accuracy", log_every=1,
                         progress=False, load_best_at_end=False, precision="fp32")
    trainer = make_trainer(config, n_train=96, dropout=0.0)
    now = [1000.0]

    def tick(*_: object) -> None:
        # A forward pass costs 0.25 simulated seconds on rank 0 and 0.4 on rank 1: planned from their own clocks,
        # the two processes would stop at different steps (and the longer one would wait forever for the other).
        now[0] += 0.25 if rank == 0 else 0.4

    trainer.clock = lambda: now[0]
    trainer.model.register_forward_pre_hook(tick)
    result = trainer.fit()
    with open(f"{out_dir}/rank{rank}.json", "w", encoding="utf-8") as out:
        json.dump({"steps": result.steps, "budget": result.budget}, out)
    distributed.cleanup()
