"""A text classifier's batches, padded against packed: what `serve` and the studio compute for a burst.

Run:  .venv/bin/python benchmarks/packed_inference.py [--model DIR] [--repeats R]

The quick sentiment model (MiniLM fine-tuned, 6 layers, d 384) at ``precision="auto"``. For batches of
1, 20 and 50 of `serve_load.py`'s four sentences (9–18 tokens), in milliseconds per batch (median of
`--repeats`, after warm-up, the candidates interleaved so that a change in machine speed hits them alike):

- anchor: the padded forward pass, ``model(**inputs).logits`` (every position of the ``(B, T)`` batch);
- packed: ``model.predict_logits`` (the real tokens only, rows rounded up; glassformer.nn.packed);
- each of both with the bfloat16 weights reordered once for oneDNN (the default) and reordered on each call.

Then the first batch of a size not seen before, in milliseconds: padded (oneDNN builds its kernels for the
new shape), and packed after ``warm_up()`` (whose time is printed), with the same batch run again beside it.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

# Sibling scripts (benchmarks/tokenizers.py) must not shadow the packages of the same name.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.append(str(Path(__file__).resolve().parent))  # last, for serve_load's sentences and _figures only

import torch  # noqa: E402


def cpu_flags() -> str:
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "unknown"
    return " ".join(flag for flag in wanted if flag in flags) or "none of " + ", ".join(wanted)


def main(argv: list[str] | None = None) -> int:
    from _figures import median_seconds
    from serve_load import SENTENCES

    from glassformer.nn import kernels
    from glassformer.tasks import sentiment

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a saved text classifier (default: the cache's quick sentiment model)")
    parser.add_argument("--repeats", type=int, default=30, help="timed batches per candidate and size")
    args = parser.parse_args(argv)
    model_dir = args.model or str(sentiment.default_out_dir(sentiment.get_preset("quick")))
    classifier = sentiment.SentimentClassifier.load(model_dir, precision="auto")
    model = classifier.model
    dtype = next(model.parameters()).dtype
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, flags: {cpu_flags()}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; weights {dtype}; "
          f"load average {os.getloadavg()[0]:.2f}")

    def batch(n: int) -> dict[str, torch.Tensor]:
        return classifier.prepare([SENTENCES[i % len(SENTENCES)] for i in range(n)]).tensors

    def ms(call, repeats: int = 1) -> float:  # no warm-up: the first call's cost is what some rows measure
        return median_seconds(call, repeats, warmup=0) * 1e3

    reordered = kernels.reordered
    each_call = lambda weight: weight  # noqa: E731 - oneDNN then reorders the plain weight inside every call
    candidates = {
        "padded forward (anchor)": (lambda b: model(**b).logits, reordered),
        "packed": (lambda b: model.predict_logits(**b), reordered),
        "padded, reordered each call": (lambda b: model(**b).logits, each_call),
        "packed, reordered each call": (lambda b: model.predict_logits(**b), each_call),
    }
    print()
    print("| sentences | tokens (padded) | " + " | ".join(candidates) + " | packed ÷ anchor |")
    print("|---:|---|" + "---:|" * (len(candidates) + 1))
    with torch.no_grad():
        for n in (1, 20, 50):
            inputs = batch(n)
            tokens = f"{int(inputs['attention_mask'].sum())} ({inputs['input_ids'].numel()})"
            times: dict[str, list[float]] = {name: [] for name in candidates}
            for name, (run, weights) in candidates.items():  # warm-up: every shape built
                kernels.reordered = weights
                run(inputs), run(inputs)
            for _ in range(args.repeats):
                for name, (run, weights) in candidates.items():
                    kernels.reordered = weights
                    times[name].append(ms(lambda: run(inputs)))
            kernels.reordered = reordered
            medians = {name: statistics.median(values) for name, values in times.items()}
            cells = " | ".join(f"{value:.2f}" for value in medians.values())
            print(f"| {n} | {tokens} | {cells} | {medians['packed'] / medians['padded forward (anchor)']:.2f}× |")

        print()
        fresh_padded, fresh_packed = batch(37), batch(41)  # batch sizes no call above made
        first = ms(lambda: model(**fresh_padded).logits)
        again = ms(lambda: model(**fresh_padded).logits, 5)
        print(f"# padded, a new shape ({tuple(fresh_padded['input_ids'].shape)}): first batch {first:.1f} ms, "
              f"then {again:.1f} ms")
        started = time.perf_counter()
        sizes = classifier.warm_up()
        print(f"# warm_up(): {sizes} packed sizes in {time.perf_counter() - started:.2f} s")
        first = ms(lambda: model.predict_logits(**fresh_packed))
        again = ms(lambda: model.predict_logits(**fresh_packed), 5)
        print(f"# packed after warm_up, a new batch of 41: first batch {first:.1f} ms, then {again:.1f} ms")
    print(f"# load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
