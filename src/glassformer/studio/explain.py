"""The Explain panels the Sentiment, Translate and Vision tabs share: "why this prediction?" and the head grid.

For one input, four attributions of the same prediction side by side (:func:`glassformer.lens.compare`):
attention, attention rollout, integrated gradients and occlusion, each with its deletion curve and
AOPC, so a learner sees that they disagree and which one the model's behaviour supports. The head
grid knocks chosen heads out (:func:`glassformer.lens.ablated`) and shows the prediction before and
after. Every number comes from the lens; this module only draws it, and puts each number in a
``data-`` attribute so tests can read exactly what is shown.
"""

from __future__ import annotations

import html
import json
from typing import Any, Sequence

import numpy as np

from glassformer.lens import Explanation, PerturbationCurve, ablated, compare
from glassformer.studio.common import message_html, model_lock, overlay_html
from glassformer.viz import deletion_curve_svg, image_png, signed_token_scores_html, token_labels

METHODS = ("attention", "rollout", "integrated-gradients", "occlusion")
NAMES = {"attention": "Attention", "rollout": "Attention rollout", "integrated-gradients": "Integrated gradients",
         "occlusion": "Occlusion"}
WHAT = {"attention": "the last layer's attention from the token that reads the prediction, mean over heads",
        "rollout": "attention followed through every layer, with the residual path (Abnar & Zuidema 2020)",
        "integrated-gradients": "gradients along the path from a blank input to this one (Sundararajan et al. 2017)",
        "occlusion": "how much p drops when this one unit is blanked out"}
COLORS = {"attention": "#8c6d31", "rollout": "#9467bd", "integrated-gradients": "#1f77b4", "occlusion": "#2ca02c"}
IG_STEPS = 20  # integrated gradients' quadrature points: enough for the quick models, and answers within a second
NOTE = ("Four ordinary ways to ask which inputs mattered: <b>Attention</b>, <b>Attention rollout</b>, "
        "<b>Integrated gradients</b> and <b>Occlusion</b>. Attention is not explanation: it shows where the model "
        "looked, not what changed its answer (the warning BertViz gives). The <b>deletion curve</b> removes each "
        "method's top-ranked units first and redraws p(prediction); the sooner it falls, the more faithful the "
        "method. <b>AOPC</b> is the mean drop over the curve: higher is more faithful.")


def comparison(predictor: Any, inputs: Any, *, position: int | None = None, steps: int = IG_STEPS
               ) -> list[tuple[Explanation, PerturbationCurve]]:
    """The four methods' explanations of `predictor` on `inputs`, with their deletion curves (one model call at a time)."""
    with model_lock:
        return compare(predictor, inputs, METHODS, position=position, steps=steps)


def _method_card(explanation: Explanation, curve: PerturbationCurve, best: bool, body: str, target: str) -> str:
    method = explanation.method
    flag = ' <span class="gf-faithful" style="color:#2ca02c">◀ most faithful here</span>' if best else ""
    curve_svg = deletion_curve_svg(curve.fractions, curve.probs, color=COLORS[method],
                                   title=f"deletion curve: p({target})")
    return (f'<div class="gf-method" data-method="{method}" data-aopc="{curve.aopc!r}" '
            f'data-scores="{html.escape(json.dumps(explanation.scores))}" '
            f'data-curve="{html.escape(json.dumps(curve.probs))}" '
            f'style="flex:1;min-width:230px;max-width:330px;border:1px solid #ddd;border-radius:6px;padding:6px">'
            f'<h4 style="margin:2px 0">{NAMES[method]}</h4>'
            f'<p style="font-size:11px;color:#555;margin:2px 0">{WHAT[method]}</p>{body}{curve_svg}'
            f'<p class="gf-aopc" style="font-size:12px;margin:2px 0">AOPC (deletion): <b>{curve.aopc:.3f}</b>{flag}</p>'
            "</div>")


def readable(tokenizer: Any, pieces: Sequence[str]) -> list[str]:
    """Token pieces as the studio draws them elsewhere (byte-level pieces decoded, whitespace as ␣)."""
    to_id = getattr(tokenizer, "token_to_id", None)  # a method on byte-level BPE; a dict on WordPiece
    if not callable(to_id):
        return list(pieces)
    try:
        return token_labels(tokenizer, [to_id(piece) for piece in pieces])
    except (KeyError, ValueError):
        return list(pieces)


def comparison_html(pairs: list[tuple[Explanation, PerturbationCurve]], heading: str,
                    image: np.ndarray | None = None, tokenizer: Any = None, mirrored: bool = False) -> str:
    """The side-by-side panel: each method's shading (tokens, or patches over `image`), deletion curve and AOPC.

    With `tokenizer`, tokens are labelled as the rest of the studio labels them. `mirrored`: the prediction
    averages `image` with its mirror, so the patches of both views are scored (the image's, then the mirror's).
    """
    first = pairs[0][0]
    target = first.target if tokenizer is None else readable(tokenizer, [first.target])[0]
    legend = ("Blue: for it; red: against it." if image is None else
              "Orange: for it (patches against it stay clear); hover a patch for its score.")
    best = max(range(len(pairs)), key=lambda i: pairs[i][1].aopc)
    cards = []
    for i, (explanation, curve) in enumerate(pairs):
        if image is None:
            labels = explanation.tokens if tokenizer is None else token_labels(tokenizer, explanation.ids)
            body = signed_token_scores_html(labels, explanation.scores)
        else:
            views = [(image, "")] + ([(image[..., ::-1], " (mirrored view)")] if mirrored else [])
            per_view = np.asarray(explanation.scores, dtype=np.float64).reshape(len(views), -1)
            side = int(round(per_view.shape[1] ** 0.5))
            body = "".join(overlay_html(image_png(picture), heat.reshape(side, side), 150,
                                        f"{NAMES[explanation.method]} per patch{which}")
                           for (picture, which), heat in zip(views, per_view))
        cards.append(_method_card(explanation, curve, i == best, body, target))
    return (f'<div class="gf-explain" data-target="{html.escape(first.target)}" '
            f'data-probability="{first.probability!r}">'
            f'<p style="font-size:12px">{NOTE}</p>'
            f'<p class="gf-explain-target" style="font-size:13px">{heading}: <b>{html.escape(target)}</b> '
            f"(p = {first.probability:.1%}). {legend}</p>"
            '<div style="display:flex;flex-wrap:wrap;gap:8px">' + "".join(cards) + "</div></div>")


def head_choices(n_layers: int, n_heads: int) -> list[str]:
    """The head grid's toggles, layer by layer: ``"L.H"`` (lens.ablated's name for layer L's head H)."""
    return [f"{layer}.{head}" for layer in range(n_layers) for head in range(n_heads)]


def head_grid_style(elem_id: str, n_heads: int) -> str:
    """A ``<style>`` that lays the head toggles of `elem_id` out as a grid: one row per layer, one column per head."""
    return (f"<style>#{elem_id} [data-testid=checkbox-group]{{display:grid;"
            f"grid-template-columns:repeat({int(n_heads)},max-content)}}</style>")


def ablation(classifier: Any, inputs: Any, heads: Sequence[str] | None, **options: Any) -> str:
    """The classifier's label probabilities for one input with and without the chosen heads, as :func:`ablation_html`."""
    heads = sorted(heads or [])
    with model_lock:
        before = classifier.predict_proba(inputs, **options)[0].tolist()
        with ablated(classifier.model, heads=heads):
            after = classifier.predict_proba(inputs, **options)[0].tolist()
    return ablation_html(classifier.label_names, before, after, heads)


def ablation_html(labels: Sequence[str], before: Sequence[float], after: Sequence[float], heads: Sequence[str]) -> str:
    """A table of each label's probability before and after the ablation, the winners marked."""
    was, now = int(np.argmax(before)), int(np.argmax(after))
    rows = []
    for i, name in enumerate(labels):
        rows.append(f'<tr class="gf-ablation-row" data-label="{html.escape(name)}" data-before="{before[i]!r}" '
                    f'data-after="{after[i]!r}"><td style="padding:2px 8px">{html.escape(name)}</td>'
                    f'<td style="padding:2px 8px;{"font-weight:700" if i == was else ""}">{before[i]:.1%}</td>'
                    f'<td style="padding:2px 8px;{"font-weight:700" if i == now else ""}">{after[i]:.1%}</td></tr>')
    knocked = ", ".join(f"layer {h.split('.')[0]} head {h.split('.')[1]}" for h in heads) or "none"
    verdict = ("The prediction is unchanged" if was == now else
               f"The prediction flips from {labels[was]} to {labels[now]}")
    return (f'<div class="gf-ablation" data-heads="{html.escape(",".join(heads))}" '
            f'data-prediction="{html.escape(labels[now])}">'
            f'<p style="font-size:12px;margin:2px 0">Ablated (output set to zero): {html.escape(knocked)}</p>'
            '<table style="border-collapse:collapse;font-size:13px">'

            '<tr><th style="padding:2px 8px">label</th><th style="padding:2px 8px">original</th>'
            '<th style="padding:2px 8px">with the heads ablated</th></tr>' + "".join(rows) + "</table>"
            + message_html(f"{verdict}: {labels[now]} {after[now]:.1%} (was {labels[was]} {before[was]:.1%}).")
            + "</div>")
