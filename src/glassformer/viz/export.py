"""One call from a model directory and an input to a picture file: what ``glassformer viz`` runs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from glassformer.errors import OutputExistsError
from glassformer.models import VisionTransformer
from glassformer.tasks.pipeline import load_reader
from glassformer.viz.extract import text_attention
from glassformer.viz.head_view import HeadChoice, write_head_view
from glassformer.viz.heatmaps import attention_heatmap, save_png
from glassformer.viz.vision import image_attention_figure


@dataclass
class Exported:
    """What was written, and a one-line description of it for the user."""

    path: Path
    summary: str


def _suffix(out: str | os.PathLike, allowed: tuple[str, ...]) -> str:
    if Path(out).is_dir():
        raise OutputExistsError(f"{out} is a directory; expected the name of a file ending in {' or '.join(allowed)}")
    suffix = Path(out).suffix.lower()
    if suffix not in allowed:
        raise ValueError(f"--out must end in {' or '.join(allowed)}, got {str(out)!r}")
    return suffix


def export_attention(
    model: str | os.PathLike,
    text: str,
    out: str | os.PathLike,
    *,
    layer: int | None = None,
    head: HeadChoice = None,
    window: int = 64,
    threshold: float = 0.01,
) -> Exported:
    """Write the attention of `model` (saved dir, checkpoint dir or known name) on `text` as a head view or heatmap.

    ``.html`` gives the interactive head view of every attention kind the model has, opened at
    ``layer`` (default 0) and ``head`` (default every head), with lines scaled to the strongest
    when the text is longer than ``window``; ``.png`` gives one layer's heatmap
    (default the last layer) of one head (default the mean over heads), for an encoder–decoder
    model its cross-attention.
    """
    suffix = _suffix(out, (".html", ".png"))
    reader = load_reader(model)
    if getattr(reader, "tokenizer", None) is None:
        raise ValueError(f"{model} holds a {type(reader.model).__name__}, which does not read text")
    result = text_attention(reader, text)
    maps = result.maps
    cut = f" (text truncated to the model's {len(result.token_ids)} tokens)" if result.truncated else ""
    if suffix == ".html":
        # Past one window the weights spread thin; scaled lines keep the page readable (a checkbox undoes it).
        long_input = max(len(m.query_tokens) for m in maps) > window
        title = "Attention: " + (text if len(text) <= 80 else text[:79] + "…")
        path = write_head_view(out, maps, layer=0 if layer is None else layer, head="all" if head is None else head,
                               window=window, threshold=threshold, title=title, scale_lines=long_input)
        return Exported(path, f"head view of {len(maps[0].query_tokens)} tokens, "
                              f"{maps[0].n_layers} layers × {maps[0].n_heads} heads{cut}")
    if isinstance(head, str):
        head = None if head == "mean" else head
    if head is not None and not isinstance(head, int):
        raise ValueError(f"a PNG heatmap shows one head or the mean; --head must be a number or 'mean', got {head!r}")
    chosen = maps[-1]
    path = save_png(out, attention_heatmap(chosen, -1 if layer is None else layer, head, length=window))
    return Exported(path, f"{chosen.name} heatmap of {len(chosen.query_tokens)} × {len(chosen.key_tokens)} tokens{cut}")


def export_image_attention(model: str | os.PathLike, image: str | os.PathLike, out: str | os.PathLike) -> Exported:
    """Write a ViT's [CLS] attention over the patches of `image` (every layer and head, plus rollout) as a PNG.

    The image is read as the classifier reads it; the label is its prediction (for a classifier that averages
    an image with its mirror, the average), the attention that of the image as it is.
    """
    _suffix(out, (".png",))
    classifier = load_reader(model)
    vit = classifier.model
    if not isinstance(vit, VisionTransformer):
        raise ValueError(f"{model} holds a {type(vit).__name__}, not a VisionTransformer")
    pixels = classifier.prepare([image]).tensors["images"]
    probs = classifier.predict_proba([image])[0]
    with torch.no_grad():
        output = vit(pixels, output_attentions=True)
    best = int(probs.argmax())
    label = classifier.label_names[best]
    figure = image_attention_figure(pixels[0].cpu(), output.attentions,
                                    title=f"[CLS] attention over patches — predicted {label} ({probs[best]:.1%})")
    return Exported(save_png(out, figure), f"predicted {label} (p={probs[best]:.3f}); "
                                           f"{len(output.attentions)} layers × {vit.config.n_heads} heads")
