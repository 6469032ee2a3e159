"""Batching: dynamic padding and length-bucketed batches that shard across data-parallel processes.

Padding every batch only to its own longest sequence, and putting sequences of similar length in
the same batch, removes most of the padding a fixed maximum length would cost. The bucketed sampler
keeps training random enough by shuffling the examples first, sorting only inside buckets of about
50 batches, and then shuffling the order of the batches.
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Mapping, Sequence

import torch

PAD_LABEL = -100  # the index torch's cross_entropy ignores by default


def pad_sequences(sequences: Sequence[Sequence[int] | torch.Tensor], pad_value: int) -> torch.Tensor:
    """Stack 1-D integer sequences into a (B, T) tensor, T = the longest, right-padded with `pad_value`."""
    rows = [torch.as_tensor(seq, dtype=torch.long) for seq in sequences]
    out = torch.full((len(rows), max((len(r) for r in rows), default=0)), pad_value, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
    return out


class PaddingCollator:
    """Collate a list of example dicts into tensors, padding each sequence field to the batch's longest.

    Sequence fields are padded with `pad_id` (``input_ids`` and any field not named in `pad_values`)
    or with their entry in `pad_values` (by default ``labels`` → -100, ignored by cross-entropy).
    Scalar fields become 1-D tensors. An ``attention_mask`` (1 = real token, 0 = padding) is added
    for ``input_ids`` when the examples do not bring one.
    """

    def __init__(self, pad_id: int = 0, pad_values: Mapping[str, int] | None = None) -> None:
        self.pad_id = pad_id
        self.pad_values = {"labels": PAD_LABEL, "attention_mask": 0, **(pad_values or {})}

    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        if not examples:
            raise ValueError("cannot collate an empty batch")
        keys = list(examples[0].keys())
        for i, example in enumerate(examples):
            if list(example.keys()) != keys:
                raise ValueError(f"example {i} has fields {list(example.keys())}, example 0 has {keys}")
        batch: dict[str, torch.Tensor] = {}
        for key in keys:
            values = [example[key] for example in examples]
            if _is_sequence(values[0]):
                batch[key] = pad_sequences(values, self.pad_values.get(key, self.pad_id))
            else:
                batch[key] = torch.as_tensor(values)
        if "input_ids" in batch and "attention_mask" not in batch:
            lengths = torch.tensor([len(example["input_ids"]) for example in examples])
            batch["attention_mask"] = (torch.arange(batch["input_ids"].shape[1]) < lengths[:, None]).long()
        return batch


def _is_sequence(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return value.dim() > 0
    return isinstance(value, (list, tuple))


class BucketBatchSampler:
    """Length-bucketed, seeded batches of indices, optionally one shard per data-parallel process.

    Each epoch: permute all indices with a generator seeded by (seed, epoch); cut the permutation
    into buckets of ``bucket_batches × batch_size`` indices; sort each bucket by length; cut it into
    batches; shuffle the order of all batches. ``batch_size`` is the *global* batch: with
    ``num_replicas`` processes, process ``rank`` receives every ``num_replicas``-th index of each
    global batch, so the union over processes at every step is exactly the batch a single process
    would see, and all processes run the same number of steps. ``lengths=None`` gives plain shuffled
    batches; ``shuffle=False`` gives the data in order (sorted within buckets when lengths are given).
    """

    def __init__(self, lengths: Sequence[int] | None, batch_size: int, *, n_examples: int | None = None,
                 shuffle: bool = True, seed: int = 0, bucket_batches: int = 50, drop_last: bool = False,
                 num_replicas: int = 1, rank: int = 0) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"rank={rank} is not in [0, num_replicas={num_replicas})")
        if batch_size % num_replicas:
            raise ValueError(f"global batch_size={batch_size} is not divisible by the number of processes "
                             f"{num_replicas}")
        if lengths is None and n_examples is None:
            raise ValueError("give either lengths or n_examples")
        self.lengths = None if lengths is None else torch.as_tensor(list(lengths), dtype=torch.long)
        self.n = len(self.lengths) if self.lengths is not None else int(n_examples)
        if self.n == 0:
            raise ValueError("cannot batch an empty data set")
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.bucket_batches = bucket_batches
        self.drop_last = drop_last
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Choose the epoch (it seeds the shuffle) and skip its first `start_batch` batches (for resuming)."""
        if not 0 <= start_batch <= len(self):
            raise ValueError(f"start_batch={start_batch} is outside the epoch's {len(self)} batches")
        self.epoch = epoch
        self.start_batch = start_batch

    def __len__(self) -> int:
        if self.drop_last:
            return self.n // self.batch_size
        return math.ceil(self.n / self.batch_size)

    def global_batches(self, epoch: int) -> list[list[int]]:
        """The epoch's batches before sharding: what one process with this batch size would see."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.randperm(self.n, generator=generator)
        else:
            order = torch.arange(self.n)
        if self.lengths is None:
            batches = [order[i:i + self.batch_size].tolist() for i in range(0, self.n, self.batch_size)]
        else:
            batches = []
            bucket = self.batch_size * self.bucket_batches
            for start in range(0, self.n, bucket):
                chunk = order[start:start + bucket]
                # A stable sort keeps equal-length sequences in their shuffled order.
                chunk = chunk[torch.sort(self.lengths[chunk], stable=True).indices]
                batches.extend(chunk[i:i + self.batch_size].tolist() for i in range(0, len(chunk), self.batch_size))
        # Only the last batch can be short (buckets are whole multiples of the batch size); keep it
        # last so that every other step has the full global batch.
        short = batches.pop() if len(batches[-1]) < self.batch_size else None
        if self.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
        if short is not None and not self.drop_last:
            batches.append(short)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.global_batches(self.epoch)[self.start_batch:]:
            yield self._shard(batch)
        self.start_batch = 0

    def _shard(self, batch: list[int]) -> list[int]:
        if self.num_replicas == 1:
            return batch
        if len(batch) % self.num_replicas:
            # Only the last batch can be short; repeat its first indices so every process gets one.
            need = self.num_replicas - len(batch) % self.num_replicas
            batch = batch + [batch[i % len(batch)] for i in range(need)]
        return batch[self.rank::self.num_replicas]
