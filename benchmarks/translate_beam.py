"""Beam search against greedy search on the de-en test split, with sacrebleu's paired bootstrap test.

For each saved translation model: both searches decode the 1,003 test sentences, sacrebleu scores
BLEU and chrF, and its paired bootstrap resampling (1,000 samples, Koehn 2004) says how often
the difference could arise by chance (p) and how wide each score's 95% interval is. The beam uses
the model's saved length-penalty exponent unless --alpha is given.

    .venv/bin/python benchmarks/translate_beam.py ~/.cache/glassformer/models/translate-quick [--beam 4]
"""

from __future__ import annotations

import argparse
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", metavar="DIR", help="saved translation models")
    parser.add_argument("--beam", type=int, default=4, help="beam size (default 4)")
    parser.add_argument("--alpha", type=float, help="length-penalty exponent (default: the model's own)")
    parser.add_argument("--samples", type=int, default=1000, help="bootstrap samples (default 1000)")
    args = parser.parse_args()

    from sacrebleu.metrics import BLEU, CHRF
    from sacrebleu.significance import PairedTest

    from glassformer.data.corpora import load_de_en
    from glassformer.tasks.translate import Translator

    corpus = load_de_en(quiet=True)
    sources, references = [s for s, _ in corpus.test], [r for _, r in corpus.test]
    print("| model | alpha | search | BLEU (95% CI) | chrF (95% CI) | p vs greedy (BLEU / chrF) | decode s |")
    print("|---|---|---|---|---|---|---|")
    for directory in args.models:
        translator = Translator.load(directory)
        if args.alpha is not None:
            translator.alpha = args.alpha
        outputs, seconds = {}, {}
        for name, beam in (("greedy", 1), (f"beam {args.beam}", args.beam)):
            started = time.perf_counter()
            outputs[name] = translator.translate(sources, beam_size=beam)
            seconds[name] = time.perf_counter() - started
        test = PairedTest(list(outputs.items()), {"BLEU": BLEU(), "chrF": CHRF()}, references=[references],
                          test_type="bs", n_samples=args.samples)
        _, scores = test()
        for index, name in enumerate(outputs):
            bleu, chrf = scores["BLEU"][index], scores["chrF2"][index]
            p = "—" if index == 0 else f"{bleu.p_value:.3f} / {chrf.p_value:.3f}"
            print(f"| {directory} | {translator.alpha} | {name} | {bleu.score:.2f} (±{bleu.ci:.2f}) "
                  f"| {chrf.score:.2f} (±{chrf.ci:.2f}) | {p} | {seconds[name]:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
