"""MiniLM (all-MiniLM-L6-v2) encoder inference: glassformer vs Hugging Face transformers, same process.

Run:  .venv/bin/python benchmarks/inference.py [--threads N] [--repeats R]

Prints one table: tokens per second for a batch of 32 × 128 tokens for transformers ``BertModel``
(``attn_implementation="sdpa"``) in fp32 and under CPU bf16 autocast (the anchors), and glassformer
at ``precision="auto"`` (what the CPU's flags pick), fp32 (fused path and plain ``nn.Linear``), bf16
and int8; the ratio of each to the better anchor; batch-1 latency for a 32-token sentence; the
cosine of each precision's sentence embeddings to fp32; the CPU flags; and this machine's fp32 and bf16
matmul peaks (``torch.matmul`` of large square matrices, GFLOP/s) measured in the same run, so every row also
reads as a fraction of the peak of the number format it multiplies in (bf16 rows of the bf16 peak, the
others of the fp32 peak). Every timing is the
median of several repeats after warm-up, under ``torch.inference_mode``, with the candidates
interleaved so a change in machine load hits all of them alike.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Sibling scripts (benchmarks/tokenizers.py) must not shadow the packages of the same name.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.append(str(Path(__file__).resolve().parent))  # last, for _figures only: packages come first

import torch  # noqa: E402

SENTENCES = [
    "A man is playing a guitar on the street corner.",
    "The new movie is awesome, the acting and the score are wonderful.",
    "Stocks fell sharply after the central bank raised interest rates again.",
    "How do I reset my password if I no longer have access to my email?",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
    "The cat sat on the mat.",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "Transformers read every token of a sentence at once and weigh them by attention.",
    "Please book a table for two at eight o'clock tonight.",
    "The committee will publish its final report next spring, after two years of hearings.",
    "Rain is expected tomorrow in the north, with sunshine returning by the weekend.",
    "She scored the winning goal in the last minute of extra time.",
    "I didn't like the ending at all.",
    "Binary search halves the interval at every step, so it needs log n comparisons.",
    "Fresh bread, olive oil and a little salt make a fine lunch.",
    "What is the capital of Australia?",
]


ROWS = (("hf", "HF BertModel sdpa (fp32)"), ("hf_bf16", "HF BertModel sdpa (bf16 autocast)"),
        ("auto", "glassformer precision=auto"), ("ours", "glassformer fast path (fp32)"),
        ("plain", "glassformer, plain nn.Linear (fp32)"), ("bf16", "glassformer bf16"),
        ("int8", "glassformer int8 dynamic"))


def interleaved(fns: dict[str, callable], warmup: int, repeats: int) -> dict[str, float]:
    """Median seconds per call of each function, running them in turn each round."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def matmul_gflops(n: int = 2048, repeats: int = 10, dtype: torch.dtype = torch.float32) -> float:
    """Best of ``repeats`` n³ matmuls in `dtype`: the machine's attainable limit, so the best run, not the median."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def peaks(n: int, with_bf16: bool) -> dict[str, float]:
    """GFLOP/s of an n³ matmul in fp32 and (where bf16 is timed) bf16."""
    out = {"fp32": matmul_gflops(n)}
    if with_bf16:
        out["bf16"] = matmul_gflops(n, dtype=torch.bfloat16)
    return out


def flops_per_token(d: int, d_ff: int, layers: int, seq: int) -> float:
    """Forward multiply-adds ×2 per token: the Linear layers plus QKᵀ and AV."""
    return layers * (2 * (4 * d * d + 2 * d * d_ff) + 2 * 2 * seq * d)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--peak-size", type=int, default=2048, help="n of the n x n matmuls that measure the peaks")
    parser.add_argument("--bf16", choices=("auto", "always"), default="auto",
                        help="time the bf16 rows only where the CPU multiplies bf16 natively (auto; elsewhere bf16 is "
                             "emulated, many times slower than fp32, and no one would pick it), or always")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    import transformers

    from glassformer.precision import cpu_flags_summary, cpu_has_native_bf16, resolve

    with_bf16 = args.bf16 == "always" or cpu_has_native_bf16()
    rows = [(name, label) for name, label in ROWS if with_bf16 or name not in ("hf_bf16", "bf16")]
    from glassformer.nn import kernels
    from glassformer.pretrained import SentenceEncoder, from_pretrained

    loaded = from_pretrained("minilm")
    ours = loaded.model
    models = {name: from_pretrained("minilm", precision=name, tokenizer=False).model
              for name in ("auto", "bf16", "int8") if with_bf16 or name != "bf16"}
    hf = transformers.BertModel.from_pretrained(str(loaded.path), attn_implementation="sdpa").eval()
    cfg = ours.config

    batch, seq = 32, 128
    ids = torch.randint(1000, cfg.vocab_size, (batch, seq))
    ids[:, 0], ids[:, -1] = 101, 102  # [CLS] ... [SEP]
    mask = torch.ones_like(ids)
    short_ids, short_mask = ids[:1, :32].clone(), mask[:1, :32].clone()
    short_ids[0, -1] = 102

    with torch.inference_mode():
        diff = (ours(ids, mask).last_hidden_state - hf(input_ids=ids, attention_mask=mask).last_hidden_state)
        max_diff = diff.abs().max().item()
        peak = peaks(args.peak_size, with_bf16)
        def runners(x, m):
            def hf_bf16():
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return hf(input_ids=x, attention_mask=m)

            def plain():
                with kernels.plain():
                    return ours(x, m)

            fns = {"hf": lambda: hf(input_ids=x, attention_mask=m), "ours": lambda: ours(x, m), "plain": plain}
            if with_bf16:
                fns["hf_bf16"] = hf_bf16
            fns.update({name: (lambda model=model: model(x, m)) for name, model in models.items()})
            return fns

        big = interleaved(runners(ids, mask), warmup=2, repeats=args.repeats)
        small = interleaved(runners(short_ids, short_mask), warmup=5, repeats=max(20, 4 * args.repeats))
        peak_after = peaks(args.peak_size, with_bf16)

    reference = SentenceEncoder(ours, loaded.tokenizer, loaded.sentence).encode(SENTENCES)
    cosines = {name: torch.nn.functional.cosine_similarity(
        reference, SentenceEncoder(model, loaded.tokenizer, loaded.sentence).encode(SENTENCES), dim=-1)
        for name, model in models.items()}

    tokens = batch * seq
    work = flops_per_token(cfg.d_model, cfg.d_ff, cfg.n_layers, seq) * tokens / 1e9  # GFLOP per batch
    peak_best = {kind: max(peak[kind], peak_after[kind]) for kind in peak}
    auto = resolve("auto", "cpu")
    # The number format each row multiplies in, hence the peak it is measured against.
    formats = {"hf": "fp32", "hf_bf16": "bf16", "auto": auto if auto in peak_best else "fp32", "ours": "fp32",
               "plain": "fp32", "bf16": "bf16", "int8": "fp32"}
    print(f"# MiniLM-L6 encoder forward, batch {batch} x {seq} tokens, fp32 unless noted")
    print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
          f"{torch.__version__}, transformers {transformers.__version__}, threads {torch.get_num_threads()}")
    print(f"# CPU flags: {cpu_flags_summary()}; precision=auto resolves to {auto} here")
    print(f"# load average at start: {os.getloadavg()[0]:.2f}; matmul {args.peak_size}^3 peaks (best of 10), before / "
          f"after the timings: " + ", ".join(f"{kind} {peak[kind]:.0f} / {peak_after[kind]:.0f} GFLOP/s"
                                             for kind in peak) + "; the larger is the peak below")
    print(f"# parity: max |ours - HF| on the batch = {max_diff:.2e}; model work {work:.1f} GFLOP per batch")
    print()
    # The anchor: the faster of transformers' fp32 and bf16 autocast (fp32 alone where bf16 is not native).
    best_hf = min(big[name] for name in ("hf", "hf_bf16") if name in big)
    best_hf_small = min(small[name] for name in ("hf", "hf_bf16") if name in small)
    if not with_bf16:
        print("# bf16 rows left out: this CPU has no native bf16 (pass --bf16 always to time the emulation)")
    print(f"| {'path':<36} | {'tokens/s':>9} | {'vs best HF':>10} | {'GFLOP/s':>7} | {'of its peak':>16} |")
    print(f"|{'-' * 38}|{'-' * 11}|{'-' * 12}|{'-' * 9}|{'-' * 18}|")
    for name, label in rows:
        rate = tokens / big[name]
        gflops = work / big[name]
        kind = formats[name]
        print(f"| {label:<36} | {rate:>9.0f} | {best_hf / big[name]:>9.2f}x | {gflops:>7.1f} | "
              f"{gflops / peak_best[kind]:>10.0%} {kind:>5} |")
    best_hf_name = min(("hf", "hf_bf16"), key=lambda name: big.get(name, float("inf")))
    print()
    print(f"# glassformer precision=auto: {work / big['auto'] / peak_best[formats['auto']]:.0%} of the "
          f"{formats['auto']} peak; transformers at its best ({best_hf_name}): "
          f"{work / big[best_hf_name] / peak_best[formats[best_hf_name]]:.0%} of the {formats[best_hf_name]} peak")
    print()
    print(f"| {'batch-1 latency, 32 tokens':<36} | {'ms':>9} | {'vs best HF':>10} |")
    print(f"|{'-' * 38}|{'-' * 11}|{'-' * 12}|")
    for name, label in rows:
        print(f"| {label:<36} | {small[name] * 1e3:>9.2f} | {best_hf_small / small[name]:>9.2f}x |")
    print()
    from _figures import record

    record("MiniLM forward 32 x 128, precision auto", tokens / big["auto"], "tokens/s",
           anchor=f"transformers at its best ({best_hf_name})", anchor_value=tokens / best_hf,
           spread=f"median of {args.repeats}, interleaved",
           note=f"{work / big['auto'] / peak_best[formats['auto']]:.0%} of the {formats['auto']} matmul peak")
    record("MiniLM forward, one sentence of 32 tokens, precision auto", small["auto"] * 1e3, "ms",
           anchor="transformers at its best", anchor_value=best_hf_small * 1e3,
           spread=f"median of {max(20, 4 * args.repeats)}, interleaved")
    for name, cosine in cosines.items():
        print(f"{name} vs fp32 sentence embeddings over {len(SENTENCES)} sentences: cosine min {cosine.min():.5f}, "
              f"mean {cosine.mean():.5f}")


if __name__ == "__main__":
    main()
