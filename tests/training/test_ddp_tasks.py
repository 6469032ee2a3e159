"""Every task under torchrun: 2 processes equal 1, exactly one process writes, and a killed worker is survived.

Each case launches real torchrun jobs (gloo on the CPU) running tests/training/ddp_task.py on tiny
synthetic data in float32, and compares them:

- 2 processes vs 1 with the same global batch: every logged training loss within 1e-5, and the
  saved weights within 1e-5;
- the saved directory was written by rank 0 alone (one "saved to" line across both processes, and
  config.json says who wrote it); a vocabulary learnt before training was learnt once, by rank 0,
  and every rank holds the same one;
- two torchrun "nodes" of one process each, meeting through c10d rendezvous on 127.0.0.1, as the
  README's two-machine command does;
- ``torchrun --max-restarts 1`` with one worker killed by SIGKILL after a checkpoint: the job
  finishes by itself and its final weights equal the uninterrupted 2-process run's, bit for bit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from glassformer._localhost import free_port

pytestmark = pytest.mark.slow  # torchrun jobs: 10-20 s each

ROOT = Path(__file__).resolve().parents[2]


def torchrun(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", *args]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def run_task(task: str, out: Path, processes: int, **env: str) -> str:
    result = torchrun("--standalone", f"--nproc-per-node={processes}", "--max-restarts=1",
                      "-m", "tests.training.ddp_task", task, str(out), env=env)
    return result.stdout


def train_losses(out: Path) -> list[tuple[int, float]]:
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in records if r["kind"] == "train"]


def assert_same_weights(a: Path, b: Path, atol: float) -> None:
    """Every saved tensor equal within `atol`, except the attention key biases when comparing different runs.

    A key bias adds the same amount to every score of a query, which softmax removes, so its exact
    gradient is zero; what reaches it is rounding noise of the order of 1e-9, and Adam divides that
    by its own square root, turning noise that differs between one and two processes into steps of
    the size of the learning rate. Those biases change no output.
    """
    left, right = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert left.keys() == right.keys()
    for name in left:
        if atol > 0 and name.endswith("k_proj.bias"):
            continue
        torch.testing.assert_close(left[name], right[name], rtol=0, atol=atol, msg=name)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """For each task, the 1-process and the 2-process run (shared by the tests below)."""
    root = tmp_path_factory.mktemp("ddp")
    found = {}
    for task in ("sentiment", "vit", "lm", "translate"):
        one, two = root / f"{task}-1", root / f"{task}-2"
        found[task] = (one, run_task(task, one, 1), two, run_task(task, two, 2))
    return found


@pytest.mark.parametrize("task", ["sentiment", "vit", "lm"])
def test_two_processes_equal_one(runs, task):
    one, _, two, _ = runs[task]
    a, b = train_losses(one), train_losses(two)
    assert [s for s, _ in a] == [s for s, _ in b] and a
    assert max(abs(x - y) for (_, x), (_, y) in zip(a, b)) <= 1e-5, (a, b)
    assert_same_weights(one, two, atol=1e-5)


@pytest.mark.parametrize("task", ["sentiment", "vit", "lm", "translate"])
def test_one_process_writes_and_the_vocabulary_is_learnt_once(runs, task):
    _, _, two, output = runs[task]
    assert output.count("saved to ") == 1
    assert json.loads((two / "config.json").read_text())["written_by"] == {"rank": 0, "world_size": 2}
    digests = {line.split()[1]: line.split()[3] for line in output.splitlines() if "vocabulary" in line}
    assert set(digests) == {"0:", "1:"} and len(set(digests.values())) == 1
    if task in ("sentiment", "lm", "translate"):  # the scratch WordPiece vocabulary, the BPEs
        assert "rank 0: vocabulary" in output and "learnt 1 time(s)" in output and "learnt 0 time(s)" in output


def test_two_nodes_through_c10d_rendezvous(runs, tmp_path):
    port = free_port()
    out = tmp_path / "nodes"
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1",
               "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}", "--rdzv-id=glassformer-test",
               "-m", "tests.training.ddp_task", "sentiment", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    nodes = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    outputs = [node.communicate(timeout=300) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    assert sum(stdout.count("saved to ") for stdout, _ in outputs) == 1
    assert_same_weights(runs["sentiment"][2], out, atol=1e-5)  # the same job as 2 processes on one node


def test_a_killed_worker_is_restarted_and_the_run_ends_as_if_never_interrupted(runs, tmp_path):
    out = tmp_path / "fault"
    output = run_task("sentiment", out, 2, FAULT_AT_STEP="5", FAULT_RANK="1")
    assert output.count("saved to ") == 1
    assert_same_weights(runs["sentiment"][2], out, atol=0)  # bit for bit
