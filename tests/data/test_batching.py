"""Dynamic padding and the length-bucketed, shardable batch sampler."""

from __future__ import annotations

import random

import pytest
import torch
from torch.nn.utils.rnn import pad_sequence

from glassformer.data.batching import BucketBatchSampler, PaddingCollator


def test_collator_matches_torch_pad_sequence():
    """Reference: torch.nn.utils.rnn.pad_sequence pads to the longest in the batch."""
    seqs = [[5, 6, 7], [8], [9, 10, 11, 12, 13]]
    batch = PaddingCollator(pad_id=1)([{"input_ids": s, "label": i} for i, s in enumerate(seqs)])
    expected = pad_sequence([torch.tensor(s) for s in seqs], batch_first=True, padding_value=1)
    assert torch.equal(batch["input_ids"], expected)
    assert batch["input_ids"].shape == (3, 5)
    assert torch.equal(batch["attention_mask"], (expected != 1).long())
    assert torch.equal(batch["label"], torch.tensor([0, 1, 2]))


def test_collator_pads_sequence_labels_with_ignore_index():
    batch = PaddingCollator(pad_id=0)([{"input_ids": [1, 2], "labels": [2, 3]}, {"input_ids": [4], "labels": [5]}])
    assert batch["labels"].tolist() == [[2, 3], [5, -100]]
    loss = torch.nn.functional.cross_entropy(torch.zeros(2, 2, 6).transpose(1, 2), batch["labels"])
    assert loss.item() == pytest.approx(torch.log(torch.tensor(6.0)).item())  # the padded target is ignored
    with pytest.raises(ValueError, match="example 1 has fields"):
        PaddingCollator()([{"input_ids": [1]}, {"ids": [2]}])


def _lengths(n=1000, seed=0):
    rng = random.Random(seed)
    return [rng.randint(1, 200) for _ in range(n)]


def test_every_example_once_per_epoch_and_seeded():
    lengths = _lengths(1003)
    sampler = BucketBatchSampler(lengths, 16, seed=5)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 63
    assert sorted(i for b in batches for i in b) == list(range(1003))
    assert all(len(b) == 16 for b in batches[:-1]) and len(batches[-1]) == 1003 % 16
    assert list(BucketBatchSampler(lengths, 16, seed=5)) == batches
    sampler.set_epoch(1)
    assert list(sampler) != batches
    assert list(BucketBatchSampler(lengths, 16, seed=6)) != batches
    assert len(BucketBatchSampler(lengths, 16, drop_last=True)) == 62


def test_bucketing_cuts_padding_against_random_batches():
    lengths = _lengths(2000)
    def padded(batches):
        return sum(len(b) * max(lengths[i] for i in b) for b in batches)
    bucketed = padded(list(BucketBatchSampler(lengths, 32, seed=0)))
    plain = padded(list(BucketBatchSampler(None, 32, n_examples=2000, seed=0)))
    real = sum(lengths)
    assert plain > 1.7 * real  # uniform lengths: a random batch's maximum is near 200
    assert bucketed < 1.1 * real


def test_resume_skips_exactly_the_consumed_batches():
    sampler = BucketBatchSampler(_lengths(300), 8, seed=1)
    sampler.set_epoch(2)
    full = list(sampler)
    sampler.set_epoch(2, start_batch=17)
    assert list(sampler) == full[17:]
    assert list(sampler) == full  # the skip applies to one pass only
    with pytest.raises(ValueError, match="outside the epoch"):
        sampler.set_epoch(0, start_batch=len(sampler) + 1)


@pytest.mark.parametrize("world", [2, 4])
def test_shards_rebuild_the_single_process_batches(world):
    lengths = _lengths(250)
    single = list(BucketBatchSampler(lengths, 8, seed=3))
    shards = [list(BucketBatchSampler(lengths, 8, seed=3, num_replicas=world, rank=r)) for r in range(world)]
    assert all(len(s) == len(single) for s in shards)  # every process runs the same number of steps
    for step, batch in enumerate(single[:-1]):
        parts = [shards[r][step] for r in range(world)]
        assert sorted(i for p in parts for i in p) == sorted(batch)
        assert all(len(p) == 8 // world for p in parts)
        assert all(set(p).isdisjoint(q) for a, p in enumerate(parts) for q in parts[a + 1:])
    last = [shards[r][-1] for r in range(world)]
    assert set(i for p in last for i in p) == set(single[-1]) and all(last)
    with pytest.raises(ValueError, match="not divisible by the number of processes 3"):
        BucketBatchSampler(lengths, 8, num_replicas=3, rank=0)


def test_unshuffled_order_for_evaluation():
    lengths = [5, 1, 4, 2, 3]
    sampler = BucketBatchSampler(lengths, 2, shuffle=False)
    assert list(sampler) == [[1, 3], [4, 2], [0]]
    assert list(BucketBatchSampler(None, 2, n_examples=5, shuffle=False)) == [[0, 1], [2, 3], [4]]
