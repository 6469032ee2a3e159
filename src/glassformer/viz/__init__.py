"""Seeing inside the models: attention head/model views (self-contained HTML), heatmaps, ViT overlays, concept plots.

Every function returns an HTML string, a matplotlib ``Figure`` or PNG bytes, and has a file
writer beside it; nothing needs Gradio, Jupyter or a network. ``figure_png`` turns any
figure into PNG bytes and ``save_png`` writes one.
"""

# BertViz's names: `from glassformer.viz import head_view` is the function (as `from bertviz import
# head_view` is), so it replaces the package attribute that named the head_view module; the module
# itself is still imported as glassformer.viz.head_view.
from glassformer.viz.bertviz import AttentionPage, head_view, model_view
from glassformer.viz.concepts import dot_product_figure, embedding_lookup_figure, one_hot_figure
from glassformer.viz.curves import deletion_curve_svg, loss_curve_svg, race_curve_svg
from glassformer.viz.export import Exported, export_attention, export_image_attention
from glassformer.viz.extract import TextAttention, text_attention, token_labels
from glassformer.viz.head_view import (
    AttentionMaps,
    embedded_data,
    head_view_html,
    model_view_html,
    save_html,
    seq2seq_maps,
    write_head_view,
    write_model_view,
)
from glassformer.viz.heatmaps import (
    attention_heatmap,
    attention_heatmap_png,
    figure_png,
    matrix_heatmap,
    matrix_png,
    save_png,
    signed_token_scores_html,
    token_scores_html,
)
from glassformer.viz.positional import positional_encoding_figure
from glassformer.viz.vision import (
    attention_rollout,
    cls_attention,
    image_attention_figure,
    image_png,
    overlay_figure,
    rollout_map,
)

__all__ = [
    "AttentionMaps",
    "AttentionPage",
    "Exported",
    "TextAttention",
    "attention_heatmap",
    "attention_heatmap_png",
    "attention_rollout",
    "cls_attention",
    "dot_product_figure",
    "embedded_data",
    "embedding_lookup_figure",
    "export_attention",
    "export_image_attention",
    "figure_png",
    "head_view",
    "head_view_html",
    "image_attention_figure",
    "image_png",
    "deletion_curve_svg",
    "loss_curve_svg",
    "race_curve_svg",
    "matrix_heatmap",
    "matrix_png",
    "model_view",
    "model_view_html",
    "one_hot_figure",
    "overlay_figure",
    "positional_encoding_figure",
    "rollout_map",
    "save_html",
    "save_png",
    "seq2seq_maps",
    "text_attention",
    "token_labels",
    "signed_token_scores_html",
    "token_scores_html",
    "write_head_view",
    "write_model_view",
]
