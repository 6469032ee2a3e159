"""Attention rollout against a hand computation and patch maps in the right place."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from glassformer.models import VisionTransformer, ViTConfig
from glassformer.nn import image_to_patches
from glassformer.viz import (
    attention_rollout,
    cls_attention,
    figure_png,
    image_attention_figure,
    rollout_map,
)

# Two layers, two heads, two tokens; the rollout below is worked out by hand.
LAYER1 = torch.tensor([[[1.0, 0.0], [0.5, 0.5]], [[0.0, 1.0], [0.5, 0.5]]])  # mean [[.5,.5],[.5,.5]]
LAYER2 = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [1.0, 0.0]]])  # mean [[1,0],[.5,.5]]


def test_rollout_matches_the_hand_computation():
    # Â1 = rownorm(mean + I) = [[.75,.25],[.25,.75]];  Â2 = rownorm([[2,0],[.5,1.5]]) = [[1,0],[.25,.75]]
    # R = Â2 Â1 = [[.75, .25], [.25·.75 + .75·.25, .25·.25 + .75·.75]] = [[.75, .25], [.375, .625]]
    rollout = attention_rollout([LAYER1.unsqueeze(0), LAYER2.unsqueeze(0)])
    assert rollout.shape == (1, 2, 2)
    np.testing.assert_allclose(rollout[0].numpy(), [[0.75, 0.25], [0.375, 0.625]], atol=1e-7)
    # Without the identity it is the plain product of mean attentions: [[1,0],[.5,.5]] @ [[.5,.5],[.5,.5]].
    plain = attention_rollout([LAYER1, LAYER2], add_residual=False)
    np.testing.assert_allclose(plain[0].numpy(), [[0.5, 0.5], [0.5, 0.5]], atol=1e-7)


def test_rollout_rows_sum_to_one_on_a_real_vit():
    torch.manual_seed(0)
    model = VisionTransformer(ViTConfig.preset("tiny")).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 1, 8, 8), output_attentions=True)
    rollout = attention_rollout(out.attentions)
    assert rollout.shape == (2, 5, 5)
    np.testing.assert_allclose(rollout.sum(-1).numpy(), np.ones((2, 5)), atol=1e-5)
    assert rollout_map(out.attentions, batch_index=1).shape == (2, 2)
    with pytest.raises(ValueError, match="at least one layer"):
        attention_rollout([])


def test_cls_patch_map_is_laid_out_like_the_image():
    # An image bright only in its top-right 4×4 patch: image_to_patches puts that patch at index 1 of 4.
    image = torch.zeros(1, 1, 8, 8)
    image[0, 0, :4, 4:] = 1.0
    bright = image_to_patches(image, 4)[0].abs().sum(-1).nonzero().flatten().tolist()
    assert bright == [1]
    # [CLS] attends only to that patch (key 1 + 1) in head 1, uniformly in head 0.
    attention = torch.zeros(1, 2, 5, 5)
    attention[0, 0, 0, :] = 0.2
    attention[0, 1, 0, 2] = 1.0
    grid = cls_attention([attention], layer=0, head=1)
    np.testing.assert_array_equal(grid, [[0.0, 1.0], [0.0, 0.0]])
    np.testing.assert_allclose(cls_attention([attention], layer=0), [[0.1, 0.6], [0.1, 0.1]])


def test_image_attention_figure_has_a_panel_per_layer_and_head():
    torch.manual_seed(0)
    model = VisionTransformer(ViTConfig.preset("tiny")).eval()
    image = torch.rand(1, 1, 8, 8)
    with torch.no_grad():
        out = model(image, output_attentions=True)
    fig = image_attention_figure(image[0], out.attentions)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[:2] == ["image", "rollout (all layers)"]
    assert "L1 head 1" in titles and "layer 1, mean" in titles
    png = Image.open(io.BytesIO(figure_png(fig, dpi=40)))
    width, height = fig.get_size_inches()
    assert png.size == (round(width * 40), round(height * 40))
