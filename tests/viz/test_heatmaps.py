"""Heatmap figures carry the right numbers and labels, and PNGs decode at the expected size."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from glassformer.viz import (
    AttentionMaps,
    attention_heatmap,
    attention_heatmap_png,
    figure_png,
    matrix_heatmap,
    save_png,
    token_scores_html,
)
from tests.viz.helpers import encoder_maps


def _image_array(fig) -> np.ndarray:
    return np.asarray(fig.axes[0].images[0].get_array())


def test_attention_heatmap_shows_one_head_or_the_mean():
    maps = encoder_maps(n_tokens=6)
    fig = attention_heatmap(maps, layer=1, head=0)
    np.testing.assert_allclose(_image_array(fig), maps.weights[1, 0])
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == maps.key_tokens
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == maps.query_tokens
    assert "layer 1, head 0" in fig.axes[0].get_title()
    mean = attention_heatmap(maps, layer=-1, head=None)
    np.testing.assert_allclose(_image_array(mean), maps.weights[1].mean(axis=0), rtol=1e-6)
    assert "mean over heads" in mean.axes[0].get_title()


def test_long_input_is_cut_to_a_window():
    n = 100
    weights = np.random.default_rng(0).dirichlet(np.ones(n), size=(1, 1, n)).astype(np.float32)
    tokens = [f"t{i}" for i in range(n)]
    fig = attention_heatmap(AttentionMaps("long", weights, tokens, tokens), 0, 0, start=90, length=20)
    # The window slides back to stay 20 tokens long: 80..99.
    np.testing.assert_allclose(_image_array(fig), weights[0, 0, 80:, 80:])
    assert fig.axes[0].get_yticklabels()[0].get_text() == "t80"


def test_png_decodes_with_the_figure_size(tmp_path):
    fig = matrix_heatmap(np.eye(3), ["a", "b", "c"], ["a", "b", "c"])
    width, height = fig.get_size_inches()
    data = figure_png(fig, dpi=50)
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    assert image.size == (round(width * 50), round(height * 50))
    path = save_png(tmp_path / "m.png", fig, dpi=50)
    assert path.read_bytes() == data
    png = Image.open(io.BytesIO(attention_heatmap_png(encoder_maps(), 0, 1)))
    assert png.size[0] > 100 and png.size[1] > 100


def test_small_matrices_are_annotated_with_their_values():
    fig = matrix_heatmap(np.array([[0.25, 0.75], [1.0, 0.0]]))
    assert sorted(t.get_text() for t in fig.axes[0].texts) == ["0.00", "0.25", "0.75", "1.00"]
    with pytest.raises(ValueError, match="2-D"):
        matrix_heatmap(np.zeros(3))


def test_token_scores_html_escapes_and_scales():
    html = token_scores_html(["<b>", "ok"], [0.2, 0.4])
    assert "&lt;b&gt;" in html and "<b>" not in html
    assert "rgba(31, 119, 180, 0.500)" in html and "rgba(31, 119, 180, 1.000)" in html
    with pytest.raises(ValueError, match="2 tokens but 1 scores"):
        token_scores_html(["a", "b"], [1.0])
