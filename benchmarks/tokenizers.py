"""Tokenizer benchmark: ByteLevelBPE training vs HF tokenizers' BpeTrainer (and the textbook trainer),
GPT-2 encoding vs tiktoken, and the peak memory of each; long spaceless pieces vs tiktoken; batch encoding
throughput vs tiktoken's encode_ordinary_batch and HF tokenizers' encode_batch, one thread and all threads.

Every measurement runs in its own subprocess so that its peak resident memory (ru_maxrss) is its own;
"Δ peak" is that peak minus the process's resident memory just before the timed work started (after
imports and reading the corpus). HF tokenizers' thread count is set with RAYON_NUM_THREADS in that
subprocess. Run: ``python benchmarks/tokenizers.py`` (under a minute on 2 cores).
"""

from __future__ import annotations

import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and this file would shadow the Hugging Face
# `tokenizers` package it measures against; the repository root goes there instead (for tests.tokenizers).
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))
sys.path.append(str(_HERE))  # last, for _figures only: the packages of the same names as our scripts come first

VOCAB_SIZE = 8000
NAIVE_DOCS = 50  # the textbook trainer recounts every pair at every merge: only a subset is practical
NAIVE_VOCAB = 512
LONG_PIECE_CHARS = 65536
LONG_PIECE_ALPHABETS = {"letters": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "digits": "0123456789",
                        "punctuation": "!#$%&()*+,-./:;<=>?@[]^_`{|}~",
                        "CJK": "".join(chr(c) for c in range(0x4E00, 0x4E00 + 3000))}


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _brown() -> list[str]:
    from glassformer.data.brown import brown_texts

    return brown_texts()


def _tiktoken_gpt2():
    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks

    from glassformer.data import fetch
    from glassformer.tokenizers import GPT2_PATTERN

    directory = fetch("gpt2-tokenizer", quiet=True)
    ranks = data_gym_to_mergeable_bpe_ranks(str(directory / "vocab.bpe"), str(directory / "encoder.json"))
    return tiktoken.Encoding("gpt2-local", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": 50256})


def _hf_exported(name: str):
    """HF `tokenizers` reading the tokenizer.json that glassformer exports for "gpt2" or "bert"."""
    import tempfile

    from glassformer.tokenizers import load_tokenizer, save_tokenizer_json
    from tokenizers import Tokenizer

    with tempfile.TemporaryDirectory() as directory:
        return Tokenizer.from_file(str(save_tokenizer_json(load_tokenizer(name), Path(directory) / "t.json")))


def _best_of(repeats: int, work) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


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
        from tests.tokenizers.naive_bpe import naive_learn_merges

        from glassformer.tokenizers.byte_bpe import count_pieces, learn_merges

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
        encoding = _tiktoken_gpt2()
        before = _rss_mb()
        start = time.perf_counter()
        n_ids = sum(len(encoding.encode_ordinary(t)) for t in texts)  # one thread: no encode_batch
        result.update(seconds=time.perf_counter() - start, ids=n_ids)
    elif name == "long_pieces":
        # Ours and tiktoken side by side on each 64k-character piece, best of three each.
        from glassformer.tokenizers import gpt2

        tokenizer, encoding = gpt2(), _tiktoken_gpt2()
        before = _rss_mb()
        rng = random.Random(0)
        for label, alphabet in LONG_PIECE_ALPHABETS.items():
            text = "".join(rng.choice(alphabet) for _ in range(LONG_PIECE_CHARS))
            same = tokenizer.encode_ordinary(text) == encoding.encode_ordinary(text)
            result[label] = {"ours": _best_of(3, lambda: tokenizer.encode_ordinary(text)),
                             "tiktoken": _best_of(3, lambda: encoding.encode_ordinary(text)), "same_ids": same}
    elif name.startswith("batch_"):
        # batch_<who>_<tokenizer>_<threads>: one call on all 500 Brown documents.
        _, who, which, threads = name.split("_")
        if who == "ours":
            from glassformer.tokenizers import load_tokenizer

            tokenizer = load_tokenizer(which)  # fresh: its caches start empty
            work = partial(tokenizer.encode_batch, texts, add_special_tokens=False)
        elif who == "tiktoken":
            encoding = _tiktoken_gpt2()
            work = partial(encoding.encode_ordinary_batch, texts, num_threads=1 if threads == "1" else len_cpus())
        else:
            work = partial(_hf_exported(which).encode_batch, texts, add_special_tokens=False)
        before = _rss_mb()
        start = time.perf_counter()
        rows = work()
        if who == "hf":
            rows = [encoding.ids for encoding in rows]
        result.update(seconds=time.perf_counter() - start, ids=sum(map(len, rows)),
                      digest=hash(tuple(map(tuple, rows))))
    else:
        raise ValueError(f"unknown measurement {name!r}")
    result.update(peak_mb=_peak_mb(), delta_mb=_peak_mb() - before)
    return result


def measure(name: str) -> dict:
    # HF tokenizers (Rayon) reads its thread count once, at the first parallel call, from the environment.
    threads = name.rsplit("_", 1)[-1] if name.startswith("batch_hf") else None
    env = {**os.environ, "RAYON_NUM_THREADS": "1" if threads == "1" else str(len_cpus()),
           "TOKENIZERS_PARALLELISM": "true"}
    output = subprocess.run([sys.executable, __file__, "--one", name], capture_output=True, text=True, check=True,
                            env=env)
    return json.loads(output.stdout.strip().splitlines()[-1])


def _load() -> str:
    with open("/proc/loadavg") as handle:
        return " ".join(handle.read().split()[:3])


def _cpu_flags() -> str:
    with open("/proc/cpuinfo") as handle:
        flags = set(handle.read().split())
    return " ".join(sorted(flags & {"avx2", "avx512f", "avx512_bf16"})) or "none of avx2/avx512f/avx512_bf16"


BATCHES = ["batch_ours_gpt2_1", "batch_tiktoken_gpt2_1", "batch_tiktoken_gpt2_all", "batch_hf_gpt2_1",
           "batch_hf_gpt2_all", "batch_ours_bert_1", "batch_hf_bert_1", "batch_hf_bert_all"]


def main() -> None:
    load_start = _load()
    names = ["train_ours", "train_hf", "subset_ours", "subset_naive", "encode_ours", "encode_tiktoken",
             "long_pieces", *BATCHES]
    results = {name: measure(name) for name in names}
    print(f"# tokenizers benchmark — {platform.processor() or platform.machine()}, {len_cpus()} CPUs "
          f"(CPU flags: {_cpu_flags()}), Python {platform.python_version()}, "
          f"load average {load_start} at the start, {_load()} at the end")
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
    print(f"| {'64k-character piece without a space, GPT-2 vocab':48s} | {'ours':>10s} | {'tiktoken':>10s} | "
          f"{'ours / tiktoken':>15s} | same ids |")
    print(f"|{'-' * 50}|{'-' * 12}|{'-' * 12}|{'-' * 17}|----------|")
    for label in LONG_PIECE_ALPHABETS:
        entry = results["long_pieces"][label]
        print(f"| {label:48s} | {entry['ours'] * 1e3:7.1f} ms | {entry['tiktoken'] * 1e3:7.1f} ms | "
              f"{entry['ours'] / entry['tiktoken']:13.1f}× | {str(entry['same_ids']):8s} |")
    print()
    print(f"| {'batch encode of Brown (500 documents, one call)':48s} | {'MB/s':>10s} | {'ours ÷ row':>10s} |")
    print(f"|{'-' * 50}|{'-' * 12}|{'-' * 12}|")
    nbytes = results["train_ours"]["bytes"]
    rate = {name: nbytes / results[name]["seconds"] / 1e6 for name in BATCHES}
    labels = {"batch_ours_gpt2_1": "ours encode_batch, GPT-2 (one thread)",
              "batch_tiktoken_gpt2_1": "tiktoken encode_ordinary_batch, 1 thread",
              "batch_tiktoken_gpt2_all": f"tiktoken encode_ordinary_batch, {len_cpus()} threads",
              "batch_hf_gpt2_1": "HF tokenizers encode_batch, GPT-2, 1 thread",
              "batch_hf_gpt2_all": f"HF tokenizers encode_batch, GPT-2, {len_cpus()} threads",
              "batch_ours_bert_1": "ours encode_batch, BERT uncased (one thread)",
              "batch_hf_bert_1": "HF tokenizers encode_batch, BERT, 1 thread",
              "batch_hf_bert_all": f"HF tokenizers encode_batch, BERT, {len_cpus()} threads"}
    for name in BATCHES:
        ours = rate["batch_ours_bert_1" if "bert" in name else "batch_ours_gpt2_1"]
        print(f"| {labels[name]:48s} | {rate[name]:10.2f} | {ours / rate[name]:9.2f}× |")
    same_gpt2 = len({results[n]["digest"] for n in BATCHES if "gpt2" in n}) == 1
    same_bert = len({results[n]["digest"] for n in BATCHES if "bert" in n}) == 1
    print()
    print(f"# batch ids identical across ours / tiktoken / HF: GPT-2 {same_gpt2}, BERT {same_bert}")
    same = results["subset_ours"]["merges_digest"] == results["subset_naive"]["merges_digest"]
    print(f"# naive and optimised trainers learned identical merges on the subset: {same}")
    print(f"# ids produced: ours {results['encode_ours']['ids']}, tiktoken {results['encode_tiktoken']['ids']}")
    print("# HF BpeTrainer runs multi-threaded (Rayon) on the available cores; ours and tiktoken use one thread.")
    from _figures import record

    a, b = results["encode_ours"], results["encode_tiktoken"]
    record("encode Brown with the GPT-2 vocabulary, one thread", ours_rate, "MB/s", anchor="tiktoken, one thread",
           anchor_value=ref_rate, note=f"same ids: {a['ids'] == b['ids']}")
    a, b = results["train_ours"], results["train_hf"]
    record(f"learn a byte-level BPE of {VOCAB_SIZE} on Brown", a["seconds"], "s",
           anchor=f"HF tokenizers BpeTrainer ({len_cpus()} threads)", anchor_value=b["seconds"],
           note="ratio: our time over HF's")


def len_cpus() -> int:
    return os.cpu_count() or 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(run_one(sys.argv[2])))
    else:
        main()
