"""The language model's presets as a user runs them: `glassformer train lm --preset NAME`, timed as a whole.

Run:  .venv/bin/python benchmarks/lm_presets.py [--preset quick] [--preset full] [-- EXTRA TRAIN FLAGS]

Each preset is a time budget; this checks the budget is kept from the outside (the wall time of the
whole command, data loading and Python start-up included) and prints the held-out bits/char beside its
anchor measured in the same run, the best Markov chain on the same works and vocabulary, with the
crossing point and the steps the budget bought. CPU flags, the precision the run used and the load
average before and after are printed with every row: a row taken at load ≥ 1 is void.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GLASSFORMER = [sys.executable, "-m", "glassformer.cli"]


def cpu_flags() -> str:
    """The instruction sets that decide glassformer's kernels and precision on this CPU."""
    flags = set(Path("/proc/cpuinfo").read_text().split()) if Path("/proc/cpuinfo").exists() else set()
    return " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags) or "unknown"


def run_preset(name: str, extra: list[str], keep: str | None = None) -> dict:
    """Train preset `name` into a fresh directory with the real CLI; the figures it printed and the wall time.

    With `keep`, the model is trained into ``keep/lm-NAME`` (replacing one there) and stays.
    """
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(keep, f"lm-{name}") if keep else Path(scratch, "model")
        load_before = os.getloadavg()[0]
        began = time.perf_counter()
        done = subprocess.run([*GLASSFORMER, "train", "lm", "--preset", name, "--out", str(out), "--json",
                               *(["--overwrite"] if keep else []), *extra], capture_output=True, text=True)
        wall = time.perf_counter() - began
        if done.returncode != 0:
            raise SystemExit(f"train lm --preset {name} failed:\n{done.stderr[-2000:]}")
        figures = json.loads(done.stdout)
        config = json.loads((out / "config.json").read_text())
    metrics = config["extra"]["metrics"]
    return {"preset": name, "wall_seconds": round(wall, 1), "load_before": round(load_before, 2),
            "load_after": round(os.getloadavg()[0], 2), "precision": metrics["precision"], **figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", action="append", help="preset to run (repeatable; default: quick)")
    parser.add_argument("--keep", metavar="DIR", help="train into DIR/lm-PRESET and keep the models")
    parser.add_argument("extra", nargs="*", help="more `train lm` flags, after --")
    args = parser.parse_args()
    print(f"CPU flags: {cpu_flags()}; {os.cpu_count()} cores")
    rows = [run_preset(name, args.extra, args.keep) for name in args.preset or ["quick"]]
    print("| preset | wall | steps | bits/char | Markov chain (anchor) | ratio | crossing | precision | load |")
    print("|---|---:|---:|---:|---:|---:|---|---|---|")
    for row in rows:
        chain = row["markov"]["bits_per_char"]
        crossing = (f"step {row['crossing']['step']}, {row['crossing']['seconds'] / 60:.1f} min"
                    if row["crossing"] else "never")
        print(f"| {row['preset']} {' '.join(args.extra)} | {row['wall_seconds'] / 60:.2f} min | {row['steps']} | "
              f"{row['bits_per_char']:.4f} | {chain:.4f} (order {row['markov']['order']}) | "
              f"{row['bits_per_char'] / chain:.3f} | {crossing} | {row['precision']} | "
              f"{row['load_before']} → {row['load_after']} |")
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
