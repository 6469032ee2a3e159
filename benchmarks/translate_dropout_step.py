"""Where translation's dropout goes, and what each place costs a training step on a CPU.

Run:  .venv/bin/python benchmarks/translate_dropout_step.py [--repeats 20] [--rounds 4] [--preset full]

Times whole training steps (forward, label-smoothed loss, backward, AdamW) of a translation preset's
model in float32, as the presets train, on a synthetic batch of the preset's token budget (15-token
pairs), with dropout in each place the model has one. The anchor is dropout 0.1 everywhere (the full
preset's until the tenth session; ``torch.nn.TransformerEncoderLayer``'s placement: embeddings, attention
probabilities, inside the feed-forward network, each sublayer's output); the others drop on fewer tensors,
0.15 on the residual branches alone being the full preset's now. Candidates are
interleaved over `rounds` rounds and each keeps its lowest median of `repeats` steps after warm-up (a 2-vCPU
machine's speed drifts by a fifth within minutes). Prints the
CPU flags and the load average, and the ratio of each step's time to the anchor's.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.append(str(Path(__file__).resolve().parent))  # last, for _figures only

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from _figures import median_seconds  # noqa: E402

PLACEMENTS = {  # name -> (dropout, attn_dropout, ffn_dropout)
    "0.1 everywhere (anchor)": (0.1, None, None),
    "0.1 on residuals and attention, none in the FFN": (0.1, None, 0.0),
    "0.1 on residuals only": (0.1, 0.0, 0.0),
    "0.15 on residuals only (the full preset's)": (0.15, 0.0, 0.0),
    "0.2 on residuals only": (0.2, 0.0, 0.0),
    "none": (0.0, 0.0, 0.0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="full", choices=("quick", "full"))
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds; each candidate keeps its best")
    parser.add_argument("--length", type=int, default=15, help="tokens a side of each synthetic pair")
    args = parser.parse_args()
    if args.rounds < 1 or args.repeats < 1:
        parser.error(f"--rounds and --repeats must be >= 1, got {args.rounds} and {args.repeats}")
    from dataclasses import replace

    from glassformer.models.seq2seq import Seq2SeqTransformer
    from glassformer.precision import cpu_flags_summary
    from glassformer.tasks import translate

    preset = translate.get_preset(args.preset)

    class Vocabulary:  # the presets' 2,000 ids, the specials last
        vocab_size = preset.vocab_size
        special_tokens = {translate.PAD: 1997, translate.BOS: 1998, translate.EOS: 1999}

    pairs = preset.max_tokens // (2 * args.length)
    print(f"# CPU flags: {cpu_flags_summary()}; {torch.get_num_threads()} threads; float32; load average at start "
          f"{os.getloadavg()[0]:.2f}; torch {torch.__version__}")
    print(f"# the {args.preset} preset's model (d {preset.d_model}, {preset.n_encoder_layers}+{preset.n_decoder_layers} "
          f"layers, FFN {preset.d_ff}), {pairs} pairs of {args.length} tokens a side, lowest of {args.rounds} "
          f"interleaved medians of {args.repeats} steps")
    steps = {}
    for name, (dropout, attn, ffn) in PLACEMENTS.items():
        torch.manual_seed(0)
        config = replace(preset, dropout=dropout, attn_dropout=attn, ffn_dropout=ffn).model_config(Vocabulary())
        model = Seq2SeqTransformer(config).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        src = torch.randint(0, 1996, (pairs, args.length))
        tgt = torch.randint(0, 1996, (pairs, args.length))

        def step(model=model, optimizer=optimizer, src=src, tgt=tgt):
            logits = model(src, tgt).logits
            F.cross_entropy(logits.flatten(0, 1), tgt.flatten(), label_smoothing=0.1).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        steps[name] = step
    best: dict[str, float] = {}
    for _ in range(args.rounds):  # interleaved rounds: a drift in the machine's speed touches every candidate
        for name, step in steps.items():
            best[name] = min(best.get(name, float("inf")), median_seconds(step, args.repeats))
    anchor = best["0.1 everywhere (anchor)"]
    print("| dropout | ms a step | steps in the same time, × the anchor |")
    print("|---|---:|---:|")
    for name, seconds in best.items():
        print(f"| {name} | {seconds * 1e3:.1f} | {anchor / seconds:.2f}× |")
    print(f"# load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
