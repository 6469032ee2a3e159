"""The commands that are not per task: data, tokenize, embed, viz, predict, explain, translate, classify-image,
generate, serve, demo, studio. Each ``_add_*`` declares a command's arguments; the function it sets runs it through the library.
"""

from __future__ import annotations

import argparse
import sys

from glassformer.cli._io import (
    JsonList,
    ablation,
    add_ablate,
    add_precision,
    add_special_tokens,
    add_verify,
    bounded,
    check_utf8,
    print_json,
    read_text,
    text_batches,
)
from glassformer.errors import UsageError

MAX_BEAM = 64
MAX_NEW_TOKENS = 100_000


def add_all(sub: argparse._SubParsersAction) -> None:
    """Every command but ``train`` and ``eval``, in the order ``--help`` lists them."""
    for add in (_add_data, _add_tokenize, _add_embed, _add_viz, _add_predict, _add_explain, _add_translate, _add_classify_image,
                _add_generate, _add_serve, _add_demo, _add_studio):
        add(sub)


# --- data ----------------------------------------------------------------------------------------

def _add_data(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="list, fetch and describe the named data sets and weights")
    verbs = data.add_subparsers(dest="verb", required=True)
    listing = verbs.add_parser("list", help="list the known sources")
    listing.add_argument("--json", action="store_true", help='print a JSON list of {"name", "fetched", "description"}')
    listing.set_defaults(func=_data_list)
    fetch = verbs.add_parser("fetch", help="fetch a source into the cache")
    fetch.add_argument("name")
    fetch.set_defaults(func=_data_fetch)
    info = verbs.add_parser("info", help="describe a named source (files, sizes, splits, license) or a data file")
    info.add_argument("name", help="a named source (see `data list`), a CSV/TSV/JSONL file, a pos/neg folder or hf:NAME")
    info.add_argument("--text-column", help="the column of a CSV/TSV/JSONL file holding the text")
    info.add_argument("--label-column", help="the column holding the label")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(func=_data_info)


def _data_list(args: argparse.Namespace) -> int:
    from glassformer.data import SOURCES, is_fetched

    rows = [{"name": name, "fetched": is_fetched(name), "description": source.description}
            for name, source in sorted(SOURCES.items())]
    if args.json:
        print_json(rows)
        return 0
    for row in rows:
        print(f"{row['name']:16s} {'fetched' if row['fetched'] else 'not fetched':12s} {row['description']}")
    return 0


def _data_fetch(args: argparse.Namespace) -> int:
    from glassformer.data import fetch

    print(fetch(args.name))
    return 0


def _data_info(args: argparse.Namespace) -> int:
    from glassformer.data import SOURCES, describe, load_text

    if args.name in SOURCES:
        info = describe(args.name)
    else:
        data = load_text(args.name, text_column=args.text_column, label_column=args.label_column)
        info = {"name": data.name, "labels": data.label_names, "splits": data.sizes(), **data.info}
    if args.json:
        print_json(info)
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


# --- tokenizers ----------------------------------------------------------------------------------

def _add_tokenize(sub: argparse._SubParsersAction) -> None:
    tokenize = sub.add_parser("tokenize", help="print the tokens and ids of a text")
    tokenize.add_argument("--tokenizer", required=True, help="gpt2, bert, or a saved tokenizer directory")
    tokenize.add_argument("--json", action="store_true", help='print one JSON object {"tokens": [...], "ids": [...]}')
    add_special_tokens(tokenize)
    source = tokenize.add_mutually_exclusive_group()
    source.add_argument("text", nargs="?", help="the text to tokenize (default: standard input)")
    source.add_argument("--file", help="read the whole UTF-8 file as one text (- for standard input)")
    tokenize.set_defaults(func=_tokenize)

    tokenizer = sub.add_parser("tokenizer", help="train tokenizers")
    verbs = tokenizer.add_subparsers(dest="verb", required=True)
    train = verbs.add_parser("train", help="train a byte-level BPE on text files and save it")
    train.add_argument("--vocab-size", type=bounded(int, 256, 1_000_000), required=True,
                       help="ids in the vocabulary: 256 bytes + merges + special tokens (256 to 1,000,000)")
    train.add_argument("--out", required=True, help="a new or empty directory to write (our format plus tokenizer.json)")
    train.add_argument("--overwrite", action="store_true", help="replace a tokenizer glassformer saved there before")
    train.add_argument("--pattern", default="gpt2", help="pre-tokenizer regex: gpt2, gpt4 or a pattern")
    train.add_argument("--special", action="append", default=[], help="a special token to add (repeatable)")
    train.add_argument("files", nargs="+", help="UTF-8 text files")
    train.set_defaults(func=_tokenizer_train)


def _tokenize(args: argparse.Namespace) -> int:
    from glassformer.tokenizers import load_tokenizer, special_token_policy
    from glassformer.tokenizers.base import POLICY_HINT

    text = read_text(args.text, args.file)
    tokenizer = load_tokenizer(args.tokenizer)
    # As Hugging Face's tokenizer(text) does: with the post-processor's tokens ([CLS] … [SEP] for BERT).
    ids = tokenizer.encode(text, add_special_tokens=True, **special_token_policy(args.special_tokens, hint=POLICY_HINT))
    tokens = [tokenizer.id_to_token(i) for i in ids]
    if args.json:
        print_json({"tokens": tokens, "ids": ids})
    else:
        for token, index in zip(tokens, ids):
            print(f"{index:>8d}  {token}")
    return 0


def _tokenizer_train(args: argparse.Namespace) -> int:
    import regex

    from glassformer.tokenizers import ByteLevelBPE
    from glassformer.tokenizers.byte_bpe import GPT2_PATTERN, GPT4_PATTERN

    pattern = {"gpt2": GPT2_PATTERN, "gpt4": GPT4_PATTERN}.get(args.pattern, args.pattern)
    try:
        regex.compile(pattern)
    except regex.error as exc:
        raise UsageError(f"--pattern {args.pattern!r} is not a valid regular expression ({exc})") from None
    if args.vocab_size < 256 + len(args.special):
        raise UsageError(f"--vocab-size {args.vocab_size} leaves no room: 256 byte tokens and {len(args.special)} "
                         f"special tokens come first")
    from glassformer._files import check_target

    check_target(args.out, "tokenizer", overwrite=args.overwrite)  # refuse before the training, not after
    tokenizer = ByteLevelBPE(args.pattern)
    tokenizer.train_from_files(args.files, args.vocab_size, special_tokens=args.special, progress=True)
    out = tokenizer.save(args.out, overwrite=args.overwrite)
    print(f"saved a ByteLevelBPE with {tokenizer.vocab_size} ids ({len(tokenizer.merges)} merges) to {out}")
    return 0


# --- embeddings ----------------------------------------------------------------------------------

def _add_embed(sub: argparse._SubParsersAction) -> None:
    embed = sub.add_parser("embed", help="sentence embeddings from a pretrained encoder (mean pooling, L2 norm)",
                           intermixed=True)
    embed.add_argument("texts", nargs="*", metavar="TEXT", help="texts to embed (default: one per line of stdin)")
    embed.add_argument("--model", default="minilm", help="checkpoint directory, known name or Hub id (default: minilm)")
    embed.add_argument("--json", action="store_true", help='print one JSON object {"embeddings": [[...], ...]}')
    embed.add_argument("--batch-size", type=bounded(int, 1, 4096), default=32)
    add_special_tokens(embed)
    add_precision(embed)
    embed.set_defaults(func=_embed)


def _embed(args: argparse.Namespace) -> int:
    from glassformer.pretrained import SentenceEncoder

    encoder = SentenceEncoder.from_pretrained(args.model, precision=args.precision)
    if args.json:
        sys.stdout.write('{"embeddings": ')
        writer = JsonList()
    for texts in text_batches(args.texts, "embed", size=args.batch_size):
        vectors = encoder.encode(texts, batch_size=args.batch_size, special_tokens=args.special_tokens)
        if args.json:
            writer.write(vectors.tolist())
            continue
        for text, vector in zip(texts, vectors):
            head = ", ".join(f"{v:+.4f}" for v in vector[:6].tolist())
            print(f"[{head}, ...] ({vector.numel()} dims)  {text[:60]}", flush=True)
    if args.json:
        sys.stdout.write("[]" if writer.count == 0 else "]")
        print("}")
    return 0


# --- pictures ------------------------------------------------------------------------------------

def _add_viz(sub: argparse._SubParsersAction) -> None:
    viz = sub.add_parser("viz", help="draw attention (HTML head view, PNG heatmaps), ViT patch attention, positions")
    verbs = viz.add_subparsers(dest="verb", required=True)
    attention = verbs.add_parser("attention", help="a model's attention on a text, as a head view or a heatmap")
    attention.add_argument("model", metavar="DIR", help="saved model directory, checkpoint directory or 'minilm'")
    attention.add_argument("text", metavar="TEXT")
    attention.add_argument("--out", required=True, help="FILE.html (interactive head view) or FILE.png (heatmap)")
    attention.add_argument("--layer", type=bounded(int, 0), help="layer to show (HTML: first shown, default 0; "
                                                                 "PNG: default last)")
    attention.add_argument("--head", help="head number, 'mean' or (HTML only) 'all' (default: all / mean)")
    attention.add_argument("--window", type=bounded(int, 1, 4096), default=64,
                           help="tokens shown at a time (default 64)")
    attention.set_defaults(func=_viz_attention)
    positional = verbs.add_parser("positional", help="the sinusoidal positional encoding as a heatmap")
    positional.add_argument("--length", type=bounded(int, 1, 4096), default=64, help="positions (1 to 4,096; default 64)")
    positional.add_argument("--dim", type=bounded(int, 1, 2048), default=128,
                            help="dimensions d_model (1 to 2,048; default 128)")
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
    done = export_attention(args.model, check_utf8([args.text])[0], args.out, layer=args.layer, head=head,
                            window=args.window)
    print(f"wrote {done.path}: {done.summary}")
    return 0


def _viz_positional(args: argparse.Namespace) -> int:
    from glassformer.viz import positional_encoding_figure, save_png

    if not args.out.lower().endswith(".png"):
        raise UsageError(f"--out must end in .png, got {args.out!r}")
    print(f"wrote {save_png(args.out, positional_encoding_figure(args.length, args.dim))}")
    return 0


def _viz_image_attention(args: argparse.Namespace) -> int:
    from glassformer.viz import export_image_attention

    done = export_image_attention(args.model, args.image, args.out)
    print(f"wrote {done.path}: {done.summary}")
    return 0


# --- saved models at work ------------------------------------------------------------------------

def _add_predict(sub: argparse._SubParsersAction) -> None:
    predict = sub.add_parser("predict", help="run a saved model on texts", intermixed=True)
    predict.add_argument("model", metavar="DIR", help="a saved model directory (from `glassformer train`) or a "
                                                      "Hugging Face classification or GPT-2 checkpoint")
    predict.add_argument("texts", nargs="*", metavar="TEXT", help="the inputs: texts to classify, sentences to "
                                                                  "translate, prompts to continue (greedily) or image "
                                                                  "files (default: one per line of stdin, answered in "
                                                                  "batches as they arrive)")
    predict.add_argument("--json", action="store_true", help='print a JSON list of the results (a classifier\'s: '
                                                             '{"text", "label", "score"})')
    add_ablate(predict)
    add_special_tokens(predict)
    add_verify(predict)
    add_precision(predict)
    predict.set_defaults(func=_predict)


def _predict(args: argparse.Namespace) -> int:
    import warnings

    from glassformer.tasks.pipeline import load_predictor

    predictor = load_predictor(args.model, verify=args.verify, precision=args.precision)
    writer = JsonList() if args.json else None
    with ablation(predictor.model, args.ablate):
        for texts in text_batches(args.texts, "classify"):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                results = predictor(texts, special_tokens=args.special_tokens)
            for warning in caught:
                print(f"glassformer: warning: {warning.message}", file=sys.stderr)
            if writer is not None:
                writer.write(results)
                continue
            for line in predictor.format(results):
                print(line, flush=True)
    if writer is not None:
        writer.close()
    return 0


# Attribution methods, then the logit lens (decoder models only: what each layer would predict).
EXPLAIN_METHODS = ("integrated-gradients", "grad-input", "occlusion", "attention", "rollout", "logit-lens")
BAR_WIDTH = 24


def _add_explain(sub: argparse._SubParsersAction) -> None:
    explain = sub.add_parser("explain", help="why did it decide? attribute a prediction to the input's tokens or patches",
                             intermixed=True)
    explain.add_argument("model", metavar="DIR", help="a saved model directory (sentiment, vit, translate, lm) or a "
                                                      "Hugging Face classification or GPT-2 checkpoint")
    explain.add_argument("text", metavar="TEXT", help="the text (an image file for a ViT; the source sentence for a "
                                                      "translator; the prompt for a language model)")
    explain.add_argument("--method", choices=EXPLAIN_METHODS, default="integrated-gradients",
                         help="attribution method, or logit-lens for a language model or translator (default: "
                              "integrated-gradients)")
    explain.add_argument("--target", help="the label to explain (default: the predicted one); for a translator or a "
                                          "language model a single token (logit-lens: the token whose rank to follow)")
    explain.add_argument("--top", type=bounded(int, 1, 50), default=5,
                         help="logit-lens: candidates shown per layer (1 to 50; default 5)")
    explain.add_argument("--position", type=bounded(int, 0),
                         help="translator: the step of the greedy translation (default 0); language model: the prompt "
                              "token after which the next token is predicted (default: the last)")
    explain.add_argument("--steps", type=bounded(int, 1, 10_000), default=50,
                         help="integrated gradients: Gauss–Legendre points (1 to 10,000; default 50)")
    explain.add_argument("--json", action="store_true",
                         help='print one JSON object {"tokens", "ids", "scores", "target", "delta"} (logit-lens: '
                              '{"tokens", "ids", "layers": [{"layer", "top": [{"id", "token", "prob"}]}]})')
    add_verify(explain)
    explain.set_defaults(func=_explain)


def _explain(args: argparse.Namespace) -> int:
    from glassformer.lens import explain
    from glassformer.tasks.pipeline import load_predictor

    predictor = load_predictor(args.model, verify=args.verify)
    text = check_utf8([args.text])[0]
    if args.method == "logit-lens":
        from glassformer.lens import logit_lens_report

        report = logit_lens_report(predictor, text, position=args.position, k=args.top, token=args.target)
        if args.json:
            print_json(report.json())
        else:
            print(report)
        return 0
    result = explain(predictor, text, method=args.method, target=args.target, position=args.position,
                     steps=args.steps)
    if args.json:
        print_json(result.json())
        return 0
    where = ""
    if result.family == "translation":
        where = f" at step {result.position} of \"{' '.join(result.context)}\""
    elif result.family == "next-token":
        where = f" after position {result.position}"
    print(f"{result.method}: {result.target!r} (p={result.probability:.3f}){where}")
    largest = max((abs(s) for s in result.scores), default=0.0) or 1.0
    width = max((len(t) for t in result.tokens), default=0)
    for token, score in zip(result.tokens, result.scores):
        bar = ("+" if score >= 0 else "-") * round(BAR_WIDTH * abs(score) / largest)
        print(f"{token:<{width}s} {score:+.4f} {bar}")
    if result.delta is not None:
        print(f"completeness delta {result.delta:+.2e} (sum of scores − (f(x) − f(baseline)))")
    return 0


def _add_translate(sub: argparse._SubParsersAction) -> None:
    translate = sub.add_parser("translate", help="translate German texts with a saved translation model",
                               intermixed=True)
    translate.add_argument("model", metavar="DIR", help="a saved model directory (from `glassformer train translate`)")
    translate.add_argument("texts", nargs="*", metavar="TEXT", help="texts to translate (default: one per line of stdin)")
    translate.add_argument("--beam", type=bounded(int, 1, MAX_BEAM),
                           help=f"beam size, 1 for greedy search (1 to {MAX_BEAM}; default: the model's)")
    translate.add_argument("--json", action="store_true", help='print a JSON list of {"source", "translation"}')
    add_ablate(translate)
    add_verify(translate)
    add_precision(translate)
    translate.set_defaults(func=_translate)


def _translate(args: argparse.Namespace) -> int:
    from glassformer.tasks.translate import Translator

    translator = Translator.load(args.model, verify=args.verify, precision=args.precision)
    writer = JsonList() if args.json else None
    with ablation(translator.model, args.ablate):
        for texts in text_batches(args.texts, "translate"):
            results = translator(texts, beam_size=args.beam)
            if writer is not None:
                writer.write(results)
                continue
            for result in results:
                print(result["translation"], flush=True)
    if writer is not None:
        writer.close()
    return 0


def _add_classify_image(sub: argparse._SubParsersAction) -> None:
    classify = sub.add_parser("classify-image", help="classify PNG/JPEG images with a saved ViT", intermixed=True)
    classify.add_argument("model", metavar="DIR", help="a saved ViT directory (from `glassformer train vit`)")
    classify.add_argument("images", nargs="+", metavar="IMAGE", help="PNG or JPEG files")
    classify.add_argument("--json", action="store_true", help='print a JSON list of {"file", "label", "score"}')
    add_ablate(classify)
    add_verify(classify)
    add_precision(classify)
    classify.set_defaults(func=_classify_image)


def _classify_image(args: argparse.Namespace) -> int:
    from glassformer.tasks.vit import ImageClassifier

    classifier = ImageClassifier.load(args.model, verify=args.verify, precision=args.precision)
    with ablation(classifier.model, args.ablate):
        results = classifier.classify_files(args.images)
    if args.json:
        print_json(results)
    else:
        for result in results:
            print(f"{result['label']:12s} {result['score']:.3f}  {result['file']}")
    return 0


def _add_generate(sub: argparse._SubParsersAction) -> None:
    generate = sub.add_parser("generate", help="continue a prompt with a saved language model, printing as it goes")
    generate.add_argument("model", metavar="DIR", help="a saved transformer language model (`glassformer train lm`)")
    generate.add_argument("--prompt", default="", help="the text to continue (default: start a new work)")
    generate.add_argument("--max-new-tokens", type=bounded(int, 0, MAX_NEW_TOKENS), default=200,
                          help=f"tokens to draw (0 to {MAX_NEW_TOKENS:,}; default 200)")
    generate.add_argument("--temperature", type=bounded(float, 0.0, 100.0), default=1.0,
                          help="0 picks the most likely token (greedy)")
    generate.add_argument("--top-k", type=bounded(int, 1), help="draw only from the K most likely tokens")
    generate.add_argument("--top-p", type=bounded(float, 0.0, 1.0, low_open=True),
                          help="draw only from the smallest set of most likely tokens whose probability reaches P")
    generate.add_argument("--seed", type=int, help="makes the draw reproducible")
    add_ablate(generate)
    add_verify(generate)
    add_precision(generate)
    generate.set_defaults(func=_generate)


def _generate(args: argparse.Namespace) -> int:
    from glassformer.tasks.lm import TextGenerator

    generator = TextGenerator.load(args.model, verify=args.verify, precision=args.precision)
    prompt = check_utf8([args.prompt])[0]
    with ablation(generator.model, args.ablate):
        sys.stdout.write(prompt)
        for piece in generator.stream(prompt, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                                      top_p=args.top_p, seed=args.seed):
            sys.stdout.write(piece)
            sys.stdout.flush()
    sys.stdout.write("\n")
    return 0


def _add_serve(sub: argparse._SubParsersAction) -> None:
    from glassformer.serve.settings import ServeSettings

    default = ServeSettings()
    serve = sub.add_parser("serve", help="serve a saved model over HTTP (JSON in and out, batched, /health, "
                                         "/openapi.json)")
    serve.add_argument("model", metavar="DIR", help="a saved model directory, a Hugging Face checkpoint with a task "
                                                    "head, or an encoder (minilm, a sentence-transformers export) "
                                                    "for /embed")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    serve.add_argument("--port", type=bounded(int, 1, 65535), default=8000, help="default 8000")
    serve.add_argument("--max-batch", type=bounded(int, 1, 4096), default=default.max_batch,
                       help=f"inputs run through the model together at most (default {default.max_batch})")
    serve.add_argument("--max-wait-ms", type=bounded(float, 0.0, 10_000.0), default=default.max_wait_ms,
                       help=f"how long a request waits for others to batch with (default {default.max_wait_ms:g})")
    serve.add_argument("--queue-size", type=bounded(int, 1, 1_000_000), default=default.queue_size,
                       help=f"requests waiting at most; more get 503 with Retry-After (default {default.queue_size})")
    serve.add_argument("--timeout", type=bounded(float, 0.0, 86_400.0, low_open=True), default=default.timeout,
                       help=f"seconds a request may wait for its answer; then 504 (default {default.timeout:g})")
    serve.add_argument("--max-body-bytes", type=bounded(int, 1), default=default.max_body_bytes,
                       help=f"larger request bodies get 413 (default {default.max_body_bytes:,})")
    serve.add_argument("--max-text-chars", type=bounded(int, 1), default=default.max_text_chars,
                       help=f"longer texts get 413 (default {default.max_text_chars:,})")
    add_verify(serve)
    add_precision(serve)
    serve.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    from glassformer.precision import resolve
    from glassformer.serve.app import create_app, run_server
    from glassformer.serve.batcher import model_thread
    from glassformer.serve.endpoints import load_endpoint
    from glassformer.serve.settings import ServeSettings

    settings = ServeSettings(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, queue_size=args.queue_size,
                             timeout=args.timeout, max_body_bytes=args.max_body_bytes,
                             max_text_chars=args.max_text_chars)
    worker = model_thread()  # loaded where its batches run, so torch's threads work as one team
    try:
        endpoint = worker.submit(load_endpoint, args.model, precision=args.precision, verify=args.verify).result()
        if endpoint.warm_up is not None:
            worker.submit(endpoint.warm_up).result()
    except BaseException:
        worker.shutdown(wait=False)
        raise
    precision = resolve(args.precision, "cpu")
    app = create_app(endpoint, settings, {"model": str(args.model), "precision": precision}, executor=worker)
    try:
        run_server(app, args.host, args.port, timeout=settings.timeout,
                   announce=f"glassformer: serving {args.model} ({endpoint.family}, {precision}) at "
                            f"http://{args.host}:{args.port}{endpoint.path}; Ctrl-C stops")
    finally:
        worker.shutdown()  # the server has finished every accepted request
    return 0


# --- the app -------------------------------------------------------------------------------------

def _add_demo(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="the main job end to end: fine-tune, reload, classify, show attention")
    demo.add_argument("--out", default="demo-output", help="where to write the attention views")
    demo.add_argument("--retrain", action="store_true", help="train the quick sentiment preset again")
    demo.add_argument("--no-studio", action="store_true", help="stop after the terminal summary (no browser app)")
    demo.add_argument("--port", type=bounded(int, 1, 65535), default=7860, help="the studio's port on 127.0.0.1")
    _add_background_training(demo)
    demo.set_defaults(func=_demo)


def _add_background_training(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-background-training", dest="train_missing", action="store_false",
                        help="do not train the missing translation, vision and language models in the background "
                             "(their tabs then offer a button instead)")
    parser.add_argument("--background-preset", choices=("quick", "tiny"), default="quick",
                        help="what the background runs train: the quick presets (default), or tiny ones that check "
                             "the machinery in a minute or two (useless models, saved as *-tiny)")


def _demo(args: argparse.Namespace) -> int:
    from glassformer.demo import run_demo

    run_demo(args.out, retrain=args.retrain)
    if not args.no_studio:
        from glassformer.studio import serve

        print("\nStarting the studio on the same model…", flush=True)
        serve(port=args.port, train_missing=args.train_missing, preset=args.background_preset)
    return 0


def _add_studio(sub: argparse._SubParsersAction) -> None:
    studio = sub.add_parser("studio", help="the Gradio studio: every model's inside in a browser (offline, local)")
    studio.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    studio.add_argument("--port", type=bounded(int, 1, 65535), default=7860)
    studio.add_argument("--share", action="store_true", help="also open a public Gradio share link (off by default)")
    studio.add_argument("--allow-remote-training", action="store_true",
                        help="keep the train buttons when the studio is reachable from other machines "
                             "(--host other than 127.0.0.1, or --share); off by default")
    studio.add_argument("--sentiment-model", metavar="DIR",
                        help="a saved sentiment model (default: the quick MiniLM model, trained on first run)")
    for task in ("translate", "vision", "lm"):
        studio.add_argument(f"--{task}-model", metavar="DIR",
                            help=f"a saved {task} model (default: the cache's best of the full and quick ones)")
    _add_background_training(studio)
    studio.set_defaults(func=_studio)


def _studio(args: argparse.Namespace) -> int:
    from glassformer.studio import serve

    serve(args.host, args.port, args.share, args.sentiment_model, translate_dir=args.translate_model,
          vision_dir=args.vision_model, generate_dir=args.lm_model, allow_remote_training=args.allow_remote_training,
          train_missing=args.train_missing, preset=args.background_preset)
    return 0
