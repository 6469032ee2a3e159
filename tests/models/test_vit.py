"""VisionTransformer: shapes, [CLS] attention over patches, presets, errors, training."""

from __future__ import annotations

import pytest
import torch

from glassformer.models import VisionTransformer, ViTConfig

from .helpers import train_steps


def _model(seed: int = 0, **overrides: object) -> VisionTransformer:
    torch.manual_seed(seed)
    return VisionTransformer(ViTConfig.preset("tiny", **overrides)).eval()


def test_forward_shapes_and_intermediates() -> None:
    model = _model()  # 8x8 grey images, 4x4 patches: N = 4 patches + [CLS]
    out = model(torch.randn(3, 1, 8, 8), output_hidden_states=True, output_attentions=True)
    assert out.logits.shape == (3, 3) and out.last_hidden_state.shape == (3, 5, 16)
    assert len(out.hidden_states) == 3 and len(out.attentions) == 2
    cls_over_patches = out.attentions[-1][:, :, 0, 1:]  # (B, H, N): what the studio shows
    assert cls_over_patches.shape == (3, 2, 4)
    torch.testing.assert_close(out.attentions[-1].sum(-1), torch.ones(3, 2, 5))


def test_preset_has_the_published_size() -> None:
    """Known number: ViT-B/16 at 224 px with a 1000-class head has 86,567,656 parameters."""
    with torch.device("meta"):  # count only; no memory, no initialisation cost
        model = VisionTransformer(ViTConfig.preset("vit-base-patch16-224"))
    assert sum(p.numel() for p in model.parameters()) == 86_567_656
    assert model.position_embeddings.shape == (1, 197, 768)


def test_patch_order_matters_through_positions() -> None:
    """Learned positions make the model see where each patch is: swapping two patches changes the output."""
    model = _model(1)
    image = torch.randn(1, 1, 8, 8)
    swapped = image.clone()
    swapped[..., :4, :4], swapped[..., :4, 4:] = image[..., :4, 4:], image[..., :4, :4]
    assert (model(image).logits - model(swapped).logits).abs().max() > 1e-5


def test_training_reduces_loss() -> None:
    model = _model(2)
    images, labels = torch.randn(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    first, last = train_steps(model, lambda: model(images, labels).loss)
    assert last < 0.5 * first


def test_bad_configs_and_inputs_raise_value_error() -> None:
    with pytest.raises(ValueError, match="image_size=30 is not divisible by patch_size=7"):
        ViTConfig(image_size=30, patch_size=7)
    with pytest.raises(ValueError, match="d_model=30 is not divisible by n_heads=4"):
        ViTConfig(d_model=30, n_heads=4)
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 1, 8, 8\), got \(2, 3, 8, 8\)"):
        _model()(torch.randn(2, 3, 8, 8))
