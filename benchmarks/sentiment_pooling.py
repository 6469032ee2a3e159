"""Which sentence vector should the quick sentiment preset use? [CLS] through the pooler or the mean, on 3 seeds.

Run:  .venv/bin/python benchmarks/sentiment_pooling.py [--seeds 0 1 2] [--keep DIR]

For each pooling and seed it trains `glassformer train sentiment --preset quick --pooling P --seed S` with
the real CLI (the preset's fixed 160 steps, so the accuracies do not depend on the machine's speed or
load; the seed moves both the data split and the training draws) and scores the saved model:

* in domain: the movie-review test split of that seed (the split `train` reports on);
* out of domain, every sentence of two sets from the same VADER archive the movie reviews come from
  (vaderSentiment 3.3.2's ``hutto_ICWSM_2014``, labelled the way the movie reviews are, by the sign of
  the mean human rating, zeros dropped): Amazon product-review snippets and tweets. No model trained
  here has seen either.

Prints one row per run and the mean and spread (sample standard deviation) per pooling, with the CPU
flags, the precision and the load average. Every accuracy here is scored in fp32 (as `eval` scores by
default); the JSON lines also keep what `train` printed, scored at the training precision.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

GLASSFORMER = [sys.executable, "-m", "glassformer.cli"]
INNER = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
SETS = {"product reviews": "amazonReviewSnippets_GroundTruth.txt", "tweets": "tweets_GroundTruth.txt"}


def out_of_domain_sets() -> dict[str, tuple[list[str], list[int]]]:
    """(texts, labels) of each out-of-domain set, read from the cached vaderSentiment sdist."""
    from glassformer.data import cache_dir
    from glassformer.data.text import read_movie_review_scores

    archive = cache_dir() / "downloads" / "vaderSentiment-3.3.2.tar.gz"
    if not archive.exists():
        raise SystemExit(f"{archive} is missing: run `glassformer train sentiment` once to fetch it")
    with tarfile.open(archive) as outer:
        inner = tarfile.open(fileobj=io.BytesIO(outer.extractfile(INNER).read()))
    sets = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, member in SETS.items():
            data = inner.extractfile(f"hutto_ICWSM_2014/{member}").read().decode("utf-8", errors="replace")
            path = Path(scratch, member)
            path.write_text(data.replace("\r\n", "\n"), encoding="utf-8")
            rows = [(score, text) for _, score, text in read_movie_review_scores(path) if score != 0]
            sets[name] = ([text for _, text in rows], [int(score > 0) for score, _ in rows])
    return sets


def accuracy(directory: Path, texts: list[str], labels: list[int]) -> float:
    """The saved classifier's accuracy on (texts, labels), labels 1 = positive."""
    from glassformer.tasks.sentiment import SentimentClassifier

    classifier = SentimentClassifier.load(directory)  # fp32, as `eval` scores by default
    positive = classifier.label_names.index("positive")
    right = 0
    for start in range(0, len(texts), 256):
        probabilities = classifier.predict_proba(texts[start:start + 256], special_tokens="text")
        predicted = (probabilities.argmax(dim=-1) == positive).long().tolist()
        right += sum(p == y for p, y in zip(predicted, labels[start:start + 256]))
    return right / len(texts)


def cpu_flags() -> str:
    flags = set(Path("/proc/cpuinfo").read_text().split()) if Path("/proc/cpuinfo").exists() else set()
    return " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags) or "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--poolings", nargs="+", default=["cls", "mean"])
    parser.add_argument("--keep", metavar="DIR", help="keep the models in DIR/POOLING-sSEED")
    args = parser.parse_args()

    from glassformer.data.text import load_movie_reviews

    sets = out_of_domain_sets()
    print(f"CPU flags: {cpu_flags()}; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} at the start")
    print("out-of-domain sets: " + ", ".join(f"{name} {len(texts):,} sentences ({sum(labels):,} positive)"
                                           for name, (texts, labels) in sets.items()))
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for pooling in args.poolings:
            for seed in args.seeds:
                out = Path(args.keep or scratch, f"{pooling}-s{seed}")
                done = subprocess.run([*GLASSFORMER, "train", "sentiment", "--preset", "quick", "--pooling", pooling,
                                       "--seed", str(seed), "--out", str(out), "--json", "--overwrite"],
                                      capture_output=True, text=True)
                if done.returncode != 0:
                    raise SystemExit(f"training {pooling} seed {seed} failed:\n{done.stderr[-2000:]}")
                figures = json.loads(done.stdout.strip().splitlines()[-1])
                test = load_movie_reviews(seed=seed, quiet=True).test
                row = {"pooling": pooling, "seed": seed, "movie reviews (test)": accuracy(out, test.texts, test.labels),
                       **{name: accuracy(out, *data) for name, data in sets.items()},
                       "train's own test score": figures["accuracy"],
                       "precision": figures["precision"], "load": round(os.getloadavg()[0], 2)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    columns = ["movie reviews (test)", *sets]
    print()
    print("| pooling | seed | " + " | ".join(columns) + " | precision | load |")
    print("|---|---:|" + "---:|" * len(columns) + "---|---:|")
    for row in rows:
        print(f"| {row['pooling']} | {row['seed']} | " + " | ".join(f"{100 * row[c]:.2f}%" for c in columns)
              + f" | {row['precision']} | {row['load']:.2f} |")
    for pooling in args.poolings:
        mine = [row for row in rows if row["pooling"] == pooling]
        cells = []
        for column in columns:
            values = [100 * row[column] for row in mine]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"**{statistics.mean(values):.2f}%** ± {spread:.2f}")
        print(f"| {pooling} | mean ± sd of {len(mine)} | " + " | ".join(cells) + " | | |")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
