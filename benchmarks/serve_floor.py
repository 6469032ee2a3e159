"""How far below 3x one request a burst of 50 can go on this CPU: the batch's linear layers against the matmul peak.

Run:  .venv/bin/python benchmarks/serve_floor.py [--model DIR] [--repeats 20]

Loads a text classifier as ``glassformer serve`` does (the quick sentiment model in the cache by default, at
precision auto), builds its packed sizes (``warm_up``), and times the server's own ``endpoint.run`` on one
sentence and on the 50 sentences of ``serve_load.py``'s burst (medians after warm-up). Torch's profiler then
says how much of a 50-sentence batch the linear layers take, and the floor is worked out: the linear layers'
floating-point operations for the batch's packed rows over the peak of a 2,048³ matmul in the same number format
(the anchor, measured in the same run). Last, the same model quantised by PyTorch's dynamic int8
(``torch.ao.quantization.quantize_dynamic``, the usual way to make a CPU model cheaper) is timed beside it, with
the probabilities both give, to see whether cheaper multiplications are on offer. For a [CLS] classifier, the
server's run with its last layer on the [CLS] rows alone is timed against every row's (as before the twelfth
session), interleaved. Prints the CPU flags, the precision and the load average.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.append(str(Path(__file__).resolve().parent))  # last: serve_load's sentences, inference's matmul peak

import torch  # noqa: E402
from _figures import median_seconds  # noqa: E402
from serve_load import SENTENCES  # noqa: E402

from inference import matmul_gflops  # noqa: E402


def median_ms(fn, repeats: int) -> float:
    return median_seconds(fn, repeats, warmup=5) * 1e3


def last_layer_comparison(endpoint, classifier, texts: list[str], repeats: int, rounds: int = 5) -> None:
    """serve's run with the last layer on the [CLS] rows alone (what it does) against every row (as before),
    interleaved, each side's lowest median over the rounds; and the probabilities of both."""
    from glassformer.nn import packed

    original = packed.encode

    def every_row(stack, x, packing, first_only=False):
        hidden = original(stack, x, packing)
        return hidden.index_select(0, packed.first_rows(packing)) if first_only else hidden

    best: dict[tuple[str, int], float] = {}
    answers: dict[str, torch.Tensor] = {}
    for _ in range(rounds):
        for name, encode in (("[CLS] rows alone", original), ("every row", every_row)):
            packed.encode = encode
            try:
                for n in (1, 50):
                    ms = median_ms(lambda n=n: endpoint.run(texts[:n], "raise"), repeats)
                    best[name, n] = min(ms, best.get((name, n), ms))
                with torch.no_grad():
                    answers[name] = classifier.predict_proba(texts)  # (50, labels)
            finally:
                packed.encode = original
    print(f"# the last layer, interleaved ({rounds} rounds, the lowest median of {repeats} each):")
    print("| last layer | one sentence ms | 50 sentences ms | 50 / one |")
    print("|---|---:|---:|---:|")
    for name in ("[CLS] rows alone", "every row"):
        print(f"| {name} | {best[name, 1]:.2f} | {best[name, 50]:.1f} | {best[name, 50] / best[name, 1]:.1f}x |")
    print(f"# every row / [CLS] rows alone: one {best['every row', 1] / best['[CLS] rows alone', 1]:.2f}x, "
          f"50 {best['every row', 50] / best['[CLS] rows alone', 50]:.2f}x; probabilities of the 50 differ by at most "
          f"{(answers['every row'] - answers['[CLS] rows alone']).abs().max().item():.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a text classifier (default: the quick sentiment model in the cache)")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    from glassformer.nn.packed import bucket_rows
    from glassformer.precision import cpu_flags_summary
    from glassformer.pretrained import from_pretrained
    from glassformer.serve.endpoints import endpoint_for
    from glassformer.tasks import sentiment
    from glassformer.tasks.pipeline import loaded_predictor

    model = args.model or str(sentiment.default_out_dir(sentiment.get_preset("quick")))
    if not Path(model).is_dir():
        raise SystemExit(f"no text classifier at {model}; train one (`glassformer train sentiment`) or pass --model")
    print(f"# CPU flags: {cpu_flags_summary()}; {torch.get_num_threads()} threads; load average at start "
          f"{os.getloadavg()[0]:.2f}; torch {torch.__version__}")
    classifier = loaded_predictor(from_pretrained(model, precision="auto"))  # loaded as load_endpoint loads it
    endpoint = endpoint_for(classifier)
    endpoint.warm_up()
    dtype = next(classifier.model.parameters()).dtype
    texts = [SENTENCES[i % len(SENTENCES)] for i in range(50)]
    one, fifty = (median_ms(lambda n=n: endpoint.run(texts[:n], "raise"), args.repeats) for n in (1, 50))
    print(f"# serve's endpoint.run at {str(dtype).removeprefix('torch.')}: one sentence {one:.2f} ms, "
          f"50 sentences {fifty:.1f} ms ({fifty / one:.1f}x)")
    if classifier.model.config.pooling == "cls":
        last_layer_comparison(endpoint, classifier, texts, args.repeats)

    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(10):
            endpoint.run(texts, "raise")
    linear_names = ("mkldnn::_linear_pointwise", "aten::addmm", "aten::mm", "aten::linear")
    self_us = {e.key: e.self_cpu_time_total for e in prof.key_averages()}
    linear_ms = sum(v for k, v in self_us.items() if k in linear_names) / 10 / 1e3
    attention_ms = sum(v for k, v in self_us.items() if "scaled_dot_product" in k) / 10 / 1e3

    inputs = classifier.prepare(texts, special_tokens="raise")
    real = int(inputs.tensors["attention_mask"].sum())
    rows = bucket_rows(real)
    config = classifier.model.config
    d, d_ff = config.d_model, config.d_ff
    flop = 2 * rows * config.n_layers * (4 * d ** 2 + 2 * d * d_ff)
    if config.pooling == "cls":  # the last layer: keys and values of every row, the rest on the [CLS] rows alone
        flop -= 2 * (rows - bucket_rows(len(texts))) * (2 * d ** 2 + 2 * d * d_ff)
    peak = matmul_gflops(dtype=dtype) * 1e9  # FLOP/s, the best of 10
    floor_ms = flop / peak * 1e3
    print(f"# the 50 sentences: {real} real tokens, {rows} packed rows; linear layers {flop / 1e9:.2f} GFLOP")
    print(f"# {str(dtype).removeprefix('torch.')} 2048^3 matmul (the anchor): {peak / 1e12:.3f} TFLOP/s, so the linear "
          f"layers need at least {floor_ms:.1f} ms; they took {linear_ms:.1f} ms a batch "
          f"({linear_ms / fifty:.0%} of the run), attention {attention_ms:.1f} ms")
    print(f"# 3x one sentence in process is {3 * one:.1f} ms: the linear layers alone are {floor_ms / (3 * one):.2f}x that")

    fp32 = sentiment.SentimentClassifier.load(model, precision="fp32")
    int8 = sentiment.SentimentClassifier.load(model, precision="fp32")
    int8.model = torch.ao.quantization.quantize_dynamic(int8.model, {torch.nn.Linear}, dtype=torch.qint8)
    print("| model | 50 sentences ms | one ms | ratio | P(label 1) of the first four |")
    print("|---|---:|---:|---:|---|")
    with torch.no_grad():
        for name, c in ((f"{str(dtype).removeprefix('torch.')}, packed (serve)", classifier),
                        ("fp32, packed", fp32), ("int8 dynamic (padded: its layers are not nn.Linear)", int8)):
            t50 = median_ms(lambda c=c: c.predict_proba(texts), args.repeats)
            t1 = median_ms(lambda c=c: c.predict_proba(texts[:1]), args.repeats)
            probs = c.predict_proba(texts[:4])[:, 1].tolist()
            print(f"| {name} | {t50:.1f} | {t1:.2f} | {t50 / t1:.1f}x | {' / '.join(f'{p:.3f}' for p in probs)} |")
    print(f"# load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
