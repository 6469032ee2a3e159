"""What checking a saved model's manifest costs: load_saved with and without verification, side by side.

    .venv/bin/python benchmarks/verify.py [DIR]     # default: the quick sentiment model in the cache

Loads the directory five times each way, interleaved (median seconds), and times the hashing alone
(sha256 of every file the manifest lists), so the cost reads in seconds and in MB/s.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path


def main() -> None:
    from glassformer._files import verify_manifest
    from glassformer.precision import cpu_flags_summary
    from glassformer.tasks import sentiment
    from glassformer.training import load_saved

    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else sentiment.default_out_dir(sentiment.get_preset("quick"))
    size = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
    load_saved(directory)  # warm the file cache: both ways then read from memory
    times: dict[str, list[float]] = {"verify": [], "no verify": [], "hashing alone": []}
    for _ in range(5):
        for name, fn in (("verify", lambda: load_saved(directory, verify=True)),
                         ("no verify", lambda: load_saved(directory, verify=False)),
                         ("hashing alone", lambda: verify_manifest(directory))):
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"# {directory} ({size / 1e6:.1f} MB); {os.cpu_count()} CPUs ({cpu_flags_summary()}); "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"| {'load_saved':<16} | {'median s':>8} |")
    print(f"|{'-' * 18}|{'-' * 10}|")
    for name, seconds in median.items():
        print(f"| {name:<16} | {seconds:>8.3f} |")
    print(f"\nverification adds {median['verify'] - median['no verify']:.3f} s "
          f"({median['verify'] / median['no verify']:.2f}x the load); hashing runs at "
          f"{size / 1e6 / median['hashing alone']:.0f} MB/s")


if __name__ == "__main__":
    main()
