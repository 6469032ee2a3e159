"""Peak memory of `train lm --data` on a large generated text file: learning the BPE and 50 training steps.

Run:  .venv/bin/python benchmarks/lm_own_data_memory.py [--size-mb 1024] [--anchor-mb 10] [--steps 50]

A text file of `--size-mb` is generated in a temporary folder (deleted afterwards) from the built-in
Shakespeare works: lines drawn at random, one word in ten replaced by a random mutation of a word, so
the BPE sees new pieces all the way through instead of one text repeated. Then, in a child process,
``glassformer train lm --data FILE --preset quick --max-steps N`` learns the byte-level BPE (on its
bounded sample), encodes the whole file to the token file, fits the Markov baseline on its sample,
trains N steps and scores the held-out text. The same is done on an `--anchor-mb` file in the same run:
if reading streams, the peak resident memory (the child's ``ru_maxrss``) of the large file is close to
the small one's, whatever the size. The child's cache (``GLASSFORMER_HOME``) is a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Sibling scripts (benchmarks/tokenizers.py) must not shadow the packages of the same name.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


def generate(path: Path, size_bytes: int, seed: int = 0) -> int:
    """Write about `size_bytes` of Shakespeare-like text to `path`, 10,000 lines at a time; returns the bytes written."""
    from glassformer.data.corpora import load_shakespeare

    works = load_shakespeare(quiet=True)
    lines = [line for text in works.train.values() for line in text.splitlines() if line.strip()]
    words = sorted({w for line in lines[:20000] for w in line.split() if w.isalpha()})
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"

    def mutate(word: str) -> str:
        i = rng.randrange(len(word))
        return word[:i] + rng.choice(letters) + word[i + 1:]

    written = 0
    with open(path, "w", encoding="utf-8") as handle:
        while written < size_bytes:
            chunk = []
            for line in rng.choices(lines, k=10_000):
                tokens = [mutate(rng.choice(words)) if rng.random() < 0.1 else w for w in line.split()]
                chunk.append(" ".join(tokens))
            data = "\n".join(chunk) + "\n"
            handle.write(data)
            written += len(data.encode("utf-8"))
    return written


def machine() -> dict[str, object]:
    """CPU model, the vector flags that matter to torch, core count and load."""
    model, flags = platform.processor() or "unknown", []
    try:
        info = Path("/proc/cpuinfo").read_text()
        model = next(line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name"))
        present = set(next(line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")))
        flags = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in present]
    except (OSError, StopIteration):
        pass
    return {"cpu": model, "flags": flags, "cores": os.cpu_count(), "load": os.getloadavg()}


def run_child(data: Path, out: Path, home: Path, steps: int, preset: str) -> dict[str, object]:
    """Train in a fresh process; its figures, wall time and peak resident memory (ru_maxrss of that child)."""
    env = {**os.environ, "GLASSFORMER_HOME": str(home)}
    src = Path(__file__).resolve().parents[1] / "src"
    env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")])
    command = [sys.executable, "-c", "import sys, resource; from glassformer.cli import main; code = main(); "
               "print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); "
               "sys.exit(code)",
               "train", "lm", "--data", str(data), "--preset", preset, "--max-steps", str(steps),
               "--out", str(out), "--json"]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"training on {data} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    peak_kb = int(next(line.split()[1] for line in done.stderr.splitlines() if line.startswith("MAXRSS_KB")))
    figures = json.loads(done.stdout)
    return {"mb": data.stat().st_size / 1e6, "peak_rss_mb": peak_kb / 1024, "seconds": seconds,
            "bits_per_char": figures["bits_per_char"], "steps": figures["steps"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=1024, help="the large file's size (default 1024 MB)")
    parser.add_argument("--anchor-mb", type=float, default=10, help="the small file's size (default 10 MB)")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--tmp", help="folder for the generated files (default: the system's temporary folder; "
                                      "it needs --size-mb free, and should be a disk, not a RAM-backed tmpfs)")
    args = parser.parse_args()

    print(json.dumps(machine()))
    rows = []
    with tempfile.TemporaryDirectory(dir=args.tmp, prefix="lm-own-data-") as folder:
        root = Path(folder)
        for label, mb in (("anchor", args.anchor_mb), ("large", args.size_mb)):
            data = root / f"{label}.txt"
            started = time.perf_counter()
            generate(data, int(mb * 1e6))
            made = time.perf_counter() - started
            row = run_child(data, root / f"{label}-model", root / "home", args.steps, args.preset)
            rows.append({"file": label, **row, "generate_seconds": made})
            data.unlink()
    print(f"{'file':<7} {'MB':>8} {'peak RSS MB':>12} {'train s':>9} {'bits/char':>10} {'steps':>6}")
    for row in rows:
        print(f"{row['file']:<7} {row['mb']:>8.1f} {row['peak_rss_mb']:>12.0f} {row['seconds']:>9.1f} "
              f"{row['bits_per_char']:>10.4f} {row['steps']:>6}")
    print(f"peak RSS, large / anchor: {rows[1]['peak_rss_mb'] / rows[0]['peak_rss_mb']:.2f} "
          f"(size ratio {rows[1]['mb'] / rows[0]['mb']:.0f}x); load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
