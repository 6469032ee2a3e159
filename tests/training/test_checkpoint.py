"""Damaged checkpoints give errors that name the file and what is wrong with it."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from glassformer.training.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_model_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"model": nn.Linear(3, 2).state_dict(), "optimizer": {}, "scheduler": {}, "rng": [],
                           "position": {"step": 1, "epoch": 0, "batch": 1}, "trainer": {}})
    return path


def test_round_trip_and_atomic_write(good):
    state = load_checkpoint(good)
    assert state["position"] == {"step": 1, "epoch": 0, "batch": 1}
    assert [p.name for p in good.parent.iterdir()] == ["last.pt"]  # no temporary file left behind


def test_truncated_file(good):
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=rf"checkpoint {good} \(\d+ bytes\) cannot be read; .*truncated or corrupt"):
        load_checkpoint(good)


def test_corrupt_and_foreign_files(tmp_path, good):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all" * 10)
    with pytest.raises(CheckpointError, match="garbage.pt .*truncated or corrupt"):
        load_checkpoint(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="foreign.pt is not a glassformer checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="missing.pt does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_missing_keys_and_newer_version(tmp_path):
    path = save_checkpoint(tmp_path / "partial.pt", {"model": {}, "position": {}})
    with pytest.raises(CheckpointError, match=r"partial.pt lacks optimizer, scheduler, rng, trainer \(it holds model, position\)"):
        load_checkpoint(path)
    newer = tmp_path / "newer.pt"
    torch.save({"format": "glassformer-checkpoint", "version": 99}, newer)
    with pytest.raises(CheckpointError, match="format version 99; .*reads versions up to 1"):
        load_checkpoint(newer, require=())


def test_model_state_that_does_not_fit():
    state = nn.Linear(3, 2).state_dict()
    state["weight"] = torch.zeros(5, 3)
    del state["bias"]
    state["extra"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"x.pt does not fit Linear: missing tensors bias; unexpected tensors "
                                              r"extra; wrong shapes weight: file \(5, 3\) vs model \(2, 3\)"):
        load_model_state(nn.Linear(3, 2), state, "x.pt")


def test_rng_state_round_trip(tmp_path):
    path = save_checkpoint(tmp_path / "rng.pt", {"rng": rng_state()})
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(load_checkpoint(path, require=("rng",))["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
