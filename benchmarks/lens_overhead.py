"""What the lens's hook points cost a forward pass.

A real-size model (MiniLM-L6 from the local cache via ``from_pretrained("minilm")``, else a DecoderLM of the LM
task's quick preset size, random weights) runs one batch, under four conditions timed in interleaved rounds:

* ``no hooks``: the anchor, measured in the same run;
* ``points enumerated``: every hook point listed (``hook_points``) but nothing attached;
* ``identity on hook_z``: a do-nothing hook on every head output (attention keeps its fused kernel);
* ``cache everything``: ``run_with_cache(model, ...)`` keeping every intermediate (scores and patterns force the
  explicit attention path).

Prints one table: median milliseconds and the ratio to the anchor. Run:
``OMP_NUM_THREADS=2 python benchmarks/lens_overhead.py [--rounds N] [--batch B] [--length T]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import torch  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def load_model(batch: int, length: int) -> tuple[str, torch.nn.Module, tuple]:
    """MiniLM from the local cache if it is there, else a quick-preset-sized DecoderLM; and inputs for it."""
    try:
        from glassformer.pretrained import from_pretrained

        model = from_pretrained("minilm").model.eval()
        ids = torch.randint(1000, model.config.vocab_size, (batch, length))
        return "MiniLM-L6 (from_pretrained('minilm'))", model, (ids, torch.ones_like(ids))
    except Exception as exc:  # no cached MiniLM: say so and fall back
        print(f"(MiniLM not available: {exc}; timing a DecoderLM instead)")
    from glassformer.models.decoder_lm import DecoderLM
    from glassformer.tasks.lm import get_preset

    model = DecoderLM(get_preset("quick").model_config(vocab_size=2048)).eval()
    return "DecoderLM (LM quick preset size)", model, (torch.randint(0, 2048, (batch, length)),)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=128)
    args = parser.parse_args()

    from glassformer.lens import run_with_cache, run_with_hooks
    from glassformer.nn.hooks import hook_points

    torch.manual_seed(0)
    name, model, inputs = load_model(args.batch, args.length)

    def plain() -> None:
        model(*inputs)

    def enumerated() -> None:
        hook_points(model)
        model(*inputs)

    def identity() -> None:
        run_with_hooks(model, *inputs, fwd_hooks={"*.hook_z": lambda z, point: None})

    def cache_all() -> None:
        run_with_cache(model, *inputs)

    conditions = {"no hooks": plain, "points enumerated": enumerated, "identity on hook_z": identity,
                  "cache everything": cache_all}
    times: dict[str, list[float]] = {label: [] for label in conditions}
    with torch.inference_mode():
        for fn in conditions.values():  # warm-up
            fn()
        for _ in range(args.rounds):
            for label, fn in conditions.items():
                started = time.perf_counter()
                fn()
                times[label].append(time.perf_counter() - started)
    anchor = statistics.median(times["no hooks"])
    print(f"{name}, batch {args.batch} x {args.length} tokens, {args.rounds} interleaved rounds, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {len(hook_points(model))} hook points")
    print(f"| {'condition':22s} | {'median ms':>9s} | {'vs no hooks':>11s} |")
    print(f"|{'-' * 24}|{'-' * 11}|{'-' * 13}|")
    for label, values in times.items():
        median = statistics.median(values)
        print(f"| {label:22s} | {1000 * median:9.1f} | {median / anchor:10.3f}x |")


if __name__ == "__main__":
    main()
