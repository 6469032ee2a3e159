"""Training and generation of a small GPT: glassformer's DecoderLM vs Hugging Face GPT2LMHeadModel, same process.

Run:  .venv/bin/python benchmarks/lm_train.py [--steps N] [--threads T]

Both models have the same size (layers, heads, width, context, character vocabulary of the
Shakespeare training works), the same dropout, and start from the same weights (ours copied into
GPT-2's layout with the table of :mod:`glassformer.pretrained.gpt2`). They are trained on the same
batches (random windows of the training works, drawn once with a fixed seed) for the same number of
steps with the same optimiser (AdamW, warmup then cosine decay, gradient clipping), one step of each
in turn so that a change in machine load hits both alike. Reported:

* validation loss (nats per token, the same fixed windows of the held-out works) after training;
* training tokens per second (forward, backward and optimiser step);
* generation tokens per second with the key/value cache, batch 1, greedy: our batched
  :func:`~glassformer.inference.generate.generate` and our streaming
  :func:`~glassformer.inference.generate.stream_tokens` against HF ``generate`` on the same (our trained)
  weights; the greedy tokens must agree.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Sibling scripts (benchmarks/tokenizers.py) must not shadow the packages of the same name.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import torch  # noqa: E402


def batches_from(stream: torch.Tensor, n: int, batch_size: int, context: int, seed: int) -> list[torch.Tensor]:
    """`n` batches of `batch_size` random windows of `context` tokens from `stream`, drawn with `seed`."""
    generator = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, stream.numel() - context, (n, batch_size), generator=generator)
    return [torch.stack([stream[s : s + context] for s in row.tolist()]) for row in starts]


def schedule(step: int, warmup: int, total: int) -> float:
    """Linear warmup, then cosine decay to a tenth of the peak."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))


def hf_twin(model, attn: str = "sdpa"):
    """A GPT2LMHeadModel of the same size holding `model`'s weights."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from glassformer.pretrained import gpt2
    from glassformer.pretrained.mapping import convert_to_theirs

    hf = GPT2LMHeadModel._from_config(GPT2Config(**gpt2.config_to_hf(model.config)), attn_implementation=attn)
    if hf.config._attn_implementation != attn:
        raise RuntimeError(f"transformers chose attention {hf.config._attn_implementation!r}, not {attn!r}")
    state = gpt2.finish(convert_to_theirs(gpt2.table(model), model.state_dict()))
    missing, unexpected = hf.load_state_dict(state, strict=False)
    left_out = [k for k in missing if k != "lm_head.weight" and not k.endswith(".attn.bias")]
    if left_out or unexpected:
        raise RuntimeError(f"weight mapping failed: missing {left_out}, unexpected {unexpected}")
    return hf


def mean_loss(model, batches: list[torch.Tensor]) -> float:
    model.eval()
    with torch.no_grad():
        losses = [float(model(input_ids=b, labels=b).loss) for b in batches]
    model.train()
    return sum(losses) / len(losses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--new-tokens", type=int, default=112)
    parser.add_argument("--gen-repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    import transformers

    from glassformer.data.corpora import load_shakespeare
    from glassformer.inference.generate import generate, stream_tokens
    from glassformer.models.decoder_lm import DecoderLM, DecoderLMConfig
    from glassformer.tasks.lm import build_tokenizer, encode_work

    split = load_shakespeare(quiet=True)
    tokenizer = build_tokenizer("char", list(split.train.values()))
    train_stream = torch.tensor([i for t in split.train.values() for i in encode_work(tokenizer, t)])
    valid_stream = torch.tensor([i for t in split.validation.values() for i in encode_work(tokenizer, t)])
    train_batches = batches_from(train_stream, args.steps, args.batch_size, args.context, seed=0)
    valid_batches = batches_from(valid_stream, 16, 32, args.context, seed=1)

    torch.manual_seed(0)
    config = DecoderLMConfig(vocab_size=tokenizer.vocab_size, max_position=args.context, d_model=args.d_model,
                             n_heads=args.heads, n_layers=args.layers, d_ff=4 * args.d_model, dropout=args.dropout)
    ours = DecoderLM(config)
    theirs = hf_twin(ours)
    ours.train()
    theirs.train()

    def optimiser(model):
        decay = [p for p in model.parameters() if p.dim() >= 2]
        rest = [p for p in model.parameters() if p.dim() < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                                lr=args.lr, betas=(0.9, 0.95))
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: schedule(s, args.steps // 10, args.steps))

    runs = {"ours": (ours, *optimiser(ours), []), "hf": (theirs, *optimiser(theirs), [])}
    initial = {name: mean_loss(model, valid_batches) for name, (model, *_rest) in runs.items()}
    for step, batch in enumerate(train_batches):
        # Alternate which model goes first, so neither always runs right after the other's memory traffic.
        order = ("ours", "hf") if step % 2 == 0 else ("hf", "ours")
        for name in order:
            model, opt, sched, times = runs[name]
            start = time.perf_counter()
            loss = model(input_ids=batch, labels=batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            times.append(time.perf_counter() - start)
    final = {name: mean_loss(model, valid_batches) for name, (model, *_rest) in runs.items()}
    tokens_per_step = args.batch_size * args.context
    # The first steps include one-off allocation; the median step is the steady-state figure.
    train_tps = {name: tokens_per_step / statistics.median(times[2:] or times) for name, (*_r, times) in runs.items()}

    # Generation on the same weights: our trained model, copied into a fresh HF twin.
    ours.eval()
    twin = hf_twin(ours).eval()
    prompt = torch.tensor([encode_work(tokenizer, "KING.\nNow, ")])
    n_new = min(args.new_tokens, args.context - prompt.shape[1])
    gen_times: dict[str, list[float]] = {"hf": [], "ours": [], "stream": []}
    outputs = {}
    with torch.inference_mode():
        def run_hf():
            return twin.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=n_new,
                                 min_new_tokens=n_new, do_sample=False, use_cache=True,
                                 pad_token_id=tokenizer.end_id)[0, prompt.shape[1]:].tolist()

        def run_ours():
            return generate(ours, prompt, n_new, greedy=True)[0, prompt.shape[1]:].tolist()

        def run_stream():
            return list(stream_tokens(ours, prompt[0], n_new, greedy=True))

        fns = {"hf": run_hf, "ours": run_ours, "stream": run_stream}
        for name, fn in fns.items():  # warm-up
            outputs[name] = fn()
        for _ in range(args.gen_repeats):
            for name, fn in fns.items():
                start = time.perf_counter()
                fn()
                gen_times[name].append(time.perf_counter() - start)
    gen_tps = {name: n_new / statistics.median(t) for name, t in gen_times.items()}
    agree = outputs["hf"] == outputs["ours"] == outputs["stream"]

    load = os.getloadavg()
    print(f"# DecoderLM vs HF GPT2LMHeadModel (transformers {transformers.__version__}, attn sdpa), "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs visible, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"# model: {args.layers} layers, {args.heads} heads, d_model {args.d_model}, d_ff {4 * args.d_model}, "
          f"context {args.context}, vocabulary {tokenizer.vocab_size} characters, dropout {args.dropout}, "
          f"{sum(p.numel() for p in ours.parameters()):,} parameters")
    print(f"# training: {args.steps} steps of {args.batch_size} x {args.context} tokens, AdamW lr {args.lr} "
          f"(warmup {args.steps // 10}, cosine to 0.1), clip 1.0, same batches, same initial weights")
    print(f"# generation: batch 1, prompt {prompt.shape[1]} tokens, {n_new} new tokens, greedy, KV cache, "
          f"median of {args.gen_repeats}; greedy tokens identical: {agree}")
    print()
    print("| measure | HF GPT2LMHeadModel | glassformer | ratio (ours / HF) | target |")
    print("|---|---:|---:|---:|---|")
    print(f"| validation loss before training (nats/token) | {initial['hf']:.4f} | {initial['ours']:.4f} | "
          f"{initial['ours'] - initial['hf']:+.4f} (difference) | equal start |")
    print(f"| validation loss after training (nats/token) | {final['hf']:.4f} | {final['ours']:.4f} | "
          f"{final['ours'] - final['hf']:+.4f} (difference) | ≤ +0.02 |")
    print(f"| training tokens/s | {train_tps['hf']:,.0f} | {train_tps['ours']:,.0f} | "
          f"{train_tps['ours'] / train_tps['hf']:.3f} | ≥ 1.0 |")
    print(f"| generation tokens/s, generate | {gen_tps['hf']:,.1f} | {gen_tps['ours']:,.1f} | "
          f"{gen_tps['ours'] / gen_tps['hf']:.3f} | ≥ 1.0 |")
    print(f"| generation tokens/s, stream_tokens | {gen_tps['hf']:,.1f} | {gen_tps['stream']:,.1f} | "
          f"{gen_tps['stream'] / gen_tps['hf']:.3f} | ≥ 1.0 |")


if __name__ == "__main__":
    main()
