"""`make demo`: the main job end to end — fine-tune MiniLM on movie reviews, reload it, classify, show attention.

On first run it fetches the data and the checkpoint and trains the quick sentiment preset (a few
minutes on 2 CPU cores, with a progress bar); later runs reuse the saved model and start in seconds.
The attention of the real model on one sentence is written as a self-contained head-view HTML page
and a heatmap PNG.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_SENTENCES = (
    "A gorgeous, witty, seductive movie.",
    "The plot is a mess and the jokes fall flat.",
    "Despite the heavy rain of clichés, the lead performance is quietly moving.",
    "It's not a bad film, just a forgettable one.",
)


def run_demo(out_dir: str | Path = "demo-output", sentences: tuple[str, ...] = DEFAULT_SENTENCES,
             retrain: bool = False) -> Path:
    """Train (or reuse) the quick sentiment model, classify `sentences`, write attention views into `out_dir`."""
    from glassformer.tasks import sentiment
    from glassformer.training.saved import SavedModelError
    from glassformer.viz import export_attention

    model_dir = sentiment.default_out_dir(sentiment.get_preset("quick"))
    classifier = None
    if not retrain:
        try:
            classifier = sentiment.SentimentClassifier.load(model_dir)
            print(f"Using the sentiment model saved in {model_dir} (train again with --retrain).")
        except (SavedModelError, FileNotFoundError, ValueError):
            classifier = None
    if classifier is None:
        print("Step 1/3: fine-tuning MiniLM on 8,454 Rotten Tomatoes sentences (quick preset; a few minutes "
              "on 2 CPU cores, once).", flush=True)
        run = sentiment.train("quick", model_dir, overwrite=True)
        print(f"Trained in {run.total_seconds:.0f} s: validation accuracy {run.validation_accuracy:.1%}, "
              f"test accuracy {run.test_accuracy:.1%} on {run.n_test} held-out sentences. Saved to {model_dir}.")
        classifier = sentiment.SentimentClassifier.load(model_dir)
    else:
        metrics = classifier.info.get("metrics", {})
        if "test_accuracy" in metrics:
            print(f"Its test accuracy: {metrics['test_accuracy']:.1%} on {metrics.get('n_test')} held-out sentences.")

    print("\nStep 2/3: the reloaded model classifies new text:")
    for row in classifier(list(sentences)):
        print(f"  {row['label']:>8s}  {row['score']:.3f}  {row['text']}")

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    print(f"\nStep 3/3: what the model attends to, for {sentences[0]!r}:")
    for name in ("head-view.html", "attention.png"):
        exported = export_attention(model_dir, sentences[0], out / name)
        print(f"  {exported.path}  ({exported.summary})")
    print("\nOpen the HTML file in any browser (it works offline). Try your own sentences:\n"
          f"  .venv/bin/glassformer predict {model_dir} \"your sentence here\"")
    return out
