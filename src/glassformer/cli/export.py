"""``glassformer export DIR --to hf|sentence-transformers|onnx --out OUT``: a model in the formats people deploy."""

from __future__ import annotations

import argparse

from glassformer.cli._io import add_verify, print_json

# The same names as glassformer.pretrained.export.FORMATS, spelled out so --help does not import torch.
FORMATS = ("hf", "sentence-transformers", "onnx")


def add(sub: argparse._SubParsersAction) -> None:
    """The ``export`` command."""
    export = sub.add_parser("export", help="write a model as a transformers checkpoint, a sentence-transformers "
                                           "model or ONNX")
    export.add_argument("model", metavar="DIR", help="a saved model directory (from `glassformer train`), a Hugging "
                                                     "Face checkpoint directory or a known name (minilm)")
    export.add_argument("--to", required=True, choices=FORMATS,
                        help="hf: transformers' Auto classes load it; sentence-transformers: SentenceTransformer "
                             "loads it (encoders); onnx: model.onnx for onnxruntime, tokenizer files beside it")
    export.add_argument("--out", required=True, help="a new or empty directory to write")
    export.add_argument("--overwrite", action="store_true", help="replace an earlier export of the same format there")
    export.add_argument("--json", action="store_true", help='print one JSON object {"out", "format", "notes"}')
    add_verify(export)
    export.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    from glassformer.pretrained.export import export

    done = export(args.model, args.to, args.out, overwrite=args.overwrite, verify=args.verify)
    if args.json:
        print_json({"out": str(done.path), "format": done.format, "notes": done.notes})
        return 0
    print(f"wrote {done.format} to {done.path}")
    for note in done.notes:
        print(f"note: {note}")
    return 0
