"""Data-parallel training: 2 CPU processes over gloo match 1 process with the same global batch."""

from __future__ import annotations

import json

import pytest
import torch
import torch.multiprocessing as mp

from glassformer._localhost import free_port
from glassformer.training.distributed import DistInfo, env_info

from .helpers import ddp_budget_worker, ddp_config, ddp_worker, make_trainer


def _losses(path):
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return ([(r["step"], r["loss"]) for r in records if r["kind"] == "train"],
            [(r["step"], r["metrics"]) for r in records if r["kind"] == "eval"])


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tmp_path):
    single = make_trainer(ddp_config(str(tmp_path / "one")), n_train=96, dropout=0.0)
    single.fit()
    mp.spawn(ddp_worker, args=(2, free_port(), str(tmp_path / "two")), nprocs=2, join=True)

    one_train, one_eval = _losses(tmp_path / "one" / "metrics.jsonl")
    two_train, two_eval = _losses(tmp_path / "two" / "metrics.jsonl")
    assert [s for s, _ in one_train] == [s for s, _ in two_train] == list(range(1, 13))
    for (_, a), (_, b) in zip(one_train, two_train):
        assert abs(a - b) <= 1e-5, (one_train, two_train)
    print("max |loss difference|:", max(abs(a - b) for (_, a), (_, b) in zip(one_train, two_train)))
    assert [s for s, _ in one_eval] == [s for s, _ in two_eval] == [4, 8, 12]
    for (_, a), (_, b) in zip(one_eval, two_eval):
        assert a["accuracy"] == b["accuracy"] and abs(a["loss"] - b["loss"]) <= 1e-5
    final = torch.load(tmp_path / "two" / "final.pt")
    for name, tensor in single.model.state_dict().items():
        torch.testing.assert_close(final[name], tensor, rtol=0, atol=1e-5, msg=name)
    last = torch.load(tmp_path / "two" / "checkpoints" / "last.pt", weights_only=True)
    assert last["world_size"] == 2 and len(last["rng"]) == 2  # every rank's generators, written by rank 0


@pytest.mark.slow
def test_every_process_follows_rank_0s_time_budget(tmp_path):
    # Each process's clock runs at its own rate; both plans (the timed steps', and the second at the warm-up's end)
    # and the deadline are rank 0's, so the processes train the same steps and stop together.
    mp.spawn(ddp_budget_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    zero, one = (json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1))
    assert zero == one
    assert zero["steps"] == zero["budget"]["steps"] and zero["budget"]["replanned"]["at_step"] == 20
    assert zero["budget"]["replanned"]["step_seconds"] == pytest.approx(0.25)


def test_env_info_reads_torchrun_variables(monkeypatch):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "8")
    monkeypatch.setenv("LOCAL_RANK", "1")
    info = env_info()
    assert info == DistInfo(rank=3, world_size=8, local_rank=1) and not info.is_main and info.enabled
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(ValueError, match="must be integers"):
        env_info()
