"""Tokenizer benchmark: ByteLevelBPE training vs HF tokenizers' BpeTrainer (and the textbook trainer),
GPT-2 encoding vs tiktoken, and the peak memory of each.

Every measurement runs in its own subprocess so that its peak resident memory (ru_maxrss) is its own;
"Δ peak" is that peak minus the process's resident memory just before the timed work started (after
imports and reading the corpus). Run: ``python benchmarks/tokenizers.py`` (about a minute and a half).
"""

from __future__ import annotations

import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and this file would shadow the Hugging Face
# `tokenizers` package it measures against; the repository root goes there instead (for tests.tokenizers).
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

VOCAB_SIZE = 8000
NAIVE_DOCS = 50  # the textbook trainer recounts every pair at every merge: only a subset is practical
NAIVE_VOCAB = 512


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _brown() -> list[str]:
    from glassformer.data.brown import brown_texts

    return brown_texts()


def run_one(name: str) -> dict:
    """One measurement, in this process; returns seconds, memory and what it produced."""
    texts = _brown()
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    result: dict = {"bytes": nbytes}
    if name == "train_ours":
        from glassformer.tokenizers import ByteLevelBPE

        tokenizer = ByteLevelBPE()
        before = _rss_mb()
        start = time.perf_counter()
        tokenizer.train(texts, VOCAB_SIZE, progress=False)
        result.update(seconds=time.perf_counter() - start, vocab=tokenizer.vocab_size)
    elif name == "train_hf":
        from tokenizers import Tokenizer, models, pre_tokenizers, trainers

        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                      show_progress=False)
        before = _rss_mb()
        start = time.perf_counter()
        tokenizer.train_from_iterator(texts, trainer)
        result.update(seconds=time.perf_counter() - start, vocab=tokenizer.get_vocab_size())
    elif name in ("subset_ours", "subset_naive"):
        from glassformer.tokenizers.byte_bpe import count_pieces, learn_merges
        from tests.tokenizers.naive_bpe import naive_learn_merges

        subset = texts[:NAIVE_DOCS]
        result["bytes"] = sum(len(t.encode("utf-8")) for t in subset)
        before = _rss_mb()
        start = time.perf_counter()
        counts = count_pieces(subset)
        learn = learn_merges if name == "subset_ours" else naive_learn_merges
        vocab, merges = learn(counts, NAIVE_VOCAB - 256)
        result.update(seconds=time.perf_counter() - start, vocab=len(vocab),
                      merges_digest=hash(tuple(merges)))
    elif name == "encode_ours":
        from glassformer.tokenizers import gpt2

        tokenizer = gpt2()  # a fresh tokenizer: its piece cache starts empty
        before = _rss_mb()
        start = time.perf_counter()
        n_ids = sum(len(tokenizer.encode_ordinary(t)) for t in texts)
        result.update(seconds=time.perf_counter() - start, ids=n_ids)
    elif name == "encode_tiktoken":
        import tiktoken
        from tiktoken.load import data_gym_to_mergeable_bpe_ranks

        from glassformer.data import fetch
        from glassformer.tokenizers import GPT2_PATTERN

        directory = fetch("gpt2-tokenizer", quiet=True)
        ranks = data_gym_to_mergeable_bpe_ranks(str(directory / "vocab.bpe"), str(directory / "encoder.json"))
        encoding = tiktoken.Encoding("gpt2-local", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                                     special_tokens={"<|endoftext|>": 50256})
        before = _rss_mb()
        start = time.perf_counter()
        n_ids = sum(len(encoding.encode_ordinary(t)) for t in texts)  # one thread: no encode_batch
        result.update(seconds=time.perf_counter() - start, ids=n_ids)
    else:
        raise ValueError(f"unknown measurement {name!r}")
    result.update(peak_mb=_peak_mb(), delta_mb=_peak_mb() - before)
    return result


def measure(name: str) -> dict:
    output = subprocess.run([sys.executable, __file__, "--one", name], capture_output=True, text=True, check=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def main() -> None:
    names = ["train_ours", "train_hf", "subset_ours", "subset_naive", "encode_ours", "encode_tiktoken"]
    results = {name: measure(name) for name in names}
    with open("/proc/loadavg") as handle:
        load = handle.read().split()[:3]
    print(f"# tokenizers benchmark — {platform.processor() or platform.machine()}, {len_cpus()} CPUs, "
          f"Python {platform.python_version()}, load average {' '.join(load)} at the end")
    print(f"# corpus: Brown, 500 documents, {results['train_ours']['bytes'] / 1e6:.2f} MB of UTF-8")
    print()
    print(f"| {'measurement':48s} | {'ours':>10s} | {'reference':>10s} | {'ratio':>14s} | "
          f"{'peak RSS ours / ref (MB)':>24s} | {'Δ peak ours / ref (MB)':>22s} |")
    print(f"|{'-' * 50}|{'-' * 12}|{'-' * 12}|{'-' * 16}|{'-' * 26}|{'-' * 24}|")

    def row(label: str, ours: dict, ref: dict, ours_value: float, ref_value: float, unit: str, ratio: str) -> None:
        print(f"| {label:48s} | {ours_value:8.2f} {unit:1s} | {ref_value:8.2f} {unit:1s} | {ratio:>14s} | "
              f"{ours['peak_mb']:10.0f} / {ref['peak_mb']:<11.0f} | {ours['delta_mb']:9.0f} / {ref['delta_mb']:<10.0f} |")

    a, b = results["train_ours"], results["train_hf"]
    row(f"train to vocab {VOCAB_SIZE} vs HF BpeTrainer (s)", a, b, a["seconds"], b["seconds"], "s",
        f"{a['seconds'] / b['seconds']:.2f}× HF time")
    a, b = results["subset_ours"], results["subset_naive"]
    row(f"train {NAIVE_DOCS} docs to vocab {NAIVE_VOCAB} vs naive trainer (s)", a, b, a["seconds"], b["seconds"],
        "s", f"{b['seconds'] / a['seconds']:.1f}× faster")
    a, b = results["encode_ours"], results["encode_tiktoken"]
    ours_rate, ref_rate = a["bytes"] / a["seconds"] / 1e6, b["bytes"] / b["seconds"] / 1e6
    row("encode Brown, GPT-2 vocab vs tiktoken (MB/s)", a, b, ours_rate, ref_rate, "",
        f"{ours_rate / ref_rate:.2f}× tiktoken")
    print()
    same = results["subset_ours"]["merges_digest"] == results["subset_naive"]["merges_digest"]
    print(f"# naive and optimised trainers learned identical merges on the subset: {same}")
    print(f"# ids produced: ours {results['encode_ours']['ids']}, tiktoken {results['encode_tiktoken']['ids']}")
    print("# HF BpeTrainer runs multi-threaded (Rayon) on the available cores; ours and tiktoken use one thread.")


def len_cpus() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(run_one(sys.argv[2])))
    else:
        main()
