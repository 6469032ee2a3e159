"""Translation recipe experiments: one training run of a preset with settings changed, scored on validation and test.

Prints one JSON line: validation loss, greedy BLEU (multi-reference, with sacrebleu's signature) and
chrF on the validation split (what decides whether a change is kept) and on the test split, the
single-reference BLEU beside each, and the retrieval and word-by-word baselines on both splits.
``--perfect`` instead prints what a perfect system scores on the test split (it outputs the first
alternative of every reference), under the multi-reference scoring and under the old one.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/translate_recipe.py base /tmp/base --set max_steps=1500
    .venv/bin/python benchmarks/translate_recipe.py no-words /tmp/no-words --set dictionary_words=0 --seed 1
    .venv/bin/python benchmarks/translate_recipe.py hints /tmp/hints --set max_steps=1500 --set hints=3
    .venv/bin/python benchmarks/translate_recipe.py --perfect
"""

from __future__ import annotations

import argparse
import json
import time


def _value(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", help="a name for the run (printed)")
    parser.add_argument("out", nargs="?", help="where the model is saved")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--seed", type=int, default=0, help="training seed (the data split stays seed 0's)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="a preset setting")
    parser.add_argument("--perfect", action="store_true", help="score a perfect system on the test split")
    args = parser.parse_args()

    from glassformer.data.corpora import load_de_en
    from glassformer.data.dictionary import reference_items, split_alternatives
    from glassformer.tasks import translate as T

    corpus = load_de_en(quiet=True)
    if args.perfect:
        items = reference_items(corpus.test)
        multi = T.corpus_scores([i.references[0] for i in items], [i.references for i in items])
        single = T.corpus_scores([split_alternatives(r)[0] for _, r in corpus.test], [r for _, r in corpus.test])
        print(json.dumps({"pairs": len(corpus.test), "items": len(items),
                          "items_with_alternatives": sum(len(i.references) > 1 for i in items),
                          "bleu": multi["bleu"], "chrf": multi["chrf"], "signature": multi["bleu_signature"],
                          "bleu_single": single["bleu"], "chrf_single": single["chrf"]}))
        return 0
    if not (args.name and args.out):
        parser.error("give NAME and OUT, or --perfect")
    overrides = {key: _value(value) for key, value in (item.split("=", 1) for item in args.set)}
    started = time.perf_counter()
    run = T.train(args.preset, args.out, corpus=corpus, overwrite=True, progress=False, test_beam=1, seed=args.seed,
                  **overrides)
    translator = T.Translator.load(run.out_dir)
    valid = T.score(translator, corpus.validation, beam_size=1)
    looked_up = T.Baselines(corpus).scores(corpus.validation)
    print(json.dumps({"name": args.name, "seed": args.seed, **overrides, "validation_loss": run.validation_loss,
                      "valid_bleu": valid["bleu"], "valid_chrf": valid["chrf"], "valid_bleu_single": valid["bleu_single"],
                      "test_bleu": run.bleu, "test_chrf": run.chrf, "test_bleu_single": run.bleu_single,
                      **{f"valid_{key}": value for key, value in looked_up.items()}, **run.baselines,
                      "signature": run.bleu_signature, "steps": run.steps, "train_s": round(run.train_seconds),
                      "total_s": round(time.perf_counter() - started)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
